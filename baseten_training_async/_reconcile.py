"""Exactly-once creation of jobs over an unreliable network.

Create and recreate start a GPU-billed job on every successful call, so they
are never blindly resent. What the SDK knows after each kind of failure:

- a 2xx is proof that the job was made, even when its body cannot be read:
  the job is looked up by name and adopted, or
  `APIResponseValidationError` is raised with ``committed=True``; it is
  never sent again;
- a timeout or disconnect after the request was sent, or a 5xx other than 503, is
  *unknown*: the server may commit the job later, after the client gave up.
  The project's jobs are listed until the job appears under its name
  (adopted) or until the **commit window** (a client setting, 60 s by
  default) has passed since the ambiguous attempt failed. Only then is the
  job proven absent and the create sent again (at most three sends in all).
  With ``on_unknown_outcome="raise"`` a lone create raises at once instead;
- no name to look for, or the lookup itself fails: the outcome cannot be
  known and `APIConnectionError` is raised with ``maybe_committed=True``
  and the spec attached.

After a resend, the call keeps watching the name for one more commit window
before it returns: a second job under it (a server that committed later than
the window assumes) is reported as a `DuplicateJobWarning` and in
``client.stats().duplicates``, and stopped when the client was built with
``stop_duplicates=True``.

"Did not exist before the call" is known in one of two ways. ``create_many``
lists the project once when the batch starts and remembers every job id it
has seen or been given since ("claimed" ids). A lone ``create`` compares the
job's ``created_at`` with the moment the call began, on the server's own
clock (from the listing response's ``Date`` header, less the local time the
call has taken), so client clock skew does not matter.

Concurrent reconciliations for one project share one listing: a listing that
started after a failure answers for every failure before its start.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ._core import Core
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    BasetenError,
    InternalServerError,
)
from ._observe import ReconcileEvent, ReconcileOutcome, report_reconcile
from ._wire import EMPTY, LIST_JOBS, STOP_JOB, CreateJobRequest, JobEnvelope, Route
from .coordination._base import BoundCoordinator
from .models import TrainingJob, TrainingJobSpec

__all__ = ["Claims", "DuplicateJobWarning", "Reconciler", "ReconcileStats"]

logger = logging.getLogger("baseten_training_async")

_MAX_ROUNDS = 3  # sends of one create, each only after the last was proven absent
# The Date header has one-second resolution; allow for it and for latency.
_SERVER_CLOCK_SLACK = timedelta(seconds=2)
_FIRST_PAUSE = 0.25
_MAX_PAUSE = 2.0


class DuplicateJobWarning(UserWarning):
    """A second job appeared under a name the SDK created exactly once.

    It means the server committed a create later than the client's commit
    window assumed. The ids are in the message and in ``client.stats()``.
    """


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed create may nevertheless have created the job."""
    if isinstance(exc, APIConnectionError):
        return exc.maybe_committed
    # Every 5xx but 503 may come from a gateway after the origin got the request
    # (502, 504, and CDNs' 520-524); 503 means it was refused before handling.
    return isinstance(exc, InternalServerError) and exc.status_code != 503


def committed(exc: BaseException) -> bool:
    """Whether a failed create certainly created the job (a 2xx we could not read)."""
    return isinstance(exc, APIResponseValidationError) and 200 <= exc.status_code < 300


class _LeaderGone(Exception):
    """The task running a shared listing was cancelled; its followers list again."""


class _Undecidable(Exception):
    """The listing cannot tell whether the call created the job."""


class Claims:
    """Job ids a batch knows are not its own to adopt: pre-existing or already returned."""

    __slots__ = ("ids",)

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids


@dataclass(frozen=True, slots=True)
class _Listing:
    jobs: list[TrainingJob]
    server_now: datetime | None
    started: float  # local clock reading when the listing request began


