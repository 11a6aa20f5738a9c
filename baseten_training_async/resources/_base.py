"""What every resource shares: the core, and checked request models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from .._codec import ENCODER
from .._core import Core
from .._errors import InvalidInputError
from .._reconcile import Reconciler
from .._watch import PollSettings, StatusPoller

__all__ = ["Resource", "checked_struct", "non_empty"]

S = TypeVar("S", bound=msgspec.Struct)


class Resource:
    """Base class of the resource groups."""

    __slots__ = ("_core", "_poller", "_reconciler")

    def __init__(
        self, core: Core, reconciler: Reconciler, poller: StatusPoller | None = None
    ) -> None:
        self._core = core
        self._reconciler = reconciler
        # The client hands every view its one poller; a resource built alone gets its own.
        self._poller = poller if poller is not None else StatusPoller(PollSettings())


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


def checked_struct(field: str, value: Any, struct_type: type[S]) -> S:
    """Validate a request model (or a plain dict of one).

    Constraints such as ``count >= 1`` are enforced on decode only, so a
    model is encoded and decoded again: cheap, and it catches fields set to
    the wrong type after construction as well. A dict is converted, so that
    its nulls and defaults are dropped from the wire like a model's.

    Raises:
        InvalidInputError: Naming the first offending field, e.g.
            ``spec.compute.node_count``.
    """
    try:
        if isinstance(value, struct_type):
            return msgspec.json.decode(ENCODER.encode(value), type=struct_type)
        if not isinstance(value, Mapping):
            raise InvalidInputError(
                field, f"must be a {struct_type.__name__} or a dict, got {type(value).__name__}"
            )
        return msgspec.convert(value, struct_type)
    except msgspec.ValidationError as exc:
        path = _field_path(exc)
        raise InvalidInputError(f"{field}.{path}" if path else field, str(exc)) from None
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidInputError(field, f"cannot be encoded as JSON: {exc}") from None


def non_empty(field: str, value: str) -> str:
    """``value`` if it is a non-empty string.

    Raises:
        InvalidInputError: Naming ``field``.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, "must be a non-empty string")
    return value
