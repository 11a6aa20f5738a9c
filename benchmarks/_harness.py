"""What every client process shares: arguments, timing loops and the result line.

Stdlib only, so that it costs every client the same. A client script builds
its client, hands the harness a ``create(i)`` (and friends), and the harness
runs the same workload for all of them and prints one ``RESULT {json}`` line.

CPU time is this process's own (``time.process_time``: user + system, all
threads), so the server, which runs in another process, is never counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--scenario", required=True, choices=["create", "decode", "create_many", "watch"]
    )
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT of the canned server")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="sync clients: thread pool size")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--reps", type=int, default=20, help="decode: repetitions")
    parser.add_argument("--label", default="")
    parser.add_argument("--coordinator", default="", help="SDK only: a Redis URL to coordinate on")
    parser.add_argument("--project", default="", help="watch: the project of the jobs")
    parser.add_argument("--jobs-file", default="", help="watch: a file of job ids, one a line")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="watch: per-job polls")
    parser.add_argument(
        "--observe", type=int, default=0, help="sdk: hooks on every event and tracing recorded"
    )
    return parser.parse_args(argv)


def rss_kb() -> int:
    """Current resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


def maxrss_kb() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(result: dict[str, Any]) -> None:
    result.setdefault("maxrss_kb", maxrss_kb())
    print("RESULT " + json.dumps(result), flush=True)


def fail(label: str, scenario: str, exc: BaseException) -> None:
    """Report a client that could not run at all, instead of a number."""
    traceback.print_exc(file=sys.stderr)
    emit({"label": label, "scenario": scenario, "unavailable": f"{type(exc).__name__}: {exc}"})


def fetch(url: str) -> bytes:
    """The raw bytes of a GET, with the stdlib (the same bytes for every client)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


class _Tally:
    def __init__(self, keep: bool) -> None:
        self.errors = 0
        self.first_error: str | None = None
        self.results: list[Any] | None = [] if keep else None
        self.lock = threading.Lock()

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(exc).__name__}: {exc}"[:300]


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall0, time.process_time() - cpu0


async def atimed(fn: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    value = await fn()
    return value, time.perf_counter() - wall0, time.process_time() - cpu0


def _summary(tally: _Tally, calls: int, wall: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "calls": calls,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "wall_s": wall,
        "cpu_s": cpu,
        **extra,
    }


async def _drive_async(
    call: Callable[[int], Awaitable[Any]], indices: Iterator[int], concurrency: int, tally: _Tally
) -> None:
    """``concurrency`` workers pulling call indices from one shared iterator."""
    results = tally.results

    async def worker() -> None:
        for i in indices:
            try:
                value = await call(i)
            except Exception as exc:
                tally.error(exc)
            else:
                if results is not None:
                    results.append(value)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_calls_async(
    call: Callable[[int], Awaitable[Any]],
    *,
    calls: int,
    concurrency: int,
    warmup: int,
) -> dict[str, Any]:
    """Warm up (connections, caches), then time ``calls`` calls at ``concurrency``."""
    await _drive_async(call, iter(range(-warmup, 0)), concurrency, _Tally(False))
    tally = _Tally(keep=False)
    _, wall, cpu = await atimed(lambda: _drive_async(call, iter(range(calls)), concurrency, tally))
    return _summary(tally, calls, wall, cpu)


def _drive_sync(
    call: Callable[[int], Any], indices: Iterator[int], threads: int, tally: _Tally
) -> None:
    results = tally.results

    def worker() -> None:
        # next() on a range iterator is atomic under the GIL: a shared work queue.
        for i in indices:
            try:
                value = call(i)
            except Exception as exc:
                tally.error(exc)
            else:
                if results is not None:
                    results.append(value)

    if threads <= 1:
        worker()
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        for future in futures:
            future.result()


def run_calls_sync(
    call: Callable[[int], Any], *, calls: int, threads: int, warmup: int
) -> dict[str, Any]:
    _drive_sync(call, iter(range(-warmup, 0)), threads, _Tally(False))
    tally = _Tally(keep=False)
    _, wall, cpu = timed(lambda: _drive_sync(call, iter(range(calls)), threads, tally))
    return _summary(tally, calls, wall, cpu)


def run_decode(decode: Callable[[bytes], Any], body: bytes, *, reps: int) -> dict[str, Any]:
    """Decode the same bytes ``reps`` times; per-decode wall and CPU time (min, median)."""
    count = len(decode(body))  # warm-up, and a check that all projects were decoded
    walls: list[float] = []
    cpus: list[float] = []
    gc.collect()
    for _ in range(reps):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        decode(body)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    return {
        "items": count,
        "body_bytes": len(body),
        "reps": reps,
        "decode_min_s": min(walls),
        "decode_median_s": statistics.median(walls),
        "decode_cpu_median_s": statistics.median(cpus),
    }


async def run_list_async(list_call: Callable[[], Awaitable[Any]], *, reps: int) -> dict[str, Any]:
    """End to end: request + read + decode of the 1,000-project list, median of ``reps``."""
    count = len(await list_call())
    walls = []
    for _ in range(reps):
        wall0 = time.perf_counter()
        await list_call()
        walls.append(time.perf_counter() - wall0)
    return {"list_items": count, "list_median_s": statistics.median(walls)}


def run_list_sync(list_call: Callable[[], Any], *, reps: int) -> dict[str, Any]:
    count = len(list_call())
    walls = []
    for _ in range(reps):
        wall0 = time.perf_counter()
        list_call()
        walls.append(time.perf_counter() - wall0)
    return {"list_items": count, "list_median_s": statistics.median(walls)}


async def run_batch_async(
    make: Callable[[int], Any],
    send: Callable[[Any], Awaitable[Any]],
    *,
    calls: int,
    concurrency: int,
) -> dict[str, Any]:
    """The create_many workload without create_many: build ``calls`` specs, send them all
    with ``concurrency`` workers, keep every result. Time and memory include the specs."""
    tally = _Tally(keep=True)
    rss_before = rss_kb()

    async def batch() -> None:
        specs = [make(i) for i in range(calls)]
        await _drive_async(lambda i: send(specs[i]), iter(range(calls)), concurrency, tally)

    _, wall, cpu = await atimed(batch)
    kept = len(tally.results or [])
    return _summary(tally, calls, wall, cpu, rss_before_kb=rss_before, kept=kept)


def run_batch_sync(
    make: Callable[[int], Any], send: Callable[[Any], Any], *, calls: int, threads: int
) -> dict[str, Any]:
    tally = _Tally(keep=True)
    rss_before = rss_kb()

    def batch() -> None:
        specs = [make(i) for i in range(calls)]
        _drive_sync(lambda i: send(specs[i]), iter(range(calls)), threads, tally)

    _, wall, cpu = timed(batch)
    kept = len(tally.results or [])
    return _summary(tally, calls, wall, cpu, rss_before_kb=rss_before, kept=kept)


def job_ids(path: str) -> list[str]:
    """The job ids of the watch scenario."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


TERMINAL = frozenset(
    {
        "TRAINING_JOB_COMPLETED",
        "TRAINING_JOB_FAILED",
        "TRAINING_JOB_DEPLOY_FAILED",
        "TRAINING_JOB_STOPPED",
        "TRAINING_JOB_PREEMPTED",
    }
)
