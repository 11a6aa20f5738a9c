"""A hostile HTTP/1.1 server written from raw sockets, and a client that survives it.

The server is a plain ``asyncio.start_server`` on loopback that shares none of the
SDK's assumptions: each test scripts the bytes it answers with (status line,
headers, body, framing, pauses, an early close). For every case the tests assert
that only SDK exceptions escape, within a time bound, that the client still works
afterwards, and that the API key appears nowhere a user can see: the error's
``str``/``repr``, its attributes (recursively), its ``__cause__``/``__context__``
chain, its ``request_id``, its formatted traceback, and the log records.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import logging
import time
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import msgspec
import pytest

from baseten_training_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncTrainingClient,
    AuthenticationError,
    BadRequestError,
    BasetenError,
    InternalServerError,
    PaginationError,
    RateLimitError,
    RetryPolicy,
)

KEY = "sk_live+Hostile/Key=0123456789abcdef"
"""Has ``+``, ``/`` and ``=`` so that its URL-encoded and base64 forms differ from it."""

QUICK = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.05, deadline=8)

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

MIB = 1 << 20
PROJECTS_PATH = "/v1/training_projects"
LOGS_PATH = "/v1/training_projects/proj/jobs/job/logs"


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Request:
    """One request as the raw server read it."""

    method: str
    target: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    @property
    def key(self) -> str:
        """The API key the client sent."""
        return self.headers["authorization"].split(" ", 1)[1]


TRUE_LENGTH = -1


@dataclass(frozen=True)
class Reply:
    """What the server sends back, byte for byte.

    Attributes:
        status: The status code of the status line.
        headers: Headers, sent as given (``Content-Length`` is added per ``length``).
        body: The body, before chunked framing.
        length: ``Content-Length`` to declare: `TRUE_LENGTH` for the real one, an int
            to lie, None for none (the body then ends when the connection closes,
            unless ``chunked``).
        chunked: Frame the body with ``Transfer-Encoding: chunked``.
        head: Raw bytes sent instead of the status line and headers.
        piece: Bytes written per write.
        pause: Seconds between pieces (a slow loris).
        head_pause: Seconds between the bytes of the status line and headers.
        cut_after: Send only this many bytes of the (framed) body, then close.
        stall: Seconds to hold the connection open, silent, after the last byte.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: bytes = b""
    length: int | None = TRUE_LENGTH
    chunked: bool = False
    head: bytes | None = None
    piece: int = 1 << 16
    pause: float = 0.0
    head_pause: float = 0.0
    cut_after: int | None = None
    stall: float = 0.0

    def encode_head(self) -> bytes:
        if self.head is not None:
            return self.head
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Whatever')}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        elif self.length is not None:
            lines.append(f"Content-Length: {len(self.body) if self.length < 0 else self.length}")
        if not self.keeps_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def encode_body(self) -> bytes:
        if not self.chunked:
            return self.body
        framed = [
            b"%x\r\n%s\r\n" % (len(part), part)
            for part in (self.body[i : i + 4096] for i in range(0, len(self.body), 4096))
        ]
        return b"".join(framed) + b"0\r\n\r\n"

    @property
    def keeps_alive(self) -> bool:
        framed = self.chunked or self.length is not None
        return framed and self.cut_after is None and self.head is None


Handler = Callable[[Request], Reply]
Expected = type[BasetenError] | tuple[type[BasetenError], ...]


def json_reply(status: int, payload: Any, *extra: tuple[str, str]) -> Reply:
    return Reply(
        status=status,
        headers=(("Content-Type", "application/json"), *extra),
        body=msgspec.json.encode(payload),
    )


def project(name: str) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "latest_job": None,
    }


