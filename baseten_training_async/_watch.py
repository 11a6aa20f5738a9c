"""Watching jobs: one listing per project per interval, shared by every waiter.

A thousand tasks awaiting ``client.jobs.wait(p, j)`` for jobs of one project
cost one ``GET /v1/training_projects/{p}/jobs`` per interval, not a thousand
``GET .../jobs/{j}``: every wait, ``wait_many`` and ``watch`` of a client
subscribes to one `StatusPoller`, which runs one loop per project while anyone
listens and hands each subscriber the status changes of the jobs it asked for.

The interval adapts within `PollSettings`: it drops to ``min_interval`` when a
job changes status or a new waiter arrives (right after a launch), stays at
``transition_interval`` or less while a job is starting (CREATED, DEPLOYING:
a change is due soon), and grows by ``backoff`` per quiet poll up to
``max_interval`` for long-running jobs. A waiter that asks for a
``poll_interval`` of its own is polled at least that often. A watched job
missing from the listing (a listing that lags a fresh create) is fetched on its
own. Every wait runs on the client's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

import msgspec

from ._core import Core
from ._errors import (
    APIStatusError,
    BasetenError,
    ClientClosedError,
    InvalidInputError,
    JobFailedError,
    WaitTimeoutError,
)
from ._wire import EMPTY, GET_JOB, JOB_LOGS, LIST_JOBS, STOP_JOB, log_params
from .models import FinishedJob, JobStatus, LogLine, TrainingJob

__all__ = [
    "FAILURE_STATUSES",
    "JobEvent",
    "PollSettings",
    "PollStats",
    "ReturnWhen",
    "StatusPoller",
    "WaitManyResult",
    "Watch",
    "log_tail",
    "wait_job",
    "wait_jobs",
    "watch_jobs",
]

FAILURE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.DEPLOY_FAILED, JobStatus.PREEMPTED})
"""Terminal statuses that count as a failure (a stop is not one)."""

_STARTING = frozenset({JobStatus.CREATED, JobStatus.DEPLOYING})
_PENDING = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.CREATED, JobStatus.DEPLOYING})
_MAX_LOG_TAIL = 1000
_LOG_WINDOW = timedelta(days=7) - timedelta(minutes=1)

ReturnWhen = Literal["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_FAILED"]
OnTimeout = Literal["raise", "stop", "return"]


def _positive(field_name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInputError(field_name, "must be a positive, finite number of seconds")
    return float(value)


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How often a client polls job statuses; pass as ``AsyncTrainingClient(poll=...)``.

    Attributes:
        min_interval: Seconds between listings right after a launch or a change.
        max_interval: The longest pause, reached by long-running jobs.
        transition_interval: The longest pause while a job is starting
            (CREATED or DEPLOYING), when a change is due soon.
        backoff: Each poll that sees no change multiplies the pause by this.
    """

    min_interval: float = 1.0
    max_interval: float = 30.0
    transition_interval: float = 2.0
    backoff: float = 1.5

    def __post_init__(self) -> None:
        _positive("poll.min_interval", self.min_interval)
        _positive("poll.max_interval", self.max_interval)
        _positive("poll.transition_interval", self.transition_interval)
        if self.max_interval < self.min_interval:
            raise InvalidInputError("poll.max_interval", "must not be below min_interval")
        if (
            isinstance(self.backoff, bool)
            or not isinstance(self.backoff, int | float)
            or not math.isfinite(self.backoff)
            or self.backoff < 1
        ):
            raise InvalidInputError("poll.backoff", "must be a finite number >= 1")


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job seen in a new status.

    Attributes:
        job: The job as listed.
        previous: The status it had before; None the first time it is seen.
        seen_at: When the listing that showed it was sent, on the client's clock.
    """

    job: TrainingJob
    previous: str | None
    seen_at: float

    @property
    def status(self) -> str:
        """The new status."""
        return self.job.current_status


class WaitManyResult(NamedTuple):
    """What ``wait_many`` returns, like ``asyncio.wait``: ``done, pending = ...``.

    Attributes:
        done: Finished jobs by id, in the order asked for.
        pending: Jobs still active (their last state seen) by id.
    """

    done: dict[str, FinishedJob]
    pending: dict[str, TrainingJob]


@dataclass(slots=True)
class PollStats:
    """What the status poller has sent, for ``client.stats()``."""

    listings: int = 0
    lookups: int = 0


class _Tick:
    """A subscriber's deadline came; it should look at the clock."""


