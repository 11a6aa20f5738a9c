"""One worker process of the coordination tests: ``python _worker.py MODE JSON-ARGS``.

Prints one JSON line per event, flushed, so the test can follow it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from baseten_training_async.coordination import RedisCoordinator

API_KEY = "sk-coordination-test-0123456789"
FINGERPRINT = hashlib.sha256(API_KEY.encode()).hexdigest()


class RealClock:
    """Real time, as the client's default clock has it."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def main(mode: str, args: dict[str, Any]) -> None:
    coordinator = RedisCoordinator(
        args["url"],
        namespace=args["namespace"],
        rate=args.get("rate", 100.0),
        burst=args.get("burst"),
        lease_ttl=args.get("ttl", 30.0),
    )
    await coordinator.bind(key_fingerprint=FINGERPRINT, clock=RealClock())
    try:
        if mode == "tokens":
            stamps = []
            for _ in range(args["count"]):
                await coordinator.acquire(deadline=None)
                stamps.append(time.time())
            emit(stamps=stamps)
        elif mode == "wait":
            started = time.time()
            await coordinator.acquire(deadline=None)
            emit(started=started, done=time.time())
        elif mode == "hold":
            async with coordinator.lease(args["project"], args["name"]) as info:
                emit(held=True, taken_over=info.taken_over, waited=info.waited)
                await asyncio.sleep(args["seconds"])
                emit(lost=info.lost)
            emit(released=True)
        elif mode == "exclusive":
            probe = aioredis.Redis.from_url(args["url"])
            most = 0
            for _ in range(args["count"]):
                async with coordinator.lease("project", "one-name"):
                    inside = await probe.incr(args["counter"])
                    most = max(most, inside)
                    await asyncio.sleep(0.002)
                    await probe.decr(args["counter"])
            await probe.aclose()
            emit(most_inside=most, entries=args["count"])
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await coordinator.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
