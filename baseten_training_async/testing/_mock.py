"""`MockTransport` and the testing switch for time: test without sockets or waiting."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy

from .._clock import VirtualClock, set_clock
from .._transport import HTTPRequest, HTTPResponse

__all__ = ["MockTransport", "fake_time", "json_response"]

Handler = Callable[[HTTPRequest], HTTPResponse | Awaitable[HTTPResponse]]


def json_response(
    status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    """An `HTTPResponse` with ``body`` encoded as JSON.

    Args:
        status: The HTTP status.
        body: Anything msgspec can encode; bytes are sent as they are.
        headers: Extra response headers.
    """
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    merged = CIMultiDict({"Content-Type": "application/json"})
    if headers:
        merged.update(headers)
    return HTTPResponse(status, CIMultiDictProxy(merged), raw)


class MockTransport:
    """A transport that hands every request to ``handler`` instead of the network.

    Pass it as ``AsyncTrainingClient(..., transport=MockTransport(handler))``.
    The handler (sync or async) takes an `HTTPRequest` and returns an
    `HTTPResponse` (see `json_response`), or raises an SDK error such as
    ``APIConnectionError`` to act out a network failure. Every request is kept
    in `requests`.

    Example:
        >>> def handler(request: HTTPRequest) -> HTTPResponse:
        ...     return json_response(200, {"training_projects": []})
        >>> client = AsyncTrainingClient("key", transport=MockTransport(handler))
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed = False

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Record ``request`` and return the handler's response."""
        self.requests.append(request)
        response = self.handler(request)
        if inspect.isawaitable(response):
            response = await response
        headers = response.headers
        if not isinstance(headers, CIMultiDictProxy):
            headers = CIMultiDictProxy(CIMultiDict(headers))
        return HTTPResponse(response.status, headers, response.body)

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True


@contextlib.contextmanager
def fake_time(start: float = 0.0) -> Iterator[VirtualClock]:
    """Inside this block, every SDK wait takes no real time.

    Every client built without its own ``clock=`` sleeps on the returned
    `VirtualClock`: a sleep advances it and yields to the event loop once, so
    retry backoff, the 429 gate, reconciliation, ``wait()`` and log follow run
    their full schedules in milliseconds, and their deadlines pass exactly as
    the sleeps say. ``clock.sleeps`` records every wait.

    Example:
        >>> with fake_time() as clock:  # doctest: +SKIP
        ...     await client.jobs.wait(project_id, job_id, timeout=1800)
    """
    clock = VirtualClock(start)
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
