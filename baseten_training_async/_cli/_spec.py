"""Building job specs from a spec file (JSON, TOML or YAML) and command-line flags."""

from __future__ import annotations

import difflib
import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from .. import TrainingJobSpec
from ._exit import UsageError

__all__ = ["SpecFlags", "build_spec", "load_spec_file", "numbered_specs", "parse_accelerator"]


class SpecFlags(msgspec.Struct, kw_only=True):
    """Spec settings given as flags; each set one overrides the spec file.

    Attributes:
        name: Job name.
        image: Base image.
        accelerator: ``(type, count)`` per node.
        nodes: Node count.
        cpu: CPUs per node.
        memory: Memory per node, e.g. ``64Gi``.
        commands: Start commands (replace the file's when given).
        env: Environment variables (merged over the file's).
    """

    name: str | None = None
    image: str | None = None
    accelerator: tuple[str, int] | None = None
    nodes: int | None = None
    cpu: int | None = None
    memory: str | None = None
    commands: list[str] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)


def parse_accelerator(value: str) -> tuple[str, int]:
    """Parse ``H100:8`` (or ``H100`` for one GPU).

    Args:
        value: The flag's value.

    Returns:
        ``(accelerator, count)``.

    Raises:
        UsageError: The value is malformed.
    """
    kind, sep, count_text = value.partition(":")
    kind = kind.strip()
    if not kind:
        raise UsageError(f"--accelerator {value!r}: expected TYPE[:COUNT], e.g. H100:8")
    if not sep:
        return kind, 1
    try:
        count = int(count_text)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--accelerator {value!r}: COUNT must be a positive integer")
    return kind, count


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """Parse repeated ``--env KEY=VALUE`` flags.

    Args:
        items: The flags' values.

    Returns:
        The variables, later flags winning.

    Raises:
        UsageError: A flag has no ``=`` or an empty key.
    """
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--env {item!r}: expected KEY=VALUE")
        env[key.strip()] = value
    return env


SPEC_SUFFIXES = (".json", ".toml", ".yaml", ".yml")


def _parse_yaml(text: str, path: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise UsageError(
            f"{path}: reading YAML specs needs PyYAML, which the cli extra installs "
            "(pip install 'baseten-training-async[cli]'); or write the spec as JSON or TOML"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML: {exc}") from None


def load_spec_file(path: str) -> dict[str, Any]:
    """Read a spec file; the format is chosen by extension: JSON, TOML or YAML.

    ``-`` reads JSON from stdin. A document of the API's request shape,
    ``{"training_job": {...}}``, is unwrapped.

    Args:
        path: The file, or ``-``.

    Returns:
        The spec as a dict.

    Raises:
        UsageError: Another extension, or the file cannot be read or parsed, or is
            not an object.
    """
    suffix = "" if path == "-" else Path(path).suffix.lower()
    if path != "-" and suffix not in SPEC_SUFFIXES:
        raise UsageError(
            f"{path}: unknown spec file type {suffix or '(no extension)'!r}; "
            f"use {', '.join(SPEC_SUFFIXES)}, or '-' for JSON on stdin"
        )
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read spec file {path}: {reason}") from None
    data: Any
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = _parse_yaml(text, path)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if suffix == ".toml" else "JSON"
        raise UsageError(f"{path}: invalid {kind}: {exc}") from None
    if isinstance(data, dict) and set(data) == {"training_job"}:
        data = data["training_job"]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a spec must be an object, got {type(data).__name__}")
    return data


def _section(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key)
    if value is None:
        value = spec[key] = {}
    if not isinstance(value, dict):
        raise UsageError(f"spec.{key}: must be an object to combine with flags")
    return value


def _field_path(error: msgspec.ValidationError) -> str:
    text, _, where = str(error).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    _, found, rest = text.partition("field `")
    if found:
        name = rest.partition("`")[0]
        path = f"{path}.{name}" if path else name
    return f"spec.{path}" if path else "spec"


def build_spec(file_spec: Mapping[str, Any] | None, flags: SpecFlags) -> TrainingJobSpec:
    """Combine a spec file and flags into a validated spec.

    Args:
        file_spec: The spec file's contents, if one was given.
        flags: Flag settings; each one given overrides the file.

    Returns:
        The spec.

    Raises:
        UsageError: No image, or a field is invalid (the message names it).
    """
    spec: dict[str, Any] = json.loads(json.dumps(file_spec)) if file_spec else {}
    if flags.name is not None:
        spec["name"] = flags.name
    if flags.image is not None:
        _section(spec, "image")["base_image"] = flags.image
    compute_flags = {
        "node_count": flags.nodes,
        "cpu_count": flags.cpu,
        "memory": flags.memory,
    }
    if flags.accelerator is not None or any(v is not None for v in compute_flags.values()):
        compute = _section(spec, "compute")
        compute.update({k: v for k, v in compute_flags.items() if v is not None})
        if flags.accelerator is not None:
            kind, count = flags.accelerator
            compute["accelerator"] = {"accelerator": kind, "count": count}
    if flags.commands or flags.env:
        runtime = _section(spec, "runtime")
        if flags.commands:
            runtime["start_commands"] = list(flags.commands)
        if flags.env:
            env = runtime.get("environment_variables") or {}
            if not isinstance(env, dict):
                raise UsageError("spec.runtime.environment_variables: must be an object")
            runtime["environment_variables"] = {**env, **flags.env}
    if "image" not in spec:
        raise UsageError("spec.image: required; pass --image IMAGE or a --spec file with one")
    try:
        return msgspec.convert(spec, TrainingJobSpec)
    except msgspec.ValidationError as exc:
        message = str(exc).partition(" - at `$")[0]
        field = _field_path(exc)
        hint = _did_you_mean(field) if "unknown field" in message else ""
        raise UsageError(f"{field}: {message}{hint}") from None


def _struct_info(info: Any) -> msgspec.inspect.StructType | None:
    """The struct inside a (possibly optional, list or dict) field type."""
    if isinstance(info, msgspec.inspect.StructType):
        return info
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            found = _struct_info(member)
            if found is not None:
                return found
    if isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType):
        return _struct_info(info.item_type)
    if isinstance(info, msgspec.inspect.DictType):
        return _struct_info(info.value_type)
    return None


def _did_you_mean(field: str) -> str:
    """`` (did you mean 'compute'?)`` for a misspelt spec field, or ""."""
    parts = [p for p in re.split(r"\.|\[\d+\]", field.removeprefix("spec.")) if p]
    if not parts:
        return ""
    struct = _struct_info(msgspec.inspect.type_info(TrainingJobSpec))
    for part in parts[:-1]:
        if struct is None:
            return ""
        inner = next((f.type for f in struct.fields if f.encode_name == part), None)
        struct = _struct_info(inner)
    if struct is None:
        return ""
    names = [f.encode_name for f in struct.fields]
    close = difflib.get_close_matches(parts[-1], names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known fields: {', '.join(names)})"


def numbered_specs(spec: TrainingJobSpec, count: int) -> list[TrainingJobSpec]:
    """``count`` copies of a spec named ``NAME-0001``, ``NAME-0002``, ...

    A single copy keeps its name. Without a name, copies are named after the
    current UTC time, so that every job has a name the SDK can reconcile by.

    Args:
        spec: The spec to copy.
        count: How many.

    Returns:
        The specs.
    """
    if count == 1:
        return [spec]
    base = spec.name or f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    width = max(4, len(str(count)))
    return [
        msgspec.structs.replace(spec, name=f"{base}-{i:0{width}d}") for i in range(1, count + 1)
    ]
