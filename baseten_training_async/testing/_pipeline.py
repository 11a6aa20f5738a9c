"""The request pipeline of the fake: auth, rate limit, validation, faults, answers.

Every request is recorded, draws at most one injected fault, is authenticated,
rate-limited, read and validated against the spec, and then committed: the
operation's handler runs on the fake clock. Deferred-commit faults run that last
step on the server's own schedule, apart from the connection.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from typing import Any

import msgspec
from aiohttp import web

from ._clock import FakeClock
from ._context import Call, Handler, ServerState
from ._faults import DEFERRED_KINDS, Fault, FaultSet
from ._models import RequestRecord
from ._ratelimit import RateLimiter
from ._rules import ApiError
from ._schema import SchemaError
from ._spec import Operation, Spec

__all__ = ["MAX_BODY", "Pipeline"]

_Result = tuple[int, dict[str, Any], dict[str, str] | None, str]
"""Status, JSON payload, extra headers and the request log's outcome."""
_ENCODE = msgspec.json.encode
_DECODE = msgspec.json.decode
_JSON = "application/json"
_MIB = 1024 * 1024
MAX_BODY = 16 * _MIB
"""Largest request body; larger ones get 413."""
_MAX_DEPTH = 64  # JSON nesting; the deepest request schema needs 6
_FAKE_CLOCK_POLL = 0.01  # real seconds between looks at a fake clock with commits due
_STALL_POLL = 0.05  # real seconds between looks at a stalled connection


class _PendingCommit:
    """An operation a deferred-commit fault holds until its time comes."""

    __slots__ = ("due", "future", "read", "run")

    def __init__(self, run: Callable[[], _Result], read: Callable[[], float]) -> None:
        self.run = run
        self.read = read  # the clock the delay is counted on
        self.due = 0.0
        self.future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()

    def fire(self) -> None:
        if self.future.done():
            return
        try:
            result = self.run()
        except Exception as exc:  # a fake bug: the waiting handler answers 500
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def abandon(self) -> None:
        """The server stopped or was reset first: the operation never runs."""
        if not self.future.done():
            self.future.cancel()


def _never() -> float:
    return 0.0


