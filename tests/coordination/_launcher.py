"""One launcher process: ``create_many`` against a fake API, with or without a coordinator.

``python _launcher.py JSON-ARGS``; prints one JSON line with what it saw.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
import warnings
from typing import Any

from baseten_training_async import AsyncTrainingClient, RetryPolicy, TrainingJob
from baseten_training_async.coordination import Coordinator, RedisCoordinator


async def main(args: dict[str, Any]) -> None:
    coordinator: Coordinator | None = None
    if args.get("redis"):
        coordinator = RedisCoordinator(
            args["redis"],
            namespace=args["namespace"],
            rate=args.get("rate", 100.0),
            lease_ttl=args.get("ttl", 30.0),
            on_redis_failure=args.get("on_redis_failure", "fail"),
            socket_timeout=2.0,
        )
    specs = [{"name": name, "image": {"base_image": "hello-world"}} for name in args["names"]]
    # Started together: every launcher waits for the same wall-clock moment.
    await asyncio.sleep(max(0.0, args.get("start_at", 0.0) - time.time()))
    started = time.monotonic()
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        async with AsyncTrainingClient(
            args["key"],
            base_url=args["url"],
            coordinator=coordinator,
            commit_window=args.get("commit_window", 60.0),
            retry_policy=RetryPolicy(max_retries=50, deadline=300.0),
            timeout=args.get("timeout", 30.0),
        ) as client:
            announce = args.get("announce_after")

            def progress(done: int, failed: int, total: int | None) -> None:
                nonlocal announce
                if announce is not None and done >= announce:
                    announce = None
                    print(json.dumps({"progress": done}), flush=True)

            results = await client.jobs.create_many(
                args["project"],
                specs,
                concurrency=args.get("concurrency", 32),
                adopt_existing=args.get("adopt", False),
                on_progress=progress,
            )
            stats = client.stats()
        caught = [f"{w.category.__name__}: {w.message}" for w in seen]
    errors = collections.Counter(
        type(r).__name__ for r in results if not isinstance(r, TrainingJob)
    )
    maybe = sum(1 for r in results if getattr(r, "maybe_committed", False))
    print(
        json.dumps(
            {
                "jobs": sum(isinstance(r, TrainingJob) for r in results),
                "errors": dict(errors),
                "maybe_committed": maybe,
                "rate_limited": stats.rate_limited,
                "elapsed": time.monotonic() - started,
                "warnings": caught,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
