"""``create_many``: a fixed pool of workers creating jobs exactly once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import BasetenError, InvalidInputError
from ._reconcile import Claims
from ._wire import JobsEnvelope
from .models import TrainingJob, TrainingJobSpec

if TYPE_CHECKING:
    from ._client import _Core

__all__ = ["FanoutStats", "ProgressCallback", "run_create_many"]

ProgressCallback = Callable[[int, int, int | None], object]
"""``on_progress(done, failed, total)``; ``total`` is None until the input ends."""

S = TypeVar("S")
_END: Any = object()


async def _aiter(items: Iterable[S] | AsyncIterable[S]) -> AsyncIterator[S]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


class FanoutStats:
    """Counters of one ``create_many`` batch, updated as it runs."""

    __slots__ = ("done", "failed", "started", "total")

    def __init__(self) -> None:
        self.started = 0
        self.done = 0
        self.failed = 0
        self.total: int | None = None


async def run_create_many(
    core: _Core,
    project_segment: str,
    specs: Iterable[Any] | AsyncIterable[Any],
    *,
    encode: Callable[[Any], tuple[TrainingJobSpec, bytes]],
    concurrency: int,
    return_exceptions: bool,
    on_progress: ProgressCallback | None,
    adopt_existing: bool = False,
) -> list[TrainingJob | BasetenError]:
    """Create a job per spec with ``concurrency`` workers; results in input order.

    The project is listed once before any create is sent; those job ids, and
    every id the batch gets back, are "claimed", so reconciliation adopts
    only a job that appeared under a spec's name during the batch. Names must
    be unique within a batch: a repeated name is refused for that spec.

    With ``adopt_existing``, a spec whose name an existing job already has gets
    that job instead of a new one, so a batch re-run after a crash, or split
    across processes that may overlap, launches each name once.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInputError("concurrency", "must be a positive integer")
    listing = await core.request(
        "GET", f"/v1/training_projects/{project_segment}/jobs", JobsEnvelope, idempotent=True
    )
    claims = Claims({job.id for job in listing.training_jobs})
    existing: dict[str, TrainingJob] = {}
    if adopt_existing:
        for job in sorted(listing.training_jobs, key=lambda j: j.created_at, reverse=True):
            if job.name is not None:
                existing[job.name] = job  # the oldest job of a name wins
    names: set[str] = set()
    results: list[TrainingJob | BasetenError | None] = []
    stats = FanoutStats()
    source = _aiter(specs)
    pull = asyncio.Lock()  # an async iterator may not be advanced by two tasks at once

    async def next_spec() -> tuple[int, Any]:
        async with pull:
            if stats.total is not None:
                return -1, _END
            spec = await anext(source, _END)
            if spec is _END:
                stats.total = stats.started
                return -1, _END
            index = stats.started
            stats.started += 1
            results.append(None)
            return index, spec

    async def create_one(spec: Any) -> TrainingJob:
        checked, body = encode(spec)
        if checked.name is not None:
            if checked.name in names:
                raise InvalidInputError(
                    "spec.name", f"{checked.name!r} appears twice in this batch"
                )
            names.add(checked.name)
            if checked.name in existing:
                return existing[checked.name]
        return await core.reconciler.create(
            project_segment, body, name=checked.name, headers=None, claims=claims, spec=checked
        )

    first_error: list[BasetenError] = []

    async def worker() -> None:
        while not first_error:
            index, spec = await next_spec()
            if spec is _END:
                return
            try:
                results[index] = await create_one(spec)
                stats.done += 1
            except BasetenError as exc:
                results[index] = exc
                stats.failed += 1
                if not return_exceptions:
                    # Stop taking specs, but let creates already in flight finish:
                    # cancelling them would lose jobs the server may have made.
                    first_error.append(exc)
            if on_progress is not None:
                on_progress(stats.done, stats.failed, stats.total)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    if first_error:
        raise first_error[0]
    if on_progress is not None:
        on_progress(stats.done, stats.failed, stats.total)
    done: list[TrainingJob | BasetenError] = []
    for result in results:
        if result is None:  # only if a worker was cancelled on its own
            raise BasetenError("create_many ended before every spec was attempted")
        done.append(result)
    return done
