"""``create_many``: a fixed pool of workers creating jobs exactly once each.

No result is ever lost. Whatever stops a batch early (a failure with
``return_exceptions=False``, a raising ``on_progress``, a raising spec
iterator), the creates already in flight finish first, and the error raised
(`CreateManyError`) carries every spec's outcome. Only cancelling the caller
cancels creates in flight: a cancelled create may still have made its job,
which a re-run with ``adopt_existing=True`` picks up by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from ._core import Core
from ._errors import BasetenError, InvalidInputError
from ._reconcile import Claims, Reconciler
from ._wire import CREATE_JOB, LIST_JOBS
from .models import TrainingJob, TrainingJobSpec

__all__ = ["CreateManyError", "FanoutStats", "ProgressCallback", "run_create_many"]

ProgressCallback = Callable[[int, int, int | None], object]
"""``on_progress(done, failed, total)``; ``total`` is None until the input ends."""

S = TypeVar("S")
_END: Any = object()


class CreateManyError(BasetenError):
    """``create_many`` stopped early; no result is lost.

    Raised with ``return_exceptions=False`` after a create failed, or whenever
    ``on_progress`` or the spec iterator raised. The cause is ``__cause__``.

    Attributes:
        results: One entry per spec read, in input order: the job, the
            spec's error, or None for a spec never attempted.
        jobs: Every job created or adopted by the batch.
    """

    def __init__(self, message: str, results: list[TrainingJob | BasetenError | None]) -> None:
        super().__init__(message)
        self.results = results
        self.jobs = [result for result in results if isinstance(result, TrainingJob)]


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
    core: Core,
    reconciler: Reconciler,
    project_id: str,
    specs: Iterable[Any] | AsyncIterable[Any],
    *,
    check: Callable[[Any], TrainingJobSpec],
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
    that job instead of a new one, so a batch re-run after a crash launches
    each name once. Each named create then runs under the coordinator's lease
    on its name: a name leased before (by another task or process, finished
    or dead) is looked up again and adopted rather than created, so
    overlapping batches in several processes launch each name once.

    Raises:
        CreateManyError: The batch stopped early; it carries every result.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InvalidInputError("concurrency", "must be a positive integer")
    path = LIST_JOBS.path(project_id)
    listing = (await core.request(LIST_JOBS, path)).value.training_jobs
    claims = Claims({job.id for job in listing})
    existing: dict[str, TrainingJob] = {}
    if adopt_existing:
        for job in sorted(listing, key=lambda j: j.created_at, reverse=True):
            if job.name is not None:
                existing[job.name] = job  # the oldest job of a name wins
    names: set[str] = set()
    results: list[TrainingJob | BasetenError | None] = []
    stats = FanoutStats()
    source = _aiter(specs)
    pull = asyncio.Lock()  # an async iterator may not be advanced by two tasks at once
    stop: list[BaseException] = []  # why the batch stopped taking specs, first first

    async def next_spec() -> tuple[int, Any]:
        async with pull:
            if stats.total is not None or stop:
                return -1, _END
            try:
                spec = await anext(source, _END)
            except Exception as exc:  # the caller's iterator: stop, keep what was made
                stop.append(exc)
                stats.total = stats.started
                return -1, _END
            if spec is _END:
                stats.total = stats.started
                return -1, _END
            index = stats.started
            stats.started += 1
            results.append(None)
            return index, spec

    async def create_one(spec: Any) -> TrainingJob:
        checked = check(spec)
        if checked.name is not None:
            if checked.name in names:
                raise InvalidInputError(
                    "spec.name", f"{checked.name!r} appears twice in this batch"
                )
            names.add(checked.name)
            if checked.name in existing:
                return existing[checked.name]
            if adopt_existing and reconciler.leases is not None:
                async with reconciler.leases.lease(project_id, checked.name) as lease:
                    if lease.reconcile:
                        wait = reconciler.commit_window if lease.taken_over else 0.0
                        job = await reconciler.find_named(
                            core, project_id, checked.name, claims, wait=wait
                        )
                        if job is not None:
                            return job
                    return await create(checked)
        return await create(checked)

    async def create(checked: TrainingJobSpec) -> TrainingJob:
        return await reconciler.create(
            core, project_id, CREATE_JOB, path, spec=checked, headers=None, claims=claims
        )

    async def worker() -> None:
        while not stop:
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
                    stop.append(exc)
            if on_progress is not None:
                try:
                    on_progress(stats.done, stats.failed, stats.total)
                except Exception as exc:  # the caller's callback: stop, keep what was made
                    stop.append(exc)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    if stop:
        cause = stop[0]
        raise CreateManyError(
            f"create_many stopped after {stats.done} created, {stats.failed} failed "
            f"of {stats.started} read: {type(cause).__name__}: {cause}",
            results,
        ) from cause
    if on_progress is not None:
        on_progress(stats.done, stats.failed, stats.total)
    return [result for result in results if result is not None]