_TICK = _Tick()
_Item = JobEvent | _Tick | BaseException


class Watch:
    """One subscriber's view of a project: the events of the jobs it asked for.

    Made by `StatusPoller.subscribe`; close it (or use it as a context
    manager) when done.

    Attributes:
        job_ids: The jobs it follows; None for every job of the project.
        poll_interval: Poll at least this often (None: the client's settings).
    """

    def __init__(
        self,
        project: _ProjectWatch,
        job_ids: frozenset[str] | None,
        poll_interval: float | None,
    ) -> None:
        self._project = project
        self.job_ids = job_ids
        self.poll_interval = poll_interval
        self._deadline: float | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()

    @property
    def deadline(self) -> float | None:
        """When (on the clock) this subscriber wants a tick even without news."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        previous, self._deadline = self._deadline, value
        if value is not None and value != previous and value < self._project.sleeping_until:
            self._project.wake.set()  # the loop sleeps past the new deadline: wake it

    def put(self, item: _Item) -> None:
        """Hand the subscriber an event, a tick or an error."""
        self._queue.put_nowait(item)

    async def get(self) -> JobEvent | _Tick:
        """The next event or tick.

        Raises:
            BasetenError: Polling failed (after the client's retries).
        """
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def nudge(self) -> None:
        """Wake the subscriber's `get` with a tick."""
        self._queue.put_nowait(_TICK)

    def follow(self, job_ids: Iterable[str]) -> None:
        """Follow more jobs from now on; those already seen are reported at once."""
        self._project.follow(self, frozenset(job_ids))

    def close(self) -> None:
        """Stop following; the project's loop ends with its last subscriber."""
        self._project.unsubscribe(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StatusPoller:
    """The client's one status poller, shared by its views.

    Args:
        settings: Interval bounds.
    """

    def __init__(self, settings: PollSettings) -> None:
        self.settings = settings
        self.stats = PollStats()
        self._projects: dict[str, _ProjectWatch] = {}
        self._closed = False

    def subscribe(
        self,
        core: Core,
        project_id: str,
        job_ids: Iterable[str] | None,
        *,
        poll_interval: float | None = None,
    ) -> Watch:
        """Follow ``job_ids`` (or the whole project) from the next listing on.

        Jobs already seen are reported at once, with ``previous=None``.

        Raises:
            ClientClosedError: The client was closed.
        """
        if self._closed:
            raise ClientClosedError("the client is closed")
        project = self._projects.get(project_id)
        if project is None:
            project = self._projects[project_id] = _ProjectWatch(self, core, project_id)
        ids = None if job_ids is None else frozenset(job_ids)
        return project.subscribe(ids, poll_interval)

    def forget(self, project: _ProjectWatch) -> None:
        """Drop a project whose loop has ended."""
        if self._projects.get(project.project_id) is project:
            del self._projects[project.project_id]

    async def aclose(self) -> None:
        """Stop every loop; waiters get `ClientClosedError`."""
        self._closed = True
        projects = list(self._projects.values())
        for project in projects:
            project.fail(ClientClosedError("the client was closed while waiting"))
        tasks = [p.task for p in projects if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._projects.clear()


@dataclass(eq=False)
class _ProjectWatch:
    """The polling loop of one project."""

    poller: StatusPoller
    core: Core
    project_id: str
    subscribers: list[Watch] = field(default_factory=list)
    by_job: dict[str, set[Watch]] = field(default_factory=dict)  # who follows each job
    everything: set[Watch] = field(default_factory=set)  # who follows the whole project
    jobs: dict[str, TrainingJob] = field(default_factory=dict)
    seen_at: dict[str, float] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    interval: float = 0.0
    next_poll: float = 0.0
    last_poll: float | None = None
    hurry: bool = True
    sleeping_until: float = math.inf
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self, job_ids: frozenset[str] | None, poll_interval: float | None) -> Watch:
        watch = Watch(self, frozenset(), poll_interval)
        self.subscribers.append(watch)
        self.follow(watch, job_ids)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        return watch

    def follow(self, watch: Watch, job_ids: frozenset[str] | None) -> None:
        """Add jobs (None: every job) to what ``watch`` follows; report the known ones."""
        if watch.job_ids is None:
            return
        new = None if job_ids is None else job_ids - watch.job_ids
        if new is None:
            self._forget_jobs(watch)
            watch.job_ids = None
            self.everything.add(watch)
        else:
            watch.job_ids |= new
            for job_id in new:
                self.by_job.setdefault(job_id, set()).add(watch)
        known = self.jobs if new is None else {j: self.jobs[j] for j in new & self.jobs.keys()}
        for job_id, job in known.items():
            watch.put(JobEvent(job, None, self.seen_at[job_id]))
        if new is None or len(known) < len(new):
            # Something new to find (a launch, most likely): poll soon.
            self.hurry = True
            soon = self.core.clock.monotonic()
            if self.last_poll is not None:
                soon = max(soon, self.last_poll + self.poller.settings.min_interval)
            self.next_poll = min(self.next_poll, soon) if self.task is not None else soon
        elif watch.poll_interval is not None and self.last_poll is not None:
            self.next_poll = min(self.next_poll, self.last_poll + watch.poll_interval)
        if self.next_poll < self.sleeping_until:
            self.wake.set()

    def unsubscribe(self, watch: Watch) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(watch)
        self.everything.discard(watch)
        self._forget_jobs(watch)
        if not self.subscribers:
            self.wake.set()  # let the loop end now rather than after its pause

    def _forget_jobs(self, watch: Watch) -> None:
        for job_id in watch.job_ids or ():
            followers = self.by_job.get(job_id)
            if followers is not None:
                followers.discard(watch)
                if not followers:
                    del self.by_job[job_id]

    def fail(self, error: BaseException) -> None:
        for watch in list(self.subscribers):
            watch.put(error)

    async def _run(self) -> None:
        clock = self.core.clock
        try:
            while self.subscribers:
                now = clock.monotonic()
                if now >= self.next_poll:
                    try:
                        changed = await self._poll()
                    except BasetenError as exc:
                        self.fail(exc)
                        changed = True
                    self._plan(changed)
                    # Let the waiters take what was handed out (and leave, if done).
                    await asyncio.sleep(0)
                    continue
                if self._tick(now):
                    await asyncio.sleep(0)  # let them act on it (leave, or move a deadline)
                    continue
                await self._sleep(now, self._pause(now))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never die silently: waiters would hang
            self.fail(exc)
            raise
        finally:
            self.poller.forget(self)

    async def _sleep(self, now: float, pause: float) -> None:
        """Sleep on the clock until ``pause`` passes or someone needs the loop sooner."""
        self.wake.clear()
        self.sleeping_until = now + pause
        sleeper = asyncio.ensure_future(self.core.clock.sleep(pause))
        waker = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.sleeping_until = math.inf
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _tick(self, now: float) -> bool:
        """Tick every subscriber whose deadline has come; True if any had."""
        ticked = False
        for watch in list(self.subscribers):
            if watch.deadline is not None and watch.deadline <= now:
                watch.deadline = None
                watch.put(_TICK)
                ticked = True
        return ticked

    def _pause(self, now: float) -> float:
        pause = self.next_poll - now
        for watch in self.subscribers:
            if watch.deadline is not None:
                pause = min(pause, watch.deadline - now)
        return max(0.0, pause)

    def _plan(self, changed: bool) -> None:
        """Choose the pause before the next listing."""
        settings = self.poller.settings
        if changed or self.hurry:
            interval = settings.min_interval
        else:
            interval = min(
                settings.max_interval, max(self.interval, settings.min_interval) * settings.backoff
            )
        watched = self._watched()
        if any(self.jobs[j].current_status in _STARTING for j in watched if j in self.jobs):
            interval = min(interval, settings.transition_interval)
        pinned = [w.poll_interval for w in self.subscribers if w.poll_interval is not None]
        if pinned and len(pinned) == len(self.subscribers):
            interval = min(pinned)  # every waiter asked for its own interval: honour it exactly
        elif pinned:
            interval = min(interval, *pinned)
        self.interval = interval
        assert self.last_poll is not None
        self.next_poll = self.last_poll + interval

    def _watched(self) -> Collection[str]:
        return self.jobs.keys() if self.everything else self.by_job.keys()

    async def _poll(self) -> bool:
        """List the project once and hand out what changed; True if anything did."""
        core = self.core
        started = core.clock.monotonic()
        self.last_poll = started
        self.next_poll = math.inf  # until planned after this listing
        self.hurry = False
        # Jobs asked for before the listing was sent must be in it; later ones wait
        # for the next listing rather than being fetched one by one.
        wanted = set(self.by_job)
        stats = self.poller.stats
        stats.listings += 1
        response = await core.request(LIST_JOBS, LIST_JOBS.path(self.project_id))
        listed = {job.id: job for job in response.value.training_jobs}
        missing = [
            j
            for j in wanted
            if j not in listed and not (j in self.jobs and self.jobs[j].is_terminal)
        ]
        if missing:
            stats.lookups += len(missing)
            found = await asyncio.gather(
                *(self._lookup(j) for j in missing), return_exceptions=True
            )
            for job_id, result in zip(missing, found, strict=True):
                if isinstance(result, TrainingJob):
                    listed[job_id] = result
                elif isinstance(result, BaseException):
                    self._fail_job(job_id, result)
        changed = False
        for job_id, job in listed.items():
            previous = self.jobs.get(job_id)
            previous_status = None if previous is None else previous.current_status
            self.jobs[job_id] = job
            if previous_status == job.current_status:
                continue
            changed = True
            self.seen_at[job_id] = started
            event = JobEvent(job, previous_status, started)
            for watch in self.everything.union(self.by_job.get(job_id, ())):
                watch.put(event)
        return changed

    async def _lookup(self, job_id: str) -> TrainingJob:
        return await _lookup(self.core, self.project_id, job_id)

    def _fail_job(self, job_id: str, error: BaseException) -> None:
        for watch in list(self.by_job.get(job_id, ())):
            watch.put(error)


# --------------------------------------------------------------------------- #
# Waiting on the poller: one job, many jobs, a stream of events.               #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Limits:
    """When to give up on jobs, and what to do then.

    Attributes:
        timeout: Seconds for the whole wait.
        max_pending: Seconds a job may spend before RUNNING (pending, queued,
            created, deploying), from when it was first seen so.
        max_running: Seconds a job may spend RUNNING, from when it was first seen so.
        on_timeout: ``"raise"`` `WaitTimeoutError`; ``"stop"`` the job and
            return it stopped; ``"return"`` (``wait_many`` only, for ``timeout``)
            what is done so far, the rest as pending.
    """

    timeout: float | None = None
    max_pending: float | None = None
    max_running: float | None = None
    on_timeout: OnTimeout = "raise"

    def __post_init__(self) -> None:
        for name in ("timeout", "max_pending", "max_running"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        if self.on_timeout not in ("raise", "stop", "return"):
            raise InvalidInputError("on_timeout", "must be 'raise', 'stop' or 'return'")
        if self.on_timeout == "return" and (
            self.max_pending is not None or self.max_running is not None
        ):
            raise InvalidInputError(
                "on_timeout", "max_pending and max_running need on_timeout='raise' or 'stop'"
            )


@dataclass(slots=True)
class _Phase:
    name: str  # "pending" or "running"
    since: float


class _Tracker:
    """Last state, phase and limits of the jobs one wait follows."""

    def __init__(self, job_ids: Iterable[str], limits: Limits, started: float) -> None:
        self.order = list(dict.fromkeys(job_ids))
        self.limits = limits
        self.deadline = None if limits.timeout is None else started + limits.timeout
        self.latest: dict[str, TrainingJob] = {}
        self.done: dict[str, TrainingJob] = {}
        self.phases: dict[str, _Phase] = {}

    def see(self, event: JobEvent) -> None:
        job = event.job
        job_id = job.id
        if job_id in self.done:
            return
        self.latest[job_id] = job
        if job.is_terminal:
            self.done[job_id] = job
            self.phases.pop(job_id, None)
            return
        phase = "pending" if job.current_status in _PENDING else "running"
        current = self.phases.get(job_id)
        if current is None or current.name != phase:
            self.phases[job_id] = _Phase(phase, event.seen_at)

    def next_deadline(self) -> float | None:
        moments = [] if self.deadline is None else [self.deadline]
        for job_id, phase in self.phases.items():
            if job_id in self.done:
                continue
            cap = self.limits.max_pending if phase.name == "pending" else self.limits.max_running
            if cap is not None:
                moments.append(phase.since + cap)
        return min(moments, default=None)

    def over_cap(self, now: float) -> list[tuple[str, str]]:
        """(job id, reason) of each job past its pending or running cap."""
        over = []
        for job_id, phase in self.phases.items():
            if job_id in self.done:
                continue
            cap = self.limits.max_pending if phase.name == "pending" else self.limits.max_running
            if cap is not None and now >= phase.since + cap:
                over.append((job_id, f"max_{phase.name}"))
        return over

    def pending(self) -> dict[str, TrainingJob]:
        return {j: self.latest[j] for j in self.order if j not in self.done and j in self.latest}


def _finished(
    job: TrainingJob, *, tail: list[LogLine] | None, stopped_for: str | None
) -> FinishedJob:
    return FinishedJob(**msgspec.structs.asdict(job), log_tail=tail, stopped_for=stopped_for)


async def log_tail(core: Core, project_id: str, job: TrainingJob, lines: int) -> list[LogLine]:
    """The last ``lines`` log lines of a finished job, oldest first."""
    end = _parse_time(job.updated_at) or _parse_time(job.created_at)
    created = _parse_time(job.created_at)
    if end is None:
        return []
    end += timedelta(minutes=1)  # the last lines may be stamped just after the status changed
    start = end - _LOG_WINDOW
    if created is not None:
        start = max(start, created - timedelta(minutes=1))
    params = log_params(_ms(start), _ms(end), "desc", None)
    params["limit"] = min(lines, _MAX_LOG_TAIL)
    path = JOB_LOGS.path(project_id, job.id)
    page = (await core.request(JOB_LOGS, path, params=params)).value.logs
    return sorted(page, key=lambda line: line.timestamp_ns)


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _ms(moment: datetime) -> int:
    return max(0, int(moment.timestamp() * 1000))


async def _stop(core: Core, project_id: str, job: TrainingJob) -> TrainingJob:
    path = STOP_JOB.path(project_id, job.id)
    try:
        stopped = (await core.request(STOP_JOB, path, body=EMPTY)).value.training_job
    except APIStatusError:
        # It finished (or went away) just before the stop arrived: report what it is now.
        return await _lookup(core, project_id, job.id)
    if not stopped.is_terminal:
        stopped = msgspec.structs.replace(stopped, current_status=JobStatus.STOPPED)
    return stopped


async def _result(
    core: Core,
    project_id: str,
    job: TrainingJob,
    *,
    lines: int,
    stopped_for: str | None = None,
) -> FinishedJob:
    tail = None
    if lines > 0 and job.current_status in FAILURE_STATUSES:
        tail = await log_tail(core, project_id, job, lines)
    return _finished(job, tail=tail, stopped_for=stopped_for)


async def wait_jobs(
    poller: StatusPoller,
    core: Core,
    project_id: str,
    job_ids: Collection[str],
    *,
    limits: Limits,
    return_when: ReturnWhen = "ALL_COMPLETED",
    poll_interval: float | None = None,
    on_event: Callable[[JobEvent], object] | None = None,
    log_lines: int = 0,
    raise_on_failure: bool = False,
) -> WaitManyResult:
    """Wait for jobs of one project on the shared poller.

    Returns when ``return_when`` is met, or when ``limits.timeout`` passes with
    ``on_timeout="stop"`` (remaining jobs stopped). A job past its pending or
    running cap is stopped (``on_timeout="stop"``) or raises.

    Raises:
        WaitTimeoutError: A limit passed with ``on_timeout="raise"``.
        JobFailedError: A job failed and ``raise_on_failure`` is set.
    """
    if return_when not in ("ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_FAILED"):
        raise InvalidInputError(
            "return_when", "must be 'ALL_COMPLETED', 'FIRST_COMPLETED' or 'FIRST_FAILED'"
        )
    clock = core.clock
    tracker = _Tracker(job_ids, limits, clock.monotonic())
    stopped_for: dict[str, str] = {}
    with poller.subscribe(core, project_id, tracker.order, poll_interval=poll_interval) as watch:
        while not _satisfied(tracker, return_when):
            watch.deadline = tracker.next_deadline()
            item = await watch.get()
            if isinstance(item, JobEvent):
                if item.job.id not in tracker.done and on_event is not None:
                    on_event(item)
                tracker.see(item)
                failed = item.job.current_status in FAILURE_STATUSES
                if failed and raise_on_failure and item.job.id in tracker.done:
                    break
                continue
            now = clock.monotonic()
            over = tracker.over_cap(now)
            timed_out = tracker.deadline is not None and now >= tracker.deadline
            if timed_out:
                over = [(j, "timeout") for j in tracker.order if j not in tracker.done]
            if not over:
                continue
            if limits.on_timeout == "raise":
                job_id, reason = over[0]
                job = tracker.latest.get(job_id) or await _lookup(core, project_id, job_id)
                raise WaitTimeoutError(
                    _timeout_message(job_id, job, reason, limits), job=job, reason=reason
                )
            if limits.on_timeout == "return":
                break
            over = [(j, reason) for j, reason in over if j in tracker.latest]
            stopped = await asyncio.gather(
                *(_stop(core, project_id, tracker.latest[j]) for j, _ in over)
            )
            for (job_id, reason), job in zip(over, stopped, strict=True):
                stopped_for[job_id] = reason
                tracker.done[job_id] = job
            if timed_out:
                break
    failures = [
        j
        for j in tracker.order
        if j in tracker.done and tracker.done[j].current_status in FAILURE_STATUSES
    ]
    done_ids = [j for j in tracker.order if j in tracker.done]
    results = await asyncio.gather(
        *(
            _result(
                core, project_id, tracker.done[j], lines=log_lines, stopped_for=stopped_for.get(j)
            )
            for j in done_ids
        )
    )
    done = dict(zip(done_ids, results, strict=True))
    if raise_on_failure and failures:
        first = done[failures[0]]
        raise JobFailedError(
            f"job {first.id} ended {first.current_status}"
            + (f": {first.error_message}" if first.error_message else ""),
            job=first,
            log_tail=first.log_tail or [],
        )
    return WaitManyResult(done, tracker.pending())


def _satisfied(tracker: _Tracker, return_when: ReturnWhen) -> bool:
    if len(tracker.done) >= len(tracker.order):
        return True
    if return_when == "FIRST_COMPLETED":
        return bool(tracker.done)
    if return_when == "FIRST_FAILED":
        return any(job.current_status in FAILURE_STATUSES for job in tracker.done.values())
    return False


async def _lookup(core: Core, project_id: str, job_id: str) -> TrainingJob:
    return (await core.request(GET_JOB, GET_JOB.path(project_id, job_id))).value.training_job


def _timeout_message(job_id: str, job: TrainingJob, reason: str, limits: Limits) -> str:
    status = f"still {job.current_status}"
    if reason == "timeout":
        return f"job {job_id} {status} after {limits.timeout:g}s"
    cap = limits.max_pending if reason == "max_pending" else limits.max_running
    phase = "pending" if reason == "max_pending" else "running"
    return f"job {job_id} {status}: {phase} longer than {reason}={cap:g}s"


async def wait_job(
    poller: StatusPoller,
    core: Core,
    project_id: str,
    job_id: str,
    *,
    limits: Limits,
    poll_interval: float | None,
    on_status_change: Callable[[TrainingJob], object] | None,
    log_lines: int,
    raise_on_failure: bool,
) -> FinishedJob:
    """Wait for one job on the shared poller; see ``JobsResource.wait``."""
    on_event = None if on_status_change is None else (lambda event: on_status_change(event.job))
    result = await wait_jobs(
        poller,
        core,
        project_id,
        [job_id],
        limits=limits,
        poll_interval=poll_interval,
        on_event=on_event,
        log_lines=log_lines,
        raise_on_failure=raise_on_failure,
    )
    return result.done[job_id]


async def watch_jobs(
    poller: StatusPoller,
    core: Core,
    project_id: str,
    job_ids: Collection[str] | None,
    *,
    poll_interval: float | None = None,
) -> AsyncIterator[JobEvent]:
    """Every status change of the jobs (or the whole project), in the order seen.

    Ends when every job asked for is terminal; for a whole project, never
    (until the consumer stops iterating).
    """
    remaining = None if job_ids is None else set(job_ids)
    if remaining is not None and not remaining:
        return
    with poller.subscribe(core, project_id, job_ids, poll_interval=poll_interval) as watch:
        while True:
            item = await watch.get()
            if not isinstance(item, JobEvent):
                continue
            yield item
            if remaining is not None and item.job.is_terminal:
                remaining.discard(item.job.id)
                if not remaining:
                    return
