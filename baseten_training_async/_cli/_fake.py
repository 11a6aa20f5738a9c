"""Offline commands: ``fake-server`` and ``demo``, both built on the bundled fake API."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from .._client import AsyncTrainingClient
from .._retry import RetryPolicy
from ..models import (
    Accelerator,
    Compute,
    Image,
    Runtime,
    TrainingJob,
    TrainingJobSpec,
)
from ..testing import FakeClock, FakeTrainingAPI, JobTimings, Route
from ..testing._standalone import standalone_api, stop_on_signals
from ._output import Output, ProgressFn, format_log_line, one_line, short_status

__all__ = ["demo", "fake_server"]

DEMO_IMAGE: Final = "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"
# Snappier than the SDK's defaults (the fake answers in microseconds), same shape.
DEMO_RETRIES: Final = RetryPolicy(max_retries=8, initial_backoff=0.05, max_backoff=1.0)


async def fake_server(args: argparse.Namespace, out: Output) -> int:
    """Serve the fake Training API until Ctrl-C or SIGTERM.

    Args:
        args: Parsed arguments.
        out: Where to print.

    Returns:
        The exit code.
    """
    api = standalone_api(args)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        async with api:
            if out.json_mode:
                out.json({"url": api.url, "api_key": api.api_key})
            else:
                out.line(f"Fake Baseten Training API listening on {api.url}")
                out.line(f"API key: {api.api_key}")
                out.line(f"export BASETEN_BASE_URL={api.url} BASETEN_API_KEY={api.api_key}")
                out.note("Press Ctrl-C to stop.")
            await stop.wait()
    out.note("stopped")
    return 0


class _LatencyMeter:
    """Per-spec create latency in ``create_many``, from pulling the spec to its result.

    ``create_many`` workers pull a spec from the input and call ``on_progress``
    after its create finished, both in the worker's own task, so the current
    task links the two moments.
    """

    def __init__(self) -> None:
        self._started: dict[asyncio.Task[Any], float] = {}
        self.samples: list[float] = []

    async def feed(self, specs: Iterable[TrainingJobSpec]) -> AsyncIterator[TrainingJobSpec]:
        for spec in specs:
            task = asyncio.current_task()
            if task is not None:
                self._started[task] = time.perf_counter()
            yield spec

    def wrap(self, inner: ProgressFn) -> ProgressFn:
        def on_progress(done: int, failed: int, total: int | None) -> None:
            task = asyncio.current_task()
            started = self._started.pop(task, None) if task is not None else None
            if started is not None:
                self.samples.append(time.perf_counter() - started)
            inner(done, failed, total)

        return on_progress

    def percentile_ms(self, fraction: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000


def _demo_specs(count: int) -> list[TrainingJobSpec]:
    return [
        TrainingJobSpec(
            name=f"demo-sft-{i:04d}",
            image=Image(base_image=DEMO_IMAGE),
            compute=Compute(accelerator=Accelerator(accelerator="H100", count=8)),
            runtime=Runtime(
                start_commands=["python train.py --config sft.yaml"],
                environment_variables={"RUN_INDEX": str(i)},
            ),
        )
        for i in range(1, count + 1)
    ]


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


async def demo(args: argparse.Namespace, out: Output) -> int:
    """Fan out jobs against an in-process fake with faults, summarise, follow one job.

    Args:
        args: Parsed arguments.
        out: Where to print.

    Returns:
        The exit code: 0 when every job was created exactly once.
    """
    api = FakeTrainingAPI(
        seed=args.seed,
        rate_limit=args.rate_limit,
        clock=FakeClock.real(speed=args.speed),
        timings=JobTimings(created=1.0, deploying=2.0, running=8.0),
        request_log_limit=1000,
    )
    if not args.no_faults:
        create = Route.CREATE_JOB
        api.inject("status", route=create, status=503, probability=0.05)
        api.inject("status", route=create, status=429, retry_after=0.25, probability=0.03)
        api.inject("drop_before", route=create, probability=0.02)
        api.inject("drop_after_commit", route=create, probability=0.02)
    async with (
        api,
        AsyncTrainingClient(
            # A short timeout suits a server on this machine, and bounds how long
            # a lost create is looked for before it is sent again.
            api.api_key,
            base_url=api.url,
            retry_policy=DEMO_RETRIES,
            timeout=2,
            commit_window=2,  # the bundled fake commits at once or never
        ) as client,
    ):
        project = await client.projects.upsert("cli-demo")
        specs = _demo_specs(args.count)
        meter = _LatencyMeter()
        requests_before = api.stats.requests
        if not out.json_mode:
            out.note(
                f"fake API on {api.url}: {args.rate_limit:g} req/s per key"
                + ("" if args.no_faults else ", 5% 503, 3% 429, 2% dropped, 2% lost responses")
            )
        started = time.perf_counter()
        with out.progress(f"creating {args.count} jobs", total=args.count) as bar:
            results = await client.jobs.create_many(
                project.id,
                meter.feed(specs),
                concurrency=args.concurrency,
                on_progress=meter.wrap(bar),
            )
        elapsed = time.perf_counter() - started
        requests = api.stats.requests - requests_before
        jobs = [r for r in results if isinstance(r, TrainingJob)]
        names = Counter(job.name for job in api.jobs.values() if job.project_id == project.id)
        duplicates = sum(n - 1 for n in names.values() if n > 1)
        stats = api.stats
        faults = {
            "503": stats.statuses[503],
            "429": stats.statuses[429] - stats.rate_limited,
            "drop_before": stats.injected["drop_before"],
            "drop_after_commit": stats.injected["drop_after_commit"],
        }
        summary: dict[str, Any] = {
            "jobs_requested": args.count,
            "jobs_created": len(jobs),
            "jobs_failed": len(results) - len(jobs),
            "jobs_on_server": sum(names.values()),
            "duplicates": duplicates,
            "retries": client.flow_control.budget.spent,
            "rate_limited_429s": stats.statuses[429],
            "rate_limited_by_limiter": stats.rate_limited,
            "faults_injected": faults,
            "latency_p50_ms": meter.percentile_ms(0.50),
            "latency_p95_ms": meter.percentile_ms(0.95),
            "elapsed_s": round(elapsed, 3),
            "requests": requests,
            "requests_per_s": round(requests / elapsed, 1) if elapsed > 0 else None,
        }
        if not out.json_mode:
            _print_summary(out, summary)
        followed = jobs[-1] if jobs else None
        if followed is not None and not args.no_follow:
            summary["followed_job"] = await _follow(client, out, followed)
    if out.json_mode:
        out.json(summary)
    ok = duplicates == 0 and len(jobs) == args.count
    return 0 if ok else 5


def _print_summary(out: Output, s: dict[str, Any]) -> None:
    faults = ", ".join(f"{kind} x{n}" for kind, n in s["faults_injected"].items() if n)
    out.details(
        [
            ("jobs created", f"{s['jobs_created']} / {s['jobs_requested']}"),
            ("failed", str(s["jobs_failed"])),
            ("jobs on the server", str(s["jobs_on_server"])),
            ("duplicates on the server", str(s["duplicates"])),
            ("retries (retry budget spent)", str(s["retries"])),
            (
                "429s absorbed",
                f"{s['rate_limited_429s']} ({s['rate_limited_by_limiter']} from the rate "
                f"limiter, {s['faults_injected']['429']} injected)",
            ),
            ("faults injected", faults or "none"),
            (
                "create latency p50 / p95",
                f"{_fmt_ms(s['latency_p50_ms'])} / {_fmt_ms(s['latency_p95_ms'])}",
            ),
            ("elapsed", f"{s['elapsed_s']:.2f} s"),
            ("requests", f"{s['requests']} ({s['requests_per_s']} req/s)"),
        ],
        title="Demo summary",
    )


async def _follow(client: AsyncTrainingClient, out: Output, job: TrainingJob) -> dict[str, Any]:
    project_id = job.training_project_id
    if not out.json_mode:
        out.line()
        out.line(f"Following logs of {one_line(job.name or job.id)} ({one_line(job.id)}):")
    count = 0
    async for line in client.jobs.logs(project_id, job.id, follow=True, poll_interval=0.25):
        count += 1
        if not out.json_mode:
            out.line(format_log_line(line))
    final = await client.jobs.retrieve(project_id, job.id)
    if not out.json_mode:
        out.line(
            f"{one_line(final.name or final.id)} finished: {short_status(final.current_status)}"
        )
    return {
        "id": final.id,
        "name": final.name,
        "status": final.current_status,
        "log_lines": count,
    }