def honest(request: Request) -> Reply:
    if request.method == "GET" and request.path == PROJECTS_PATH:
        return json_reply(200, {"training_projects": [project("ok")]})
    return json_reply(404, {"message": f"no route {request.method} {request.path}"})


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 that says exactly what ``hostile`` tells it.

    While ``hostile`` is set it answers every request; set it to None and the
    server answers honestly (`honest`). Every request is recorded.
    """

    def __init__(self) -> None:
        self.hostile: Handler | None = None
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 5)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    break
                self.requests.append(request)
                reply = (self.hostile or honest)(request)
                await self._write(writer, reply)
                if not reply.keeps_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # closing: returning, not re-raising, keeps asyncio's stream callback quiet
        finally:
            self._connections.discard(task)
            writer.transport.abort()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Request(method, target, headers, body)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: Reply) -> None:
        head = reply.encode_head()
        if reply.head_pause:
            for i in range(len(head)):
                writer.write(head[i : i + 1])
                await writer.drain()
                await asyncio.sleep(reply.head_pause)
        else:
            writer.write(head)
        body = reply.encode_body()
        end = len(body) if reply.cut_after is None else min(reply.cut_after, len(body))
        for start in range(0, end, reply.piece):
            writer.write(body[start : min(start + reply.piece, end)])
            await writer.drain()
            if reply.pause:
                await asyncio.sleep(reply.pause)
        await writer.drain()
        if reply.stall:
            await asyncio.sleep(reply.stall)


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as raw:
        yield raw


@pytest.fixture
async def client(server: RawServer) -> AsyncIterator[AsyncTrainingClient]:
    async with AsyncTrainingClient(
        KEY, base_url=server.url, timeout=1.0, retry_policy=QUICK, max_response_bytes=1 << 20
    ) as c:
        yield c


# --------------------------------------------------------------------------- the checks


def _json_escaped(text: str, upper: bool = False) -> str:
    return "".join(f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in text)


def _b64(text: str) -> list[str]:
    raw = text.encode()
    std = base64.b64encode(raw).decode()
    return [std, std.rstrip("="), base64.urlsafe_b64encode(raw).decode()]


SECRET_FORMS = sorted(
    {
        KEY,
        quote(KEY, safe=""),
        quote(KEY),
        _json_escaped(KEY),
        _json_escaped(KEY, upper=True),
        *_b64(KEY),
        *_b64(f"Api-Key {KEY}"),
    }
)


def _texts(obj: object, seen: set[int], depth: int = 0) -> Iterator[str]:
    """Every string a user could get at from ``obj``: reprs, attributes, chains."""
    if id(obj) in seen or depth > 10:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
        return
    if isinstance(obj, bytes | bytearray | memoryview):
        yield bytes(obj).decode("latin-1")
        return
    if obj is None or isinstance(obj, int | float | type | ModuleType | FunctionType):
        return
    if isinstance(obj, asyncio.AbstractEventLoop):
        return
    yield repr(obj)
    if isinstance(obj, BaseException):
        yield str(obj)
        yield from _texts(obj.args, seen, depth + 1)
        yield from _texts(getattr(obj, "__notes__", None), seen, depth + 1)
        yield from _texts(obj.__cause__, seen, depth + 1)
        yield from _texts(obj.__context__, seen, depth + 1)
    if isinstance(obj, Mapping):
        for name, value in obj.items():
            yield from _texts(name, seen, depth + 1)
            yield from _texts(value, seen, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _texts(item, seen, depth + 1)
    if isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            yield from _texts(getattr(obj, name), seen, depth + 1)
    if hasattr(obj, "__dict__"):
        yield from _texts(vars(obj), seen, depth + 1)
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if isinstance(slot, str):
                yield from _texts(getattr(obj, slot, None), seen, depth + 1)


def leaks(obj: object) -> list[str]:
    """Where (by a short excerpt) any form of the key shows in what ``obj`` exposes."""
    found = []
    for text in _texts(obj, set()):
        for form in SECRET_FORMS:
            at = text.find(form)
            if at >= 0:
                found.append(f"{form!r} in ...{text[max(0, at - 60) : at + 20]!r}")
    return found


def assert_key_absent(error: BaseException, records: list[logging.LogRecord]) -> None:
    assert leaks(error) == []
    assert leaks(traceback.format_exception(error)) == []
    if isinstance(error, APIStatusError):
        assert leaks(error.request_id) == []
    for record in records:
        shown = [record.getMessage(), record.args]
        if record.exc_info:
            shown.append(logging.Formatter().formatException(record.exc_info))
        assert leaks(shown) == [], record.getMessage()


async def ordeal(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    hostile: Handler,
    *,
    expect: Expected,
    within: float,
    call: Callable[[AsyncTrainingClient], Any] | None = None,
) -> BasetenError:
    """Run one call against ``hostile``; check the error, the time, the key and recovery."""
    server.hostile = hostile
    started = time.perf_counter()
    error: Exception | None = None
    with caplog.at_level(logging.DEBUG, logger="baseten_training_async"):
        try:
            await asyncio.wait_for(call(client) if call else client.projects.list(), within)
        except Exception as exc:
            error = exc
    elapsed = time.perf_counter() - started
    assert error is not None, "the hostile answer was accepted"
    assert isinstance(error, BasetenError), f"{type(error).__module__}.{type(error).__name__}"
    assert isinstance(error, expect), repr(error)
    assert elapsed < within
    assert_key_absent(error, caplog.records)
    await assert_healthy(server, client)
    return error


async def assert_healthy(server: RawServer, client: AsyncTrainingClient) -> None:
    server.hostile = None
    projects = await asyncio.wait_for(client.projects.list(), 5)
    assert [p.name for p in projects] == ["ok"]
    assert client.stats().in_flight == 0


# --------------------------------------------------------------------------- framing


GOOD = msgspec.json.encode({"training_projects": [project("hostile")]})


@pytest.mark.parametrize(
    ("reply", "expect"),
    [
        pytest.param(
            Reply(body=GOOD, length=len(GOOD) + 1000, cut_after=len(GOOD) // 2),
            APIConnectionError,
            id="truncated-then-closed",
        ),
        pytest.param(
            Reply(body=GOOD, length=None, cut_after=len(GOOD) // 2),
            APIResponseValidationError,
            id="truncated-close-delimited",
        ),
        pytest.param(
            Reply(body=GOOD, chunked=True, cut_after=20),
            APIConnectionError,
            id="truncated-chunked",
        ),
        pytest.param(
            Reply(body=GOOD, length=len(GOOD) + 100, stall=3),
            APITimeoutError,
            id="content-length-too-long",
        ),
        pytest.param(Reply(head=b""), APIConnectionError, id="closed-without-a-byte"),
        pytest.param(Reply(body=b""), APIResponseValidationError, id="empty-200"),
        pytest.param(
            Reply(status=400, body=b"\xff\xfe\x00garbage\x80"), BadRequestError, id="binary-400"
        ),
    ],
)
async def test_broken_framing(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    reply: Reply,
    expect: Expected,
) -> None:
    await ordeal(server, client, caplog, lambda request: reply, expect=expect, within=6)


# aiohttp refuses these with ClientResponseError, which holds the request's headers
# (the key among them): it must not survive as the SDK error's cause or context.
@pytest.mark.parametrize(
    ("reply", "expect"),
    [
        pytest.param(
            Reply(body=GOOD, length=12),
            (APIConnectionError, APIResponseValidationError),  # aiohttp sees the extra bytes
            id="content-length-too-short",
        ),
        pytest.param(
            Reply(body=GOOD, headers=(("Content-Length", "12"), ("Content-Length", "99"))),
            APIConnectionError,
            id="content-length-twice",
        ),
        pytest.param(
            Reply(head=b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n" + GOOD),
            APIConnectionError,
            id="content-length-not-a-number",
        ),
        pytest.param(
            Reply(head=b"HTTP/1.1 2OO NOPE\r\n\r\n"), APIConnectionError, id="garbage-status-line"
        ),
        pytest.param(Reply(head=b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), APIConnectionError, id="not-http"),
        pytest.param(
            Reply(headers=(("X-Huge", "a" * 200_000),), body=GOOD),
            APIConnectionError,
            id="header-line-too-long",
        ),
    ],
)
async def test_an_unparseable_response(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    reply: Reply,
    expect: Expected,
) -> None:
    await ordeal(server, client, caplog, lambda request: reply, expect=expect, within=6)


def _bomb(size: int) -> bytes:
    return gzip.compress(b'{"training_projects": [' + b" " * size + b"]}", compresslevel=9)


@pytest.mark.parametrize(
    ("status", "chunked", "declared", "expect"),
    [
        (200, False, True, APIResponseValidationError),
        (200, True, False, APIResponseValidationError),
        (503, True, False, InternalServerError),
        (400, False, False, BadRequestError),
    ],
    ids=["200-content-length", "200-chunked", "503-chunked", "400-close-delimited"],
)
async def test_a_gzip_bomb_is_never_inflated(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    chunked: bool,
    declared: bool,
    expect: type[BasetenError],
) -> None:
    packed = _bomb(200 * MIB)  # 200 MiB of JSON, against a 1 MiB cap
    reply = Reply(
        status=status,
        headers=(("Content-Type", "application/json"), ("Content-Encoding", "gzip")),
        body=packed,
        chunked=chunked,
        length=TRUE_LENGTH if declared else None,
    )
    tracemalloc.start()
    try:
        error = await ordeal(
            server, client, caplog, lambda request: reply, expect=expect, within=10
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"\ngzip bomb {status} ({len(packed) >> 10} KiB -> 200 MiB, cap 1 MiB): "
        f"{type(error).__name__}, traced peak {peak / MIB:.1f} MiB"
    )
    if status < 300:
        assert "limit" in str(error)  # refused once the inflated bytes pass the cap
    else:
        assert len(repr(error)) < 10_000  # an error body: only a bounded prefix was read
    assert peak < 16 * MIB  # the 200 MiB were never held


async def test_a_slow_loris_body_times_out(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    trickle = Reply(body=GOOD, piece=1, pause=0.1)  # ~6 s for the whole body
    error = await ordeal(
        server, client, caplog, lambda request: trickle, expect=APITimeoutError, within=5
    )
    assert isinstance(error, APITimeoutError)
    assert len(server.requests_to(PROJECTS_PATH)) == 1 + 3  # every attempt gave up at 1 s


async def test_a_slow_loris_head_times_out(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    trickle = Reply(body=GOOD, head_pause=0.1)
    await ordeal(server, client, caplog, lambda request: trickle, expect=APITimeoutError, within=5)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    async with RawServer() as elsewhere:
        target = f"{elsewhere.url}{PROJECTS_PATH}?stolen=1"
        redirect = Reply(status=status, headers=(("Location", target),), body=b"moved")
        error = await ordeal(
            server, client, caplog, lambda request: redirect, expect=APIStatusError, within=5
        )
        assert isinstance(error, APIStatusError)
        assert error.status_code == status
        assert elsewhere.requests == []  # the key never went to the other host
    assert len(server.requests_to(PROJECTS_PATH)) == 2  # the redirect, then the healthy call


# --------------------------------------------------------------------------- JSON bombs


DEEP = b"[" * 100_000


@pytest.mark.parametrize(
    ("status", "expect"),
    [
        (200, APIResponseValidationError),
        (400, BadRequestError),
        (429, RateLimitError),
        (500, InternalServerError),
    ],
)
async def test_deeply_nested_json_is_a_typed_error(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    expect: type[BasetenError],
) -> None:
    nested = Reply(status=status, body=DEEP)
    error = await ordeal(server, client, caplog, lambda request: nested, expect=expect, within=6)
    if isinstance(error, APIStatusError):
        assert error.status_code == status
        assert len(repr(error)) < 10_000  # the body is not spelled out in full
    else:
        assert isinstance(error, APIResponseValidationError)
        assert error.status_code == 200


async def test_deep_json_inside_a_valid_envelope(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    # An unknown field is skipped, not typed: only its depth can stop the decoder.
    body = b'{"junk": ' + b"[" * 50_000 + b"]" * 50_000 + b', "training_projects": []}'
    nested = Reply(body=body)
    error = await ordeal(
        server, client, caplog, lambda request: nested, expect=APIResponseValidationError, within=5
    )
    assert "nested too deeply" in str(error)


# --------------------------------------------------------------------------- the key echoed


def _echo_forms(key: str) -> dict[str, str]:
    return {
        "raw": key,
        "with-prefix": f"Api-Key {key}",
        "url-encoded": quote(key, safe=""),
        "base64": base64.b64encode(key.encode()).decode(),
        "base64-unpadded": base64.b64encode(key.encode()).decode().rstrip("="),
        "base64-of-header": base64.b64encode(f"Api-Key {key}".encode()).decode(),
        "base64-urlsafe": base64.urlsafe_b64encode(key.encode()).decode(),
    }


ECHO_FORMS = list(_echo_forms(KEY))


@pytest.mark.parametrize("form", ECHO_FORMS)
@pytest.mark.parametrize("status", [400, 503, 200])
async def test_the_key_echoed_in_the_body_never_shows(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    form: str,
    status: int,
) -> None:
    def echo(request: Request) -> Reply:
        echoed = _echo_forms(request.key)[form]
        if status == 200:  # a success the schema refuses, quoted back in the error
            return json_reply(200, {"training_projects": f"nope {echoed}"})
        return json_reply(status, {"message": f"bad key {echoed}", "key": echoed})

    expect = {400: BadRequestError, 503: InternalServerError, 200: APIResponseValidationError}
    await ordeal(server, client, caplog, echo, expect=expect[status], within=5)


@pytest.mark.parametrize("status", [400, 503, 200])
async def test_the_key_echoed_json_escaped_never_shows(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    def echo(request: Request) -> Reply:
        escaped = _json_escaped(request.key).encode()
        half = _json_escaped(request.key[:10]).encode() + request.key[10:].encode()
        if status == 200:
            body = b'{"training_projects": "' + escaped + b'"}'
        else:
            body = b'{"message": "bad key \\u0041pi-Key ' + escaped + b'", "also": "' + half + b'"}'
        return Reply(status=status, body=body)

    expect = {400: BadRequestError, 503: InternalServerError, 200: APIResponseValidationError}
    error = await ordeal(server, client, caplog, echo, expect=expect[status], within=5)
    if isinstance(error, APIStatusError):
        assert "<redacted>" in error.message


@pytest.mark.parametrize("form", ["raw", "with-prefix", "url-encoded", "base64"])
@pytest.mark.parametrize("status", [200, 400, 429, 503])
async def test_the_key_echoed_in_x_request_id_never_shows(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    form: str,
) -> None:
    def echo(request: Request) -> Reply:
        rid = ("x-request-id", f"req-{_echo_forms(request.key)[form]}")
        if status == 200:
            return json_reply(200, {"training_projects": 1}, rid)
        return json_reply(status, {"message": "no", "retry_after": 0.01}, rid)

    expect = {
        200: APIResponseValidationError,
        400: BadRequestError,
        429: RateLimitError,
        503: InternalServerError,
    }
    error = await ordeal(server, client, caplog, echo, expect=expect[status], within=5)
    if isinstance(error, APIStatusError):
        assert error.request_id is not None
        assert error.request_id.startswith("req-")


@pytest.mark.parametrize(
    ("status", "header", "expect"),
    [
        (302, "Location", APIStatusError),
        (401, "WWW-Authenticate", AuthenticationError),
        (503, "Retry-After", InternalServerError),
        (400, "X-Debug-Authorization", BadRequestError),
    ],
)
async def test_the_key_echoed_in_other_headers_never_shows(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    header: str,
    expect: type[BasetenError],
) -> None:
    def echo(request: Request) -> Reply:
        value = f"https://elsewhere.invalid/?key={quote(request.key, safe='')}&raw={request.key}"
        return json_reply(status, {"message": "see header"}, (header, value))

    error = await ordeal(server, client, caplog, echo, expect=expect, within=5)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status


def test_the_leak_detector_finds_every_form() -> None:
    class Holder:
        __slots__ = ("secret",)

        def __init__(self, secret: object) -> None:
            self.secret = secret

    for form in SECRET_FORMS:
        inner = ValueError("inner")
        inner.detail = {"deep": [Holder(form.encode())]}  # type: ignore[attr-defined]
        outer = BasetenError("outer")
        outer.__context__ = inner
        assert leaks(outer), form


async def test_the_key_echoed_in_a_malformed_response_never_shows(
    server: RawServer, client: AsyncTrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp raises ClientResponseError for an unparseable response; it holds the
    # request's headers, so it must not survive as a cause or context.
    def echo(request: Request) -> Reply:
        auth = request.headers["authorization"].encode()
        return Reply(head=b"HTTP/1.1 200 OK\r\nX-Echo: " + auth + b"\r\nContent-Length: x\r\n\r\n")

    await ordeal(server, client, caplog, echo, expect=APIConnectionError, within=5)


# --------------------------------------------------------------------------- big error bodies


def _wide_json(size: int) -> bytes:
    head, tail = b'{"message": "overloaded", "detail": [', b"0]}"
    return head + b"0," * ((size - len(head) - len(tail)) // 2) + tail


@pytest.mark.parametrize(
    ("status", "body", "expect"),
    [
        (503, _wide_json(8 * MIB), InternalServerError),
        (400, b"[" * (8 * MIB), BadRequestError),
        (500, b'{"message": "' + b"x" * (8 * MIB) + b'"}', InternalServerError),
    ],
    ids=["503-wide-json", "400-deep-json", "500-long-string"],
)
async def test_an_8_mib_error_body_costs_little(
    server: RawServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    expect: type[BasetenError],
) -> None:
    reply = Reply(status=status, body=body)
    # The default 64 MiB cap: the body is read, and must not be decoded in full.
    async with AsyncTrainingClient(KEY, base_url=server.url, timeout=1, max_retries=0) as client:
        await client.projects.list()  # connect outside the measurement
        lag = 0.0

        async def ticker() -> None:
            nonlocal lag
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.005)
                lag = max(lag, time.perf_counter() - before - 0.005)

        ticking = asyncio.create_task(ticker())
        tracemalloc.start()
        try:
            started = time.perf_counter()
            error = await ordeal(
                server, client, caplog, lambda request: reply, expect=expect, within=5
            )
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            ticking.cancel()
    print(
        f"\n{len(body) / MIB:.0f} MiB {status} body: traced peak {peak / MIB:.1f} MiB "
        f"({peak / len(body):.1f}x the body), call + healthy call {elapsed:.2f}s, "
        f"longest event-loop stall {lag * 1000:.0f} ms"
    )
    assert peak < 10 * len(body)
    assert isinstance(error, APIStatusError)
    assert len(repr(error)) < 10_000
    assert len(str(error)) < 10_000


# --------------------------------------------------------------------------- Retry-After


_TOMORROW = email.utils.formatdate(time.time() + 86_400, usegmt=True)


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        ({"error": "slow down", "retry_after": 3600}, (("Retry-After", "3600"),)),
        ({"error": "slow down", "retry_after": 3600}, ()),
        ({"error": "slow down"}, (("Retry-After", "3600"),)),
        ({"error": "slow down"}, (("Retry-After", _TOMORROW),)),
    ],
    ids=["header-and-body", "body", "header", "http-date"],
)
async def test_a_huge_retry_after_fails_later_calls_at_once(
    server: RawServer,
    caplog: pytest.LogCaptureFixture,
    payload: dict[str, Any],
    headers: tuple[tuple[str, str], ...],
) -> None:
    def slow_down(request: Request) -> Reply:
        return json_reply(429, payload, *headers)

    async with AsyncTrainingClient(
        KEY, base_url=server.url, retry_policy=RetryPolicy(deadline=3), timeout=3
    ) as client:
        outcomes: list[tuple[BaseException, float]] = []
        with caplog.at_level(logging.DEBUG, logger="baseten_training_async"):
            for hostile in (slow_down, None):  # then a healthy server: the client still waits
                server.hostile = hostile
                started = time.perf_counter()
                try:
                    await asyncio.wait_for(client.projects.list(), 2)
                except Exception as exc:
                    outcomes.append((exc, time.perf_counter() - started))
        assert client.stats().in_flight == 0
    (told, told_in), (refused, refused_in) = outcomes
    print(
        f"\nRetry-After 3600, deadline 3 s: failed in {told_in:.3f}s, next call {refused_in:.3f}s"
    )
    assert isinstance(told, RateLimitError)
    assert told.retry_after is not None
    assert told.retry_after >= 3500
    assert not told.refused_locally
    assert isinstance(refused, RateLimitError)
    assert refused.refused_locally  # never sent: the server saw one request only
    assert refused.retry_after is not None
    assert refused.retry_after > 50
    assert len(server.requests) == 1
    assert told_in < 1
    assert refused_in < 1
    for error in (told, refused):
        assert_key_absent(error, caplog.records)


async def test_a_capped_retry_after_is_waited_then_the_client_works(
    server: RawServer, caplog: pytest.LogCaptureFixture
) -> None:
    answered: list[Request] = []

    def once(request: Request) -> Reply:
        answered.append(request)
        if len(answered) > 1:
            return honest(request)
        return json_reply(429, {"error": "slow down"}, ("Retry-After", "3600"))

    policy = RetryPolicy(deadline=5, max_retry_after=1.0)
    async with AsyncTrainingClient(KEY, base_url=server.url, retry_policy=policy) as client:
        server.hostile = once
        started = time.perf_counter()
        projects = await asyncio.wait_for(client.projects.list(), 4)
        elapsed = time.perf_counter() - started
        assert [p.name for p in projects] == ["ok"]
        assert 0.9 < elapsed < 3
        await assert_healthy(server, client)


# --------------------------------------------------------------------------- log windows


BASE_MS = 1_780_000_000_000
LINES = 3000


def _line(i: int) -> dict[str, Any]:
    return {"timestamp": str((BASE_MS + i) * 1_000_000), "message": f"line {i}", "replica": "r0"}


def log_server(
    *, ignore_direction: bool = False, ignore_start: bool = False, ignore_end: bool = False
) -> Handler:
    def serve(request: Request) -> Reply:
        if request.path != LOGS_PATH:
            return honest(request)
        query = request.query
        start = int(query["start_epoch_millis"]) - BASE_MS
        end = int(query.get("end_epoch_millis", BASE_MS + 10 * LINES)) - BASE_MS
        limit = int(query.get("limit", 500))
        picked = [
            i for i in range(LINES) if (ignore_start or i >= start) and (ignore_end or i <= end)
        ]
        if query.get("direction") == "desc" or ignore_direction:  # this one: always desc
            picked.reverse()
        return json_reply(200, {"logs": [_line(i) for i in picked[:limit]]})

    return serve


def _logs(client: AsyncTrainingClient) -> Any:
    return client.jobs.logs("proj", "job", start=BASE_MS, end=BASE_MS + LINES - 1).to_list()


async def test_an_honest_log_server_gives_every_line_once(
    server: RawServer, client: AsyncTrainingClient
) -> None:
    server.hostile = log_server()
    lines = await asyncio.wait_for(_logs(client), 10)
    assert [line.message for line in lines] == [f"line {i}" for i in range(LINES)]


@pytest.mark.parametrize(
    "options", [{"ignore_direction": True}, {"ignore_start": True}], ids=["direction", "start"]
)
async def test_a_log_server_that_ignores_the_query_is_caught(
    server: RawServer,
    client: AsyncTrainingClient,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, bool],
) -> None:
    await ordeal(
        server, client, caplog, log_server(**options), expect=PaginationError, within=10, call=_logs
    )
    print(f"\nlog server ignoring {list(options)}: {len(server.requests_to(LOGS_PATH))} requests")
    assert len(server.requests_to(LOGS_PATH)) <= 10
    server.hostile = log_server()
    assert len(await asyncio.wait_for(_logs(client), 10)) == LINES


async def test_a_log_server_that_ignores_the_end_loses_no_line_silently(
    server: RawServer, client: AsyncTrainingClient
) -> None:
    server.hostile = log_server(ignore_end=True)
    window = client.jobs.logs("proj", "job", start=BASE_MS + 100, end=BASE_MS + 1499)
    try:
        lines = await asyncio.wait_for(window.to_list(), 10)
    except PaginationError as exc:
        outcome = f"PaginationError: {exc}"
    else:
        # Lines past the window are dropped, and every line inside it is there once.
        assert [line.message for line in lines] == [f"line {i}" for i in range(100, 1500)]
        outcome = f"{len(lines)} lines, exactly the window"
    requests = len(server.requests_to(LOGS_PATH))
    print(f"\nlog server ignoring end: {outcome} after {requests} requests")
    assert requests <= 6
