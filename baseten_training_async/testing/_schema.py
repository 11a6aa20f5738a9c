"""A small JSON Schema validator for the subset of keywords the training spec uses.

Supported keywords: ``$ref`` (local ``#/...`` pointers), ``type`` (string or list),
``properties``, ``required``, ``additionalProperties`` (bool or schema), ``items``,
``anyOf``, ``oneOf`` (with or without ``discriminator``), ``enum``, ``const``,
``minimum``, ``maximum`` and ``default``. Annotations (``title``, ``description``,
``examples``, ``format``) are ignored.

Schemas are compiled once into closures; validating a value only walks the value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SchemaCompiler", "SchemaError", "Validator", "json_type_name"]

Validator = Callable[[Any, str], None]
"""A compiled schema: ``validator(value, path)`` raises `SchemaError` or returns None."""

_MISSING = object()


class SchemaError(ValueError):
    """A value does not match a schema.

    Attributes:
        path: Dotted path of the offending field (``""`` for the root).
        reason: What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


def json_type_name(value: object) -> str:
    """Return the JSON type name of a decoded JSON value.

    Args:
        value: A value produced by a JSON decoder.

    Returns:
        One of ``null``, ``boolean``, ``integer``, ``number``, ``string``, ``array``,
        ``object`` (or the Python type name for non-JSON values).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: object, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    return True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return repr(schema["const"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    types = schema.get("type")
    if isinstance(types, list):
        return " or ".join(str(t) for t in types)
    if isinstance(types, str):
        return types
    return "value"


class SchemaCompiler:
    """Compile JSON Schemas of one document into fast validators.

    Args:
        document: The whole document ``$ref`` pointers resolve against.
        forbid_extra: Reject object properties not listed in ``properties`` when a
            schema declares ``properties`` but no ``additionalProperties`` (the
            behaviour of request models that forbid extras).
        fill_defaults: Insert ``default`` values of missing properties into
            validated objects (mutates the value, like a server's request parser).
        null_as_absent: Accept ``null`` for an optional property whose schema does not
            allow it, and treat it as absent (the default is filled in, or the key
            dropped), as request parsers with optional fields do.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        forbid_extra: bool = False,
        fill_defaults: bool = False,
        null_as_absent: bool = False,
    ) -> None:
        self._document = document
        self._forbid_extra = forbid_extra
        self._fill_defaults = fill_defaults
        self._null_as_absent = null_as_absent
        self._refs: dict[str, list[Validator]] = {}

    def compile_ref(self, ref: str) -> Validator:
        """Compile the schema a local ``$ref`` points to (cached).

        Args:
            ref: A pointer such as ``#/components/schemas/TrainingJobV1``.

        Returns:
            The validator for that schema.
        """
        cell = self._refs.get(ref)
        if cell is None:
            cell = []
            self._refs[ref] = cell
            cell.append(self.compile(self._resolve(ref)))

        if cell:
            return cell[0]

        # Recursive reference still being compiled: defer the lookup.
        def deferred(value: Any, path: str) -> None:
            cell[0](value, path)

        return deferred

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref pointers are supported, got {ref!r}")
        node: Any = self._document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, Mapping):
            raise ValueError(f"$ref {ref!r} does not point to a schema object")
        return node

    def compile(self, schema: Mapping[str, Any] | bool) -> Validator:
        """Compile one schema.

        Args:
            schema: A JSON Schema object (or a boolean schema).

        Returns:
            A validator raising `SchemaError` for values that do not match.
        """
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        assert isinstance(schema, Mapping)
        if "$ref" in schema:
            return self.compile_ref(str(schema["$ref"]))
        checks: list[Validator] = []
        types = schema.get("type")
        if types is not None:
            checks.append(_type_check(types if isinstance(types, list) else [types]))
        if "enum" in schema:
            checks.append(_enum_check(list(schema["enum"])))
        if "const" in schema:
            checks.append(_const_check(schema["const"]))
        if "minimum" in schema or "maximum" in schema:
            checks.append(_range_check(schema.get("minimum"), schema.get("maximum")))
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            checks.append(self._object_check(schema))
        if "items" in schema:
            checks.append(self._items_check(schema["items"]))
        if "anyOf" in schema:
            checks.append(self._any_of_check(schema["anyOf"]))
        if "oneOf" in schema:
            checks.append(self._one_of_check(schema["oneOf"], schema.get("discriminator")))
        if not checks:
            return _accept
        if len(checks) == 1:
            return checks[0]
        frozen = tuple(checks)

        def check_all(value: Any, path: str) -> None:
            for check in frozen:
                check(value, path)

        return check_all

    def _object_check(self, schema: Mapping[str, Any]) -> Validator:
        props = {
            name: self.compile(sub) for name, sub in dict(schema.get("properties", {})).items()
        }
        required = tuple(schema.get("required", ()))
        optional = frozenset(props) - frozenset(required) if self._null_as_absent else frozenset()
        defaults: tuple[tuple[str, Any, bool], ...] = ()
        if self._fill_defaults:
            defaults = tuple(
                (name, sub["default"], isinstance(sub["default"], list | dict))
                for name, sub in dict(schema.get("properties", {})).items()
                if isinstance(sub, Mapping) and "default" in sub
            )
        extra_schema = schema.get("additionalProperties", _MISSING)
        extra: Validator | None
        if extra_schema is _MISSING:
            forbid = self._forbid_extra and "properties" in schema
            extra = None if forbid else _accept
        elif extra_schema is False:
            extra = None
        else:
            extra = self.compile(extra_schema)
        allowed = ", ".join(sorted(props))

        def check_object(value: Any, path: str) -> None:
            if not isinstance(value, dict):
                return  # the type check (if any) reports non-objects
            for name in required:
                if name not in value:
                    raise SchemaError(_join(path, name), "field required")
            absent: list[str] = []
            for key, item in value.items():
                validator = props.get(key)
                if validator is not None:
                    if item is None and key in optional:
                        try:
                            validator(item, _join(path, key))
                        except SchemaError:
                            absent.append(key)
                        continue
                    validator(item, _join(path, key))
                elif extra is None:
                    raise SchemaError(
                        _join(path, str(key)), f"unknown field (allowed: {allowed or 'none'})"
                    )
                elif extra is not _accept:
                    extra(item, _join(path, str(key)))
            for key in absent:
                del value[key]
            for name, default, mutable in defaults:
                if name not in value:
                    value[name] = copy.deepcopy(default) if mutable else default

        return check_object

    def _items_check(self, items: Mapping[str, Any] | bool) -> Validator:
        item_check = self.compile(items)

        def check_items(value: Any, path: str) -> None:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    item_check(item, f"{path}[{index}]")

        return check_items

    def _any_of_check(self, branches: list[Mapping[str, Any]]) -> Validator:
        compiled = [(self.compile(branch), self._branch_types(branch)) for branch in branches]
        expected = " or ".join(_describe(branch) for branch in branches)

        def check_any_of(value: Any, path: str) -> None:
            errors: list[SchemaError] = []
            for validator, branch_types in compiled:
                try:
                    validator(value, path)
                except SchemaError as exc:
                    if branch_types is None or any(_is_type(value, t) for t in branch_types):
                        errors.append(exc)
                    continue
                return
            if len(errors) == 1:
                raise errors[0]
            raise SchemaError(path, f"expected {expected}, got {json_type_name(value)}")

        return check_any_of

    def _one_of_check(
        self, branches: list[Mapping[str, Any]], discriminator: Mapping[str, Any] | None
    ) -> Validator:
        if discriminator is not None:
            prop = str(discriminator["propertyName"])
            mapping: dict[str, Validator] = {
                str(tag): self.compile_ref(str(ref))
                for tag, ref in dict(discriminator.get("mapping", {})).items()
            }
            tags = ", ".join(repr(tag) for tag in mapping)

            def check_tagged(value: Any, path: str) -> None:
                if not isinstance(value, dict):
                    raise SchemaError(path, f"expected object, got {json_type_name(value)}")
                tag = value.get(prop, _MISSING)
                if tag is _MISSING:
                    raise SchemaError(_join(path, prop), f"discriminator required (one of {tags})")
                validator = mapping.get(tag) if isinstance(tag, str) else None
                if validator is None:
                    raise SchemaError(_join(path, prop), f"must be one of {tags}, got {tag!r}")
                validator(value, path)

            return check_tagged

        compiled = [self.compile(branch) for branch in branches]

        def check_one_of(value: Any, path: str) -> None:
            matches = 0
            first: SchemaError | None = None
            for validator in compiled:
                try:
                    validator(value, path)
                except SchemaError as exc:
                    first = first or exc
                else:
                    matches += 1
            if matches == 1:
                return
            if matches == 0 and first is not None:
                raise first
            raise SchemaError(path, "matches more than one allowed schema")

        return check_one_of

    def _branch_types(self, branch: Mapping[str, Any]) -> list[str] | None:
        """Return the JSON types a branch accepts, resolving refs; None if unconstrained."""
        seen = 0
        while "$ref" in branch and seen < 32:
            branch = self._resolve(str(branch["$ref"]))
            seen += 1
        types = branch.get("type")
        if isinstance(types, str):
            return [types]
        if isinstance(types, list):
            return [str(t) for t in types]
        return None


