"""The bundled OpenAPI document and the per-operation validators compiled from it."""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ._schema import SchemaCompiler, SchemaError, Validator

__all__ = ["Operation", "QueryParam", "Spec", "load_spec"]

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A query parameter of one operation.

    Attributes:
        name: Parameter name.
        kind: How the raw string is converted before validation.
        validator: Compiled schema of the converted value.
    """

    name: str
    kind: Literal["integer", "string"]
    validator: Validator

    def parse(self, raw: str) -> int | str:
        """Convert and validate one raw query value.

        Args:
            raw: The value as it appears in the URL.

        Returns:
            The converted value.

        Raises:
            SchemaError: The value is not acceptable.
        """
        value: int | str = raw
        if self.kind == "integer":
            try:
                value = int(raw.strip())
            except ValueError:
                raise SchemaError(self.name, f"expected integer, got {raw!r}") from None
        self.validator(value, self.name)
        return value


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path of the spec.

    Attributes:
        route: ``"METHOD /path/template"``.
        method: Upper-case HTTP method.
        path: Path template with ``{param}`` placeholders.
        request_schema: ``$ref`` of the JSON request body schema, if any.
        response_schema: ``$ref`` of the 200 response body schema.
        request_validator: Request validator (extras kept, null for an optional field
            taken as absent, defaults filled).
        response_validator: Lenient validator of the 200 body.
        query: Query parameters declared by the spec.
    """

    route: str
    method: str
    path: str
    request_schema: str | None
    response_schema: str
    request_validator: Validator | None
    response_validator: Validator
    query: tuple[QueryParam, ...]

    def matches(self, path: str) -> bool:
        """Return whether a request path fits this operation's template.

        Args:
            path: A request path such as ``/v1/training_projects/abc``.

        Returns:
            True when every literal segment matches and each placeholder is non-empty.
        """
        return _template_regex(self.path).fullmatch(path) is not None


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^/}]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


class Spec:
    """The parsed OpenAPI document with compiled validators for every operation.

    Args:
        document: The decoded OpenAPI document.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        # Like the real API: unknown fields are ignored and null is accepted for any
        # optional field (the docs and the official clients send both).
        self.requests = SchemaCompiler(document, fill_defaults=True, null_as_absent=True)
        self.responses = SchemaCompiler(document)
        operations: dict[str, Operation] = {}
        for path, item in dict(document["paths"]).items():
            for method in _METHODS:
                if method in item:
                    op = self._operation(path, method, item[method])
                    operations[op.route] = op
        self.operations: Mapping[str, Operation] = operations

    def _operation(self, path: str, method: str, op: Mapping[str, Any]) -> Operation:
        route = f"{method.upper()} {path}"
        request_ref: str | None = None
        body = op.get("requestBody")
        if body is not None:
            request_ref = str(body["content"]["application/json"]["schema"]["$ref"])
        response_ref = str(op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
        query = tuple(
            QueryParam(
                name=str(param["name"]),
                kind=self._query_kind(param["schema"]),
                validator=self.requests.compile(param["schema"]),
            )
            for param in op.get("parameters", ())
            if param.get("in") == "query"
        )
        return Operation(
            route=route,
            method=method.upper(),
            path=path,
            request_schema=request_ref,
            response_schema=response_ref,
            request_validator=self.requests.compile_ref(request_ref) if request_ref else None,
            response_validator=self.responses.compile_ref(response_ref),
            query=query,
        )

    def _query_kind(self, schema: Mapping[str, Any]) -> Literal["integer", "string"]:
        stack: list[Mapping[str, Any]] = [schema]
        while stack:
            node = stack.pop()
            if "$ref" in node:
                node = self.schema(str(node["$ref"]).rsplit("/", 1)[-1])
            if node.get("type") == "integer":
                return "integer"
            stack.extend(node.get("anyOf", ()))
        return "string"

    def schema(self, name: str) -> Mapping[str, Any]:
        """Return a component schema by name.

        Args:
            name: Component name, e.g. ``"TrainingJobV1"``.

        Returns:
            The raw schema mapping.
        """
        schemas: Mapping[str, Any] = self.document["components"]["schemas"]
        return dict(schemas[name])


def spec_bytes() -> bytes:
    """Return the bundled ``openapi.json`` bytes.

    Returns:
        The raw file contents.
    """
    return importlib.resources.files(__package__).joinpath("openapi.json").read_bytes()


@functools.cache
def load_spec() -> Spec:
    """Load and compile the bundled spec once per process.

    Returns:
        The shared `Spec`.
    """
    return Spec(msgspec.json.decode(spec_bytes()))