@dataclass(slots=True)
class ReconcileStats:
    """What reconciliation did, for ``client.stats()``."""

    reconciliations: int = 0
    adopted: int = 0
    resent: int = 0
    listings: int = 0
    lookups: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(name, job id) of every second job seen under a name after a resend."""


class Reconciler:
    """Create and recreate with reconciliation; one per client, shared by its views.

    Args:
        commit_window: Seconds after an ambiguous attempt during which the
            server may still commit it.
        raise_on_unknown: A lone create raises at once on an unknown outcome
            instead of looking the job up.
        stop_duplicates: Stop a second job found under a name after a resend.
        leases: The client's coordinator, whose per-name leases
            ``create_many(adopt_existing=True)`` holds around each create.
    """

    def __init__(
        self,
        *,
        commit_window: float,
        raise_on_unknown: bool,
        stop_duplicates: bool,
        leases: BoundCoordinator | None = None,
    ) -> None:
        self.leases = leases
        self.commit_window = commit_window
        self.raise_on_unknown = raise_on_unknown
        self.stop_duplicates = stop_duplicates
        self._inflight: dict[str, tuple[float, asyncio.Future[_Listing]]] = {}
        self.stats = ReconcileStats()

    async def create(
        self,
        core: Core,
        project_id: str,
        route: Route[JobEnvelope],
        path: str,
        *,
        spec: TrainingJobSpec | None,
        headers: dict[str, str] | None,
        claims: Claims | None,
        source_job_id: str | None = None,
    ) -> TrainingJob:
        """POST a create (or recreate) and settle an unknown outcome.

        A recreate has no spec to name it: ``source_job_id`` says which job it
        copies, and the new job is looked for under that job's name. With
        tracing on, the whole call (every attempt and listing) is one span.
        """
        with core.call_span(route):
            return await self._create(
                core, project_id, route, path, spec, headers, claims, source_job_id
            )

    async def _create(
        self,
        core: Core,
        project_id: str,
        route: Route[JobEnvelope],
        path: str,
        spec: TrainingJobSpec | None,
        headers: dict[str, str] | None,
        claims: Claims | None,
        source_job_id: str | None,
    ) -> TrainingJob:
        body = None if spec is None else CreateJobRequest(spec)
        name = None if spec is None else spec.name
        started = core.clock.monotonic()
        last_error: BasetenError | None = None
        resent = False
        # A new round starts only when the previous one was proven not to have
        # created the job.
        for _ in range(_MAX_ROUNDS):
            try:
                response = await core.request(route, path, body=body, headers=headers)
            except BasetenError as exc:
                if committed(exc):
                    return await self._adopt_committed(
                        core, project_id, name, claims, started, exc, source_job_id
                    )
                if not outcome_unknown(exc):
                    raise
                job = await self._settle(
                    core, project_id, path, name, claims, started, exc, spec, source_job_id
                )
                if job is not None:
                    return self._claim(claims, job)
                self.stats.resent += 1
                resent = True
                last_error = exc
                continue
            job = response.value.training_job
            self._claim(claims, job)
            if resent:
                await self._watch_after_resend(core, project_id, job, claims, started)
            return job
        raise APIConnectionError(
            f"POST {path}: gave up after {_MAX_ROUNDS} sends; each was proven not to have "
            f"created the job ({last_error})",
            maybe_committed=False,
            spec=spec,
        ) from last_error

    async def _settle(
        self,
        core: Core,
        project_id: str,
        path: str,
        name: str | None,
        claims: Claims | None,
        started: float,
        exc: BasetenError,
        spec: TrainingJobSpec | None,
        source_job_id: str | None,
    ) -> TrainingJob | None:
        """The job the ambiguous attempt made, or None once it is proven absent."""
        if name is None and source_job_id is None:
            await self._report(core, "raised", project_id, name, None, exc)
            raise APIConnectionError(
                f"POST {path}: the outcome is unknown and the job has no name to look "
                f"it up by; it may have been created ({exc})",
                maybe_committed=True,
                spec=spec,
            ) from exc
        if self.raise_on_unknown and claims is None:
            await self._report(core, "raised", project_id, name, None, exc)
            raise APIConnectionError(
                f"POST {path}: the outcome is unknown; the job may have been created "
                f"({exc}). Look it up by name before sending it again",
                maybe_committed=True,
                spec=spec,
            ) from exc
        self.stats.reconciliations += 1
        try:
            job = await self._find(core, project_id, name, claims, started, source_job_id)
        except (BasetenError, _Undecidable) as lookup_error:
            await self._report(core, "raised", project_id, name, None, exc)
            raise APIConnectionError(
                f"POST {path}: the outcome is unknown and looking the job up by name "
                f"did not settle it ({lookup_error}); it may have been created",
                maybe_committed=True,
                spec=spec,
            ) from exc
        if job is not None:
            self.stats.adopted += 1
            await self._report(core, "adopted", project_id, job.name, job.id, exc)
        else:
            await self._report(core, "resent", project_id, name, None, exc)
        return job

    @staticmethod
    async def _report(
        core: Core,
        outcome: ReconcileOutcome,
        project_id: str,
        name: str | None,
        job_id: str | None,
        error: BaseException | None,
    ) -> None:
        event = ReconcileEvent(outcome, project_id, name, job_id, error)
        await report_reconcile(core.observer, event)

    async def _adopt_committed(
        self,
        core: Core,
        project_id: str,
        name: str | None,
        claims: Claims | None,
        started: float,
        exc: BasetenError,
        source_job_id: str | None,
    ) -> TrainingJob:
        """A 2xx whose body could not be read: the job exists; find it, never resend."""
        job = None
        if name is not None or source_job_id is not None:
            self.stats.reconciliations += 1
            try:
                job = await self._find(core, project_id, name, claims, started, source_job_id)
            except (BasetenError, _Undecidable):
                job = None
        if job is None:
            assert isinstance(exc, APIResponseValidationError)
            exc.committed = True
            exc.add_note("the job was created (the server answered 2xx); do not send it again")
            await self._report(core, "raised", project_id, name, None, exc)
            raise exc
        self.stats.adopted += 1
        await self._report(core, "adopted", project_id, job.name, job.id, exc)
        return self._claim(claims, job)

    async def _watch_after_resend(
        self,
        core: Core,
        project_id: str,
        job: TrainingJob,
        claims: Claims | None,
        call_started: float,
    ) -> None:
        """Watch the name for one commit window after a resend; report any second job.

        The earlier attempt was proven absent for a whole window, so a job
        that appears now means the server committed later than the window
        assumes. It cannot be undone, so it is said: a `DuplicateJobWarning`,
        ``client.stats().duplicates``, and a stop when ``stop_duplicates``.
        """
        if job.name is None:
            return
        clock = core.clock
        until = clock.monotonic() + self.commit_window
        reported: set[str] = set()
        pause = _FIRST_PAUSE
        while True:
            since = clock.monotonic()
            listing = await self._listing_since(core, project_id, since)
            try:
                others = _new_jobs(listing, job.name, claims, call_started, exclude=job.id)
            except _Undecidable:
                return
            for other in others:
                if other.id not in reported:
                    reported.add(other.id)
                    await self._report_duplicate(core, project_id, job, other, claims)
            if listing.started >= until:
                return
            await clock.sleep(min(pause, max(0.0, until - clock.monotonic())))
            pause = min(pause * 2, _MAX_PAUSE)

    async def _report_duplicate(
        self,
        core: Core,
        project_id: str,
        job: TrainingJob,
        other: TrainingJob,
        claims: Claims | None,
    ) -> None:
        self.stats.duplicates.append((job.name or "", other.id))
        await self._report(core, "duplicate", project_id, job.name, other.id, None)
        if claims is not None:
            claims.ids.add(other.id)  # never adopted by another spec of the batch
        logger.warning(
            "job %s also carries the name %r of job %s: the server committed a create "
            "later than the commit window (%gs)%s",
            other.id,
            job.name,
            job.id,
            self.commit_window,
            "; stopping it" if self.stop_duplicates else "",
        )
        warnings.warn(
            f"job {other.id} also carries the name {job.name!r} of job {job.id}: the server "
            f"committed a create later than the commit window ({self.commit_window:g}s)"
            + ("; stopping it" if self.stop_duplicates else ""),
            DuplicateJobWarning,
            stacklevel=2,
        )
        if self.stop_duplicates:
            await core.request(STOP_JOB, STOP_JOB.path(project_id, other.id), body=EMPTY)

    async def find_named(
        self, core: Core, project_id: str, name: str, claims: Claims | None, *, wait: float
    ) -> TrainingJob | None:
        """The oldest job named ``name``, looked for until ``wait`` seconds have passed.

        For a lease whose previous holder released it (``wait=0``: its create
        has settled) or died (``wait`` = the commit window: its create may
        still be committed by the server).
        """
        clock = core.clock
        give_up_at = clock.monotonic() + wait
        pause = _FIRST_PAUSE
        while True:
            listing = await self._listing_since(core, project_id, clock.monotonic())
            named = [job for job in listing.jobs if job.name == name]
            if named:
                return self._claim(claims, min(named, key=lambda job: job.created_at))
            if listing.started >= give_up_at:
                return None
            await clock.sleep(min(pause, max(0.0, give_up_at - clock.monotonic())))
            pause = min(pause * 2, _MAX_PAUSE)

    @staticmethod
    def _claim(claims: Claims | None, job: TrainingJob) -> TrainingJob:
        if claims is not None:
            claims.ids.add(job.id)
        return job

    async def _find(
        self,
        core: Core,
        project_id: str,
        name: str | None,
        claims: Claims | None,
        call_started: float,
        source_job_id: str | None,
    ) -> TrainingJob | None:
        clock = core.clock
        failed_at = clock.monotonic()
        # The server may still commit the request (a gateway that gave up, a
        # slow database): look again, less and less often, until the commit
        # window since the failure has passed.
        give_up_at = failed_at + self.commit_window
        pause = _FIRST_PAUSE
        since = failed_at
        while True:
            listing = await self._listing_since(core, project_id, since)
            if name is None:
                name = _name_of(listing, source_job_id)
            job = _pick(listing, name, claims, call_started, exclude=source_job_id)
            if job is not None or listing.started >= give_up_at:
                return job
            await clock.sleep(min(pause, max(0.0, give_up_at - clock.monotonic())))
            pause = min(pause * 2, _MAX_PAUSE)
            since = clock.monotonic()

    async def _listing_since(self, core: Core, project_id: str, since: float) -> _Listing:
        """A listing that began at or after ``since``, shared by concurrent callers."""
        self.stats.lookups += 1
        while (shared := self._inflight.get(project_id)) is not None:
            began, future = shared
            try:
                listing = await asyncio.shield(future)
            except _LeaderGone:
                continue
            if began >= since:
                return listing
            # That one began before our failure; wait for the next (or run it).
        future = asyncio.get_running_loop().create_future()
        began = core.clock.monotonic()
        self._inflight[project_id] = (began, future)
        try:
            self.stats.listings += 1
            response = await core.request(LIST_JOBS, LIST_JOBS.path(project_id))
            listing = _Listing(response.value.training_jobs, response.server_time, began)
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else _LeaderGone()
            future.set_exception(failure)
            future.exception()  # retrieved: there may be no followers
            raise
        finally:
            if self._inflight.get(project_id, (0.0, None))[1] is future:
                del self._inflight[project_id]
        future.set_result(listing)
        return listing


def _parse_created(value: str) -> datetime | None:
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        return None
    return created if created.tzinfo else None


def _name_of(listing: _Listing, job_id: str | None) -> str:
    for job in listing.jobs:
        if job.id == job_id and job.name is not None:
            return job.name
    raise _Undecidable(f"the job being recreated ({job_id}) has no name to look for")


def _new_jobs(
    listing: _Listing,
    name: str,
    claims: Claims | None,
    call_started: float,
    *,
    exclude: str | None,
) -> list[TrainingJob]:
    """Jobs under ``name`` that did not exist before the call began."""
    candidates = [job for job in listing.jobs if job.name == name and job.id != exclude]
    if claims is not None:
        candidates = [job for job in candidates if job.id not in claims.ids]
    else:
        if listing.server_now is None:
            raise _Undecidable("the server sent no Date header to order jobs by")
        # The call began this long before the listing did, on the server's clock.
        began = listing.server_now - timedelta(seconds=listing.started - call_started)
        threshold = began - _SERVER_CLOCK_SLACK
        candidates = [
            job
            for job in candidates
            if (created := _parse_created(job.created_at)) is not None and created >= threshold
        ]
    return candidates


def _pick(
    listing: _Listing,
    name: str,
    claims: Claims | None,
    call_started: float,
    *,
    exclude: str | None = None,
) -> TrainingJob | None:
    candidates = _new_jobs(listing, name, claims, call_started, exclude=exclude)
    if not candidates:
        return None
    if claims is None and len(candidates) > 1:
        raise _Undecidable(f"{len(candidates)} new jobs are named {name!r}")
    return min(candidates, key=lambda job: job.created_at)
