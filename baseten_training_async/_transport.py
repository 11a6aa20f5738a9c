"""The transport seam: what the request core needs from an HTTP client.

`AsyncTrainingClient(transport=...)` takes anything with this shape. The
default is the aiohttp transport in ``_http.py``; tests pass
`baseten_training_async.testing.MockTransport`. A transport sends one request
and reads one whole response; it never retries, redirects or decodes JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import msgspec

__all__ = ["HTTPRequest", "HTTPResponse", "QueryParams", "Transport"]

QueryParams = Mapping[str, str | int]


class HTTPRequest(msgspec.Struct, frozen=True, gc=False):
    """One request, ready to send (frozen).

    Attributes:
        method: The HTTP method.
        url: The absolute URL, path already escaped, without the query.
        params: Query parameters.
        headers: Every header to send, authentication included.
        body: The encoded JSON body, if any.
        timeout: Seconds allowed for the whole attempt.
    """

    method: str
    url: str
    params: QueryParams | None
    headers: Mapping[str, str]
    body: bytes | None
    timeout: float


class HTTPResponse(msgspec.Struct, frozen=True, gc=False):
    """A response read in full (frozen).

    Attributes:
        status: The HTTP status.
        headers: Case-insensitive response headers.
        body: The body bytes (decompressed).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@runtime_checkable
class Transport(Protocol):
    """Sends one HTTP request and returns the whole response.

    A transport raises only SDK errors: `APIConnectionError` (with
    ``maybe_committed=False`` only when the request certainly never left),
    `APITimeoutError`, or `APIResponseValidationError` for a body it refuses
    to read (too large).
    """

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read its response."""
        ...

    async def aclose(self) -> None:
        """Release connections; safe to call more than once."""
        ...
