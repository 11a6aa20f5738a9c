"""What every resource shares: the core, and checked, escaped path segments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import msgspec

from .._codec import ENCODER, has_control_characters
from .._errors import InvalidInputError

if TYPE_CHECKING:
    from .._client import _Core

__all__ = ["Resource", "checked_struct", "segment"]

S = TypeVar("S", bound=msgspec.Struct)


class Resource:
    """Base class of the resource groups."""

    __slots__ = ("_core",)

    def __init__(self, core: _Core) -> None:
        self._core = core


def segment(field: str, value: object) -> str:
    """Check an id and escape it as one URL path segment.

    An id can never reach another path: ``/``, ``?``, ``#`` and ``%`` are
    percent-encoded, and ``.``/``..`` are refused.

    Raises:
        InvalidInputError: The id is not a non-empty string, or is unsafe.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(field, "must not be empty")
    if value in (".", "..") or has_control_characters(value):
        raise InvalidInputError(field, f"is not a valid id: {value!r}")
    return quote(value, safe="")


def _field_path(error: msgspec.ValidationError) -> str:
    """``compute.node_count`` from msgspec's "... - at `$.compute.node_count`"."""
    text = str(error)
    text, _, where = text.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    # "Object missing required field `image`" names the field itself.
    _, found, rest = text.partition("field `")
    if found:
        name = rest.partition("`")[0]
        path = f"{path}.{name}" if path else name
    return path


def checked_struct(field: str, value: Any, struct_type: type[S]) -> tuple[S, bytes]:
    """Validate a request model (or a plain dict of one) and encode it.

    Constraints such as ``count >= 1`` are enforced on decode only, so a
    model is encoded and decoded again: cheap, and it catches fields set to
    the wrong type after construction as well. A dict is converted first, so
    that its nulls and defaults are dropped from the wire like a model's.

    Returns:
        The validated struct and its JSON encoding.

    Raises:
        InvalidInputError: Naming the first offending field, e.g.
            ``spec.compute.node_count``.
    """
    try:
        if isinstance(value, struct_type):
            encoded = ENCODER.encode(value)
            return msgspec.json.decode(encoded, type=struct_type), encoded
        if not isinstance(value, Mapping):
            raise InvalidInputError(
                field, f"must be a {struct_type.__name__} or a dict, got {type(value).__name__}"
            )
        checked = msgspec.convert(value, struct_type)
        return checked, ENCODER.encode(checked)
    except msgspec.ValidationError as exc:
        path = _field_path(exc)
        raise InvalidInputError(f"{field}.{path}" if path else field, str(exc)) from None
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidInputError(field, f"cannot be encoded as JSON: {exc}") from None
