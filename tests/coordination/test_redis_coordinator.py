"""RedisCoordinator's own semantics, against a real redis-server and real processes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from baseten_training_async import InvalidInputError, RateLimitError
from baseten_training_async.coordination import (
    CoordinationError,
    CoordinationWarning,
    Coordinator,
    InProcessCoordinator,
    RedisCoordinator,
)

from ._worker import API_KEY, FINGERPRINT, RealClock
from .conftest import RedisServer

WORKER = Path(__file__).with_name("_worker.py")
PROCESS_TIMEOUT = 60.0


def spawn(mode: str, **args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(WORKER.parent)},
    )


def finish(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, out
    return [json.loads(line) for line in out.splitlines()]


def next_event(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()  # the worker prints within seconds or exits
    assert line, "worker exited early"
    return dict(json.loads(line))


@pytest.fixture
async def coordinator(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisCoordinator]:
    c = RedisCoordinator(redis_server.url, namespace=namespace, lease_ttl=1.5)
    await c.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    yield c
    await c.aclose()


def test_both_coordinators_satisfy_the_protocol(redis_server: RedisServer) -> None:
    assert isinstance(InProcessCoordinator(), Coordinator)
    assert isinstance(RedisCoordinator(redis_server.url), Coordinator)


def test_importing_the_sdk_does_not_import_redis() -> None:
    code = (
        "import sys, baseten_training_async, baseten_training_async.coordination;"
        "print('redis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "http://localhost"}, "url"),
        ({"rate": 0}, "rate"),
        ({"burst": 0}, "burst"),
        ({"lease_ttl": 0.1}, "lease_ttl"),
        ({"on_redis_failure": "ignore"}, "on_redis_failure"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    args = {"url": "redis://127.0.0.1:1/0", **kwargs}
    with pytest.raises(InvalidInputError) as caught:
        RedisCoordinator(**args)
    assert caught.value.field == field


async def test_the_token_bucket_holds_four_processes_under_the_rate(
    redis_server: RedisServer, namespace: str
) -> None:
    rate, burst, each = 100.0, 10, 100
    workers = [
        spawn(
            "tokens", url=redis_server.url, namespace=namespace, rate=rate, burst=burst, count=each
        )
        for _ in range(4)
    ]
    stamps = sorted(s for w in workers for s in finish(w)[0]["stamps"])
    assert len(stamps) == 4 * each
    span = stamps[-1] - stamps[0]
    achieved = (len(stamps) - burst) / span
    busiest = max(sum(1 for s in stamps[i:] if s < start + 1.0) for i, start in enumerate(stamps))
    print(
        f"\n4 processes x {each} tokens at rate {rate:.0f}/s, burst {burst}: "
        f"{achieved:.1f}/s over {span:.2f} s; busiest 1 s window {busiest}"
    )
    # Process scheduling can only delay a token, never hand it out early.
    assert achieved <= rate * 1.02


async def test_a_cool_down_reported_here_pauses_another_process(
    coordinator: RedisCoordinator, redis_server: RedisServer, namespace: str
) -> None:
    await coordinator.report_rate_limited(5.0)
    await coordinator.report_rate_limited(0.2)  # never shortens the cool-down
    cool_until = time.time() + 5.0  # at the latest: the cool-down was set before this
    event = finish(spawn("wait", url=redis_server.url, namespace=namespace))[0]
    print(
        f"\nother process started {cool_until - event['started']:.2f} s before the end of "
        f"a 5 s cool-down and waited {event['done'] - event['started']:.2f} s"
    )
    assert event["started"] < cool_until - 1.0  # it started well inside the cool-down
    assert event["done"] >= cool_until - 0.1  # and did not pass before its end


async def test_a_wait_past_the_deadline_raises_and_reserves_nothing(
    redis_server: RedisServer, namespace: str
) -> None:
    clock = RealClock()
    c = RedisCoordinator(redis_server.url, namespace=namespace, rate=2.0, burst=1)
    await c.bind(key_fingerprint=FINGERPRINT, clock=clock)
    try:
        await c.acquire(deadline=None)  # the burst
        with pytest.raises(RateLimitError) as caught:
            await c.acquire(deadline=clock.monotonic() + 0.05)
        assert caught.value.retry_after is not None
        assert 0 < caught.value.retry_after <= 0.5
        # Had the refused call reserved the next token, this one would need ~1 s.
        await c.acquire(deadline=clock.monotonic() + 0.75)
        await c.report_rate_limited(5.0)
        with pytest.raises(RateLimitError, match="cool-down"):
            await c.acquire(deadline=clock.monotonic() + 1.0)
    finally:
        await c.aclose()


async def test_a_lease_excludes_other_processes(redis_server: RedisServer, namespace: str) -> None:
    counter = f"{namespace}:inside"
    workers = [
        spawn("exclusive", url=redis_server.url, namespace=namespace, count=25, counter=counter)
        for _ in range(4)
    ]
    results = [finish(w)[0] for w in workers]
    print(f"\nmost holders inside one lease at once: {max(r['most_inside'] for r in results)}")
    assert [r["most_inside"] for r in results] == [1, 1, 1, 1]
    assert sum(r["entries"] for r in results) == 100


async def test_a_lease_is_renewed_while_held_and_the_next_holder_knows(
    coordinator: RedisCoordinator, redis_server: RedisServer, namespace: str
) -> None:
    holder = spawn(
        "hold",
        url=redis_server.url,
        namespace=namespace,
        ttl=1.5,
        project="p",
        name="n",
        seconds=3.0,
    )
    first = next_event(holder)
    assert first == {"held": True, "taken_over": False, "waited": False}
    started = time.monotonic()
    async with coordinator.lease("p", "n") as info:
        waited = time.monotonic() - started
    rest = finish(holder)
    print(f"\nwaited {waited:.2f} s for a lease held 3 s with ttl 1.5 s")
    assert rest == [{"lost": False}, {"released": True}]
    assert waited > 2.0  # held twice as long as its ttl: renewals kept it
    assert (info.waited, info.taken_over, info.lost) == (True, False, False)


async def test_a_killed_holders_lease_is_taken_over_after_its_ttl(
    coordinator: RedisCoordinator, redis_server: RedisServer, namespace: str
) -> None:
    holder = spawn(
        "hold",
        url=redis_server.url,
        namespace=namespace,
        ttl=1.5,
        project="p",
        name="n",
        seconds=60.0,
    )
    assert next_event(holder)["held"] is True
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=PROCESS_TIMEOUT)
    killed = time.monotonic()
    async with coordinator.lease("p", "n") as info:
        waited = time.monotonic() - killed
    print(f"\nlease of a SIGKILLed holder (ttl 1.5 s) taken over after {waited:.2f} s")
    assert info.taken_over is True
    assert info.reconcile is True
    assert waited > 0.5  # at least two thirds of the ttl remained after its last renewal
    async with coordinator.lease("p", "n") as again:
        assert (again.waited, again.taken_over) == (True, False)


async def test_nothing_secret_is_written_to_redis(
    coordinator: RedisCoordinator, redis_server: RedisServer, namespace: str
) -> None:
    await coordinator.acquire(deadline=None)
    await coordinator.report_rate_limited(0.05)
    async with coordinator.lease("proj-secretive", "job-secretive"):
        pass
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        dump = []
        async for key in raw.scan_iter(count=1000):
            kind = await raw.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            dump.append(key)
            if kind == "string":
                dump.append(await raw.get(key) or b"")
            elif kind == "hash":
                for field, value in (await raw.hgetall(key)).items():
                    dump += [field, value]
    finally:
        await raw.aclose()
    blob = b"\n".join(dump)
    assert b"bucket" in blob  # the scan saw this test's keys
    for secret in (API_KEY, FINGERPRINT, FINGERPRINT[:16], namespace, "secretive"):
        assert secret.encode() not in blob


async def test_one_coordinator_serves_one_key(coordinator: RedisCoordinator) -> None:
    await coordinator.bind(key_fingerprint=FINGERPRINT, clock=RealClock())  # again: fine
    other = hashlib.sha256(b"another key").hexdigest()
    with pytest.raises(CoordinationError, match="another API key"):
        await coordinator.bind(key_fingerprint=other, clock=RealClock())
    with pytest.raises(InvalidInputError):
        await coordinator.bind(key_fingerprint=API_KEY, clock=RealClock())


async def test_unreachable_redis_at_bind_names_the_url_without_its_password(
    own_redis: RedisServer,
) -> None:
    own_redis.stop()
    c = RedisCoordinator(own_redis.url, on_redis_failure="fallback")
    with pytest.raises(CoordinationError) as caught:
        await c.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    message = str(caught.value)
    assert f"127.0.0.1:{own_redis.port}" in message
    assert own_redis.password is not None
    assert own_redis.password not in message
    assert c.url == f"redis://:***@127.0.0.1:{own_redis.port}/0"


async def test_redis_lost_fails_every_call_that_needs_it(own_redis: RedisServer) -> None:
    c = RedisCoordinator(own_redis.url, socket_timeout=1.0)
    await c.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    try:
        async with c.lease("p", "n") as held:
            own_redis.stop()
        assert held.lost is False  # released (or left to expire) without raising
        with pytest.raises(CoordinationError) as caught:
            await c.acquire(deadline=None)
        assert caught.value.maybe_committed is False
        assert own_redis.password not in str(caught.value)  # type: ignore[operator]
        with pytest.raises(CoordinationError):
            await c.report_rate_limited(1.0)
        entered = False
        with pytest.raises(CoordinationError):
            async with c.lease("p", "other"):
                entered = True
        assert not entered
        own_redis.start()  # back: calls work again
        await c.acquire(deadline=None)
    finally:
        await c.aclose()


async def test_redis_lost_with_fallback_warns_once_then_works_in_process(
    own_redis: RedisServer,
) -> None:
    c = RedisCoordinator(own_redis.url, on_redis_failure="fallback", socket_timeout=1.0)
    await c.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    try:
        own_redis.stop()
        with pytest.warns(CoordinationWarning, match="within this process only"):
            await c.acquire(deadline=None)
        assert c.fell_back
        await c.report_rate_limited(1.0)  # no second warning (warnings are errors here)
        order: list[str] = []

        async def hold(tag: str) -> None:
            async with c.lease("p", "n") as info:
                order.append(f"{tag} in waited={info.waited}")
                await asyncio.sleep(0.01)
                order.append(f"{tag} out")

        await asyncio.gather(hold("a"), hold("b"))
        assert order == ["a in waited=False", "a out", "b in waited=True", "b out"]
    finally:
        await c.aclose()


async def test_in_process_leases_take_turns() -> None:
    c = InProcessCoordinator()
    await c.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    started = time.monotonic()
    await c.acquire(deadline=started)  # never waits, whatever the deadline
    await c.report_rate_limited(30.0)
    await c.acquire(deadline=started)
    inside: list[int] = []

    async def hold() -> bool:
        async with c.lease("p", "n") as info:
            inside.append(1)
            assert len(inside) == 1
            await asyncio.sleep(0.01)
            inside.pop()
            return info.reconcile

    assert list(await asyncio.gather(hold(), hold(), hold())) == [False, True, True]
    async with c.lease("p", "n") as fresh:
        assert fresh.reconcile is False  # the history lasts while someone waits
    await c.aclose()
