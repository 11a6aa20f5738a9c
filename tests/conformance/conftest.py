"""The official clients against the bundled fake: ``nox -s conformance``.

These tests import the peers (``baseten`` 0.13.1, ``truss`` 0.18.35) at module level:
without them collection fails, loudly. The default test run does not collect this
directory (see ``tests/conftest.py``); ``pytest --conformance tests/conformance`` does.

Every call is recorded in a table printed at the end of the run: the call, the HTTP
statuses the fake answered, whether it succeeded, and for a refusal the rule of the
real API that refuses it too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings

T = TypeVar("T")
T0 = 1_700_000_000.0


@dataclass
class Row:
    """One official-client call and what the fake answered."""

    client: str
    call: str
    statuses: list[int | None]
    ok: bool
    rule: str = ""


ROWS: list[Row] = []


class FakeThread:
    """A fake Training API on its own event loop in a thread.

    The sync truss client blocks its caller, so the server cannot share the test's loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clock = FakeClock(start=T0)
        self.api = FakeTrainingAPI(
            clock=self.clock,
            seed=16,
            validate_responses=True,
            timings=JobTimings(created=1, deploying=1, running=600),
        )
        self.run(self.api.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.api.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    @property
    def url(self) -> str:
        return self.api.url

    def seen(self) -> int:
        return len(self.api.requests)

    def statuses_since(self, mark: int) -> list[int | None]:
        return [record.status for record in self.api.requests[mark:]]


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeThread]:
    server = FakeThread()
    yield server
    server.close()


class Recorder:
    """Runs one official-client call, records its row, and checks the expectation.

    ``refused`` names the rule the real API applies when the call is expected to be
    refused; a call without it must succeed.
    """

    def __init__(self, fake: FakeThread, client: str) -> None:
        self.fake = fake
        self.client = client

    def _finish(self, call: str, mark: int, error: BaseException | None, rule: str) -> None:
        statuses = self.fake.statuses_since(mark)
        ok = error is None and bool(statuses) and all(s is not None and s < 400 for s in statuses)
        ROWS.append(Row(self.client, call, statuses, ok, rule if not ok else ""))
        if rule:
            assert not ok, f"{call}: expected a refusal ({rule}), got {statuses}"
            assert statuses, f"{call}: no request reached the fake"
            assert all(s is not None and 400 <= s < 500 for s in statuses[-1:]), statuses
        else:
            assert ok, f"{call}: {statuses} {error!r}"

    def sync(self, call: str, fn: Callable[[], T], *, refused: str = "") -> T | None:
        mark = self.fake.seen()
        try:
            result: T | None = fn()
        except Exception as exc:  # the client's own error type; the status is in the log
            self._finish(call, mark, exc, refused)
            return None
        self._finish(call, mark, None, refused)
        return result

    async def call(self, call: str, coro: Coroutine[Any, Any, T], *, refused: str = "") -> T | None:
        mark = self.fake.seen()
        try:
            result: T | None = await coro
        except Exception as exc:
            self._finish(call, mark, exc, refused)
            return None
        self._finish(call, mark, None, refused)
        return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    write("")
    write("Official clients against the fake Training API")
    width = max(len(row.call) for row in ROWS)
    write(f"{'client':<10} {'call':<{width}} {'status':<10} result")
    for row in ROWS:
        statuses = ",".join("-" if s is None else str(s) for s in row.statuses) or "none"
        result = "ok" if row.ok else f"refused: {row.rule or 'UNEXPECTED'}"
        write(f"{row.client:<10} {row.call:<{width}} {statuses:<10} {result}")
    for client in sorted({row.client for row in ROWS}):
        rows = [row for row in ROWS if row.client == client]
        ok = sum(row.ok for row in rows)
        refused = [row for row in rows if not row.ok]
        expected = sum(bool(row.rule) for row in refused)
        write(
            f"{client}: {ok}/{len(rows)} calls succeed; {len(refused)} refused, "
            f"{expected} of them by a rule the real API applies too"
        )