def _too_deep(value: object) -> bool:
    """Whether a decoded JSON value nests deeper than `_MAX_DEPTH` (iteratively)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > _MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    redacted: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, sep, _ = value.partition(" ")
            value = f"{scheme} <redacted>" if sep else "<redacted>"
        redacted[name] = value
    return redacted


def _seconds_header(seconds: float) -> str:
    value = float(seconds)
    return str(int(value)) if value.is_integer() else repr(value)


class Pipeline:
    """Turns aiohttp requests into recorded, validated, possibly faulted answers.

    Args:
        api_key: The accepted key.
        seed: Part of every request id.
        clock: The fake clock.
        spec: The compiled spec.
        faults: The registered faults.
        limiter: The per-key token bucket, if any.
        validate_responses: Answer 500 for a body that violates the spec.
        request_log_limit: Keep at most this many records (None: all).
        state: The current state (replaced by `FakeTrainingAPI.reset`).
    """

    def __init__(
        self,
        *,
        api_key: str,
        seed: int,
        clock: FakeClock,
        spec: Spec,
        faults: FaultSet,
        limiter: RateLimiter | None,
        validate_responses: bool,
        request_log_limit: int | None,
        state: ServerState,
    ) -> None:
        self._api_key = api_key
        self._seed = seed
        self.clock = clock
        self._spec = spec
        self._faults = faults
        self._limiter = limiter
        self._validate_responses = validate_responses
        self._request_log_limit = request_log_limit
        self.state = state
        self._commit_tasks: set[asyncio.Task[None]] = set()
        self._fake_due: list[_PendingCommit] = []

    def endpoint(self, op: Operation, handler: Handler) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, op, handler)

        return endpoint

    def _record(self, request: web.Request, route: str | None) -> RequestRecord:
        self.state.request_seq += 1
        record = RequestRecord(
            request_id=f"fake-req-{self._seed}-{self.state.request_seq:07d}",
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=_redact(request.headers),
            route=route,
            time=self.clock.now(),
        )
        requests = self.state.requests
        requests.append(record)
        limit = self._request_log_limit
        if limit is not None and len(requests) > limit + max(1, limit // 10):
            del requests[: len(requests) - limit]
        self.state.stats.requests += 1
        if route is not None:
            self.state.stats.routes[route] += 1
        return record

    async def unknown_route(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, None)
        allowed = sorted(
            {op.method for op in self._spec.operations.values() if op.matches(request.path)}
        )
        if allowed:
            message = f"Method {request.method} not allowed on {request.path}"
            headers = {"Allow": ", ".join(allowed)}
            return self._respond(record, 405, {"message": message}, "served", headers)
        message = f"No route for {request.method} {request.path}"
        return self._respond(record, 404, {"message": message}, "served")

    async def _handle(
        self, request: web.Request, op: Operation, handler: Handler
    ) -> web.StreamResponse:
        record = self._record(request, op.route)
        self._fire_due()
        fault = self._faults.draw(op.route)
        if fault is None:
            status, payload, headers, outcome = await self._serve(
                request, op, handler, record, None
            )
            return self._respond(record, status, payload, outcome, headers)

        kind = fault.kind
        params = fault.params
        record.fault = kind
        self.state.stats.injected[kind] += 1
        commit = bool(params.get("commit", True))
        if kind == "drop_before":
            return self._drop(request, record, "dropped_before")
        if kind in DEFERRED_KINDS:
            return await self._deferred(request, op, handler, record, fault)
        if kind == "latency" and not commit:
            await asyncio.sleep(float(params["delay"]))
        if kind in ("status", "malformed_json", "truncated_body") and not commit:
            return self._fault_response(request, record, fault, 200, {})

        status, payload, headers, outcome = await self._serve(request, op, handler, record, fault)
        if kind == "drop_after_commit":
            return self._drop(request, record, "dropped_after_commit")
        if kind in ("status", "malformed_json", "truncated_body"):
            return self._fault_response(request, record, fault, status, payload)
        if kind == "latency":
            await asyncio.sleep(float(params["delay"]))
        return self._respond(record, status, payload, outcome, headers)

    async def _serve(
        self,
        request: web.Request,
        op: Operation,
        handler: Handler,
        record: RequestRecord,
        fault: Fault | None,
    ) -> _Result:
        prepared = await self._prepare(request, op, record, fault)
        if isinstance(prepared, tuple):
            return prepared
        return self._commit(op, handler, prepared, record)

    async def _prepare(
        self, request: web.Request, op: Operation, record: RequestRecord, fault: Fault | None
    ) -> Call | _Result:
        """Auth, rate limit, body and query: a `Call` to commit, or the error to answer."""
        key = self._authenticate(request)
        if key is None:
            self.state.stats.unauthorized += 1
            message = "Invalid or missing API key: send 'Authorization: Api-Key <key>'"
            return 401, {"message": message}, None, "served"
        if self._limiter is not None:
            wait = self._limiter.acquire(key)
            if wait > 0:
                self.state.stats.rate_limited += 1
                headers = {"Retry-After": str(max(1, math.ceil(wait)))}
                limited = {"error": "rate limited", "retry_after": round(wait, 3)}
                return 429, limited, headers, "rate_limited"
        body: dict[str, Any] = {}
        if op.request_validator is not None:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                message = f"Request body is larger than {MAX_BODY // _MIB} MiB"
                return 413, {"message": message}, None, "served"
            except Exception:  # the client went away while we waited
                return 400, {"message": "request body could not be read"}, None, "client_gone"
            try:
                decoded = _DECODE(raw) if raw.strip() else {}
                record.body = _DECODE(raw) if raw.strip() else None
            except (msgspec.DecodeError, RecursionError) as exc:
                return 400, {"message": f"Request body is not valid JSON: {exc}"}, None, "served"
            if _too_deep(decoded):
                message = f"Request body is nested more than {_MAX_DEPTH} levels deep"
                return 400, {"message": message}, None, "served"
            try:
                op.request_validator(decoded, "")
            except SchemaError as exc:
                return 400, {"message": f"Invalid request body: {exc}"}, None, "served"
            body = decoded
        query: dict[str, Any] = {}
        if op.query:
            raw_query = request.query
            try:
                for param in op.query:
                    value = raw_query.get(param.name)
                    if value is not None:
                        query[param.name] = param.parse(value)
            except SchemaError as exc:
                return 400, {"message": f"Invalid query parameter: {exc}"}, None, "served"
        return Call(path=request.match_info, body=body, query=query, now=0.0, fault=fault)

    def _commit(
        self, op: Operation, handler: Handler, call: Call, record: RequestRecord
    ) -> _Result:
        """Run the operation now (on the fake clock) and render its answer."""
        now = self.clock.now()
        self.state.store.tick(now)
        call.now = now
        record.committed_at = now
        try:
            payload = handler(self.state, call)
        except ApiError as exc:
            return exc.status, {"message": exc.message}, None, "served"
        except (OverflowError, RecursionError) as exc:
            # A number past what the server can represent (a date beyond year 9999, a
            # float overflow): the real API refuses such input too.
            return 400, {"message": f"Invalid request: value out of range ({exc})"}, None, "served"
        if self._validate_responses:
            try:
                op.response_validator(payload, "")
            except SchemaError as exc:
                message = f"fake produced a response that violates the spec: {exc}"
                return 500, {"message": message}, None, "served"
        return 200, payload, None, "served"

    async def _deferred(
        self,
        request: web.Request,
        op: Operation,
        handler: Handler,
        record: RequestRecord,
        fault: Fault,
    ) -> web.StreamResponse:
        prepared = await self._prepare(request, op, record, fault)
        if isinstance(prepared, tuple):
            status, payload, headers, outcome = prepared
            return self._respond(record, status, payload, outcome, headers)
        params = fault.params
        clock = params["clock"]
        if clock == "real":
            pending = _PendingCommit(lambda: self._commit(op, handler, prepared, record), _never)
            runner = self._commit_after(pending, params["delay"])
        else:
            read = self.clock.now if clock == "fake" else clock.monotonic
            pending = _PendingCommit(lambda: self._commit(op, handler, prepared, record), read)
            pending.due = read() + params["delay"]
            self._fake_due.append(pending)
            runner = self._commit_on_fake_clock(
                pending, speed=self.clock.speed if clock == "fake" else 0.0
            )
        task = asyncio.get_running_loop().create_task(runner)
        self._commit_tasks.add(task)
        task.add_done_callback(self._commit_tasks.discard)
        # The commit survives the client going away (and this handler being cancelled).
        status, payload, headers, outcome = await asyncio.shield(pending.future)
        kind = fault.kind
        if kind == "late_commit":
            return self._respond(record, status, payload, outcome, headers)
        if kind == "commit_then_drop":
            return self._drop(request, record, "committed_then_dropped")
        if kind == "commit_then_stall":
            await self._stall(request, float(params["stall"]))
            return self._drop(request, record, "committed_then_stalled")
        record.status = int(params["status"])
        record.outcome = "committed_then_garbled"
        self.state.stats.statuses[record.status] += 1
        raw = params["body"]
        return web.Response(
            status=record.status,
            body=raw if isinstance(raw, bytes) else str(raw).encode(),
            content_type=_JSON,
            headers={"x-request-id": record.request_id},
        )

    async def _commit_after(self, pending: _PendingCommit, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            pending.fire()
        finally:
            pending.abandon()

    async def _commit_on_fake_clock(self, pending: _PendingCommit, *, speed: float) -> None:
        # Requests fire due commits first (`_fire_due`); this covers a clock that moves
        # without requests (advanced by a test, slept on by a client, or a real-time
        # clock running at ``speed``).
        try:
            while not pending.future.done():
                remaining = pending.due - pending.read()
                if remaining <= 0:
                    self._fire_due()
                    break
                step = remaining / speed if speed > 0 else _FAKE_CLOCK_POLL
                await asyncio.sleep(min(step, _FAKE_CLOCK_POLL))
        finally:
            pending.abandon()

    def _fire_due(self) -> None:
        """Commit every clock-counted deferred commit whose time has come, in due order."""
        if not self._fake_due:
            return
        due = sorted((p for p in self._fake_due if p.due <= p.read()), key=lambda p: p.due)
        for pending in due:
            self._fake_due.remove(pending)
            pending.fire()

    async def _stall(self, request: web.Request, seconds: float) -> None:
        """Hold the connection open without answering, until ``seconds`` or the client leaves."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            transport = request.transport
            remaining = deadline - loop.time()
            if transport is None or transport.is_closing() or remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _STALL_POLL))

    @property
    def pending_commits(self) -> int:
        """Operations held by deferred-commit faults that have not run yet."""
        return sum(1 for task in self._commit_tasks if not task.done())

    async def wait_for_commits(self, timeout: float | None = None) -> None:
        """Wait until every deferred commit (real-time ones; fake-clock ones once due) ran.

        Args:
            timeout: Give up after this many real seconds (None: no limit).

        Raises:
            TimeoutError: Commits are still pending after ``timeout``.
        """
        tasks = [task for task in self._commit_tasks if not task.done()]
        if tasks:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*tasks)

    def cancel_commits(self) -> list[asyncio.Task[None]]:
        tasks = list(self._commit_tasks)
        for task in tasks:
            task.cancel()
        for pending in self._fake_due:
            pending.abandon()
        self._fake_due.clear()
        return tasks

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("api-key", "bearer"):
            return None
        token = token.strip()
        return token if token == self._api_key else None

    def _respond(
        self,
        record: RequestRecord,
        status: int,
        payload: Mapping[str, Any],
        outcome: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        record.status = status
        record.outcome = outcome
        if outcome == "served":
            self.state.stats.served += 1
        self.state.stats.statuses[status] += 1
        # The Date header follows the fake clock, like created_at and log times do.
        response_headers = {
            "x-request-id": record.request_id,
            "Date": formatdate(self.clock.now(), usegmt=True),
        }
        if headers:
            response_headers.update(headers)
        return web.Response(
            status=status, body=_ENCODE(payload), content_type=_JSON, headers=response_headers
        )

    def _drop(self, request: web.Request, record: RequestRecord, outcome: str) -> web.Response:
        record.outcome = outcome
        record.status = None
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Never sent: writing to the aborted transport fails and aiohttp treats it as a
        # client disconnect.
        return web.Response(status=500)

    def _fault_response(
        self,
        request: web.Request,
        record: RequestRecord,
        fault: Fault,
        status: int,
        payload: Mapping[str, Any],
    ) -> web.Response:
        params = fault.params
        if fault.kind == "status":
            code = int(params["status"])
            retry_after = params["retry_after"]
            message = params["message"]
            headers: dict[str, str] = {}
            body: dict[str, Any]
            if code == 429:
                body = {"error": message or "Too many requests (injected)"}
                if retry_after is not None and params["retry_after_body"]:
                    body["retry_after"] = retry_after
            else:
                body = {"message": message or f"Injected {code} error"}
            header = params["retry_after_header"]
            if retry_after is not None and header:
                headers["Retry-After"] = (
                    header if isinstance(header, str) else _seconds_header(retry_after)
                )
            return self._respond(record, code, body, f"injected_{code}", headers)
        if fault.kind == "malformed_json":
            record.status = 200
            record.outcome = "malformed_json"
            self.state.stats.statuses[200] += 1
            raw = params["body"]
            return web.Response(
                status=200,
                body=raw if isinstance(raw, bytes) else str(raw).encode(),
                content_type=_JSON,
                headers={"x-request-id": record.request_id},
            )
        # truncated_body: promise the full body, send half of it, close.
        record.status = 200
        record.outcome = "truncated_body"
        self.state.stats.statuses[200] += 1
        full = _ENCODE(payload) if payload else b'{"detail": "this body is cut short"}'
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {_JSON}\r\n"
            f"Content-Length: {len(full)}\r\n"
            f"x-request-id: {record.request_id}\r\n"
            "\r\n"
        ).encode()
        transport = request.transport
        if transport is not None:
            transport.write(head + full[: len(full) // 2])
            transport.close()
        return web.Response(status=500)  # never sent: the transport is closing