def _accept(value: Any, path: str) -> None:
    return None


def _reject(value: Any, path: str) -> None:
    raise SchemaError(path, "no value is allowed here")


def _type_check(types: list[str]) -> Validator:
    if len(types) == 1:
        name = types[0]

        def check_type(value: Any, path: str) -> None:
            if not _is_type(value, name):
                raise SchemaError(path, f"expected {name}, got {json_type_name(value)}")

        return check_type
    expected = " or ".join(types)

    def check_types(value: Any, path: str) -> None:
        if not any(_is_type(value, name) for name in types):
            raise SchemaError(path, f"expected {expected}, got {json_type_name(value)}")

    return check_types


def _enum_check(options: list[Any]) -> Validator:
    listing = ", ".join(repr(option) for option in options)

    def check_enum(value: Any, path: str) -> None:
        for option in options:
            if value == option and type(value) is type(option):
                return
        raise SchemaError(path, f"must be one of {listing}, got {value!r}")

    return check_enum


def _const_check(expected: Any) -> Validator:
    def check_const(value: Any, path: str) -> None:
        if value != expected or type(value) is not type(expected):
            raise SchemaError(path, f"must be {expected!r}, got {value!r}")

    return check_const


def _range_check(minimum: float | None, maximum: float | None) -> Validator:
    def check_range(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if minimum is not None and value < minimum:
            raise SchemaError(path, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise SchemaError(path, f"must be <= {maximum}, got {value}")

    return check_range
