"""Exactly-once creation of jobs over an unreliable network.

Create and recreate start a GPU-billed job on every successful call, so they
are never blindly resent. When an attempt's outcome is unknown (a timeout or
disconnect after the request was sent, or a 500/502/504) the SDK looks the
project's jobs up and decides:

- a job with the spec's ``name`` that did not exist before the call is the
  call's job: it is adopted and returned;
- no such job, after the server has had time to finish (as long again as the
  attempt's timeout, at most 15 s): the create did not happen, and it is sent
  again (at most three sends in all);
- a success status whose body could not be read counts as unknown too;
- no name to look for, or the lookup itself fails: the outcome cannot be
  known and `APIConnectionError` is raised with ``maybe_committed=True``
  and the spec attached.

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
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ._dates import parse_http_date
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    BasetenError,
    InternalServerError,
)
from ._wire import JobEnvelope, JobsEnvelope
from .models import TrainingJob

if TYPE_CHECKING:
    from ._client import _Core

__all__ = ["Claims", "Reconciler"]

_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
_MAX_ROUNDS = 3  # sends of one create, each only after the last was shown not to land
_MAX_SETTLE = 15.0  # seconds a timed-out create is looked for before it counts as lost
# The Date header has one-second resolution; allow for it and for latency.
_SERVER_CLOCK_SLACK = timedelta(seconds=2)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed create may nevertheless have created the job."""
    if isinstance(exc, APIConnectionError):
        return exc.maybe_committed
    if isinstance(exc, APIResponseValidationError):
        return True  # a success status whose body could not be read: it was created
    return isinstance(exc, InternalServerError) and exc.status_code in _AMBIGUOUS_STATUSES


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
    started: float  # local monotonic time the listing request began


class Reconciler:
    """Create and recreate with reconciliation; one per client."""

    def __init__(self, core: _Core, *, settle_time: float | None = None) -> None:
        self._core = core
        # How long a timed-out create may still be committing on the server.
        self._settle_time = settle_time
        self._inflight: dict[str, tuple[float, asyncio.Future[_Listing]]] = {}
        self.reconciliations = 0
        self.adopted = 0
        self.resent = 0
        self.listings = 0

    async def create(
        self,
        project_id_segment: str,
        body: bytes | None,
        *,
        name: str | None,
        headers: Mapping[str, str] | None,
        claims: Claims | None,
        path_suffix: str = "/jobs",
        spec: object = None,
        source_job_id: str | None = None,
    ) -> TrainingJob:
        """POST a create (or recreate) and reconcile an unknown outcome.

        A recreate has no spec to name it: ``source_job_id`` says which job it
        copies, and the new job is looked for under that job's name.
        """
        path = f"/v1/training_projects/{project_id_segment}{path_suffix}"
        started = time.monotonic()
        last_error: BasetenError | None = None
        # Each round retries per the policy; a new round starts only when the
        # previous one was shown not to have created the job.
        for _ in range(_MAX_ROUNDS):
            try:
                envelope = await self._core.request(
                    "POST", path, JobEnvelope, body=body, headers=headers, idempotent=False
                )
            except BasetenError as exc:
                if not outcome_unknown(exc):
                    raise
                if name is None and source_job_id is None:
                    raise APIConnectionError(
                        f"POST {path}: the outcome is unknown and the job has no name to look "
                        f"it up by; it may have been created ({exc})",
                        maybe_committed=True,
                        spec=spec,
                    ) from exc
                self.reconciliations += 1
                try:
                    job = await self._find_committed(
                        project_id_segment, name, claims, started, source_job_id=source_job_id
                    )
                except (BasetenError, _Undecidable) as lookup_error:
                    raise APIConnectionError(
                        f"POST {path}: the outcome is unknown and looking the job up by name "
                        f"did not settle it ({lookup_error}); it may have been created",
                        maybe_committed=True,
                        spec=spec,
                    ) from exc
                if job is not None:
                    self.adopted += 1
                    return self._claim(claims, job)
                self.resent += 1
                last_error = exc
                continue
            return self._claim(claims, envelope.training_job)
        raise APIConnectionError(
            f"POST {path}: gave up after {_MAX_ROUNDS} rounds; each time the job was shown "
            f"not to have been created ({last_error})",
            maybe_committed=False,
            spec=spec,
        ) from last_error

    @staticmethod
    def _claim(claims: Claims | None, job: TrainingJob) -> TrainingJob:
        if claims is not None:
            claims.ids.add(job.id)
        return job

    async def _find_committed(
        self,
        project_id_segment: str,
        name: str | None,
        claims: Claims | None,
        call_started: float,
        *,
        source_job_id: str | None,
    ) -> TrainingJob | None:
        failed_at = time.monotonic()
        # The request may still be running on the server (a timeout, or a proxy
        # that dropped the connection): look again, less and less often, until
        # it has had as long again as the client gave it (at most _MAX_SETTLE).
        settle = self._settle_time
        if settle is None:
            settle = min(self._core.timeout, _MAX_SETTLE)
        give_up_at = failed_at + settle
        pause = 0.25
        while True:
            listing = await self._listing_since(project_id_segment, failed_at)
            if name is None:
                name = _name_of(listing, source_job_id)
            job = _pick(listing, name, claims, call_started, exclude=source_job_id)
            if job is not None or time.monotonic() >= give_up_at:
                return job
            await self._core.policy.sleep(min(pause, max(0.0, give_up_at - time.monotonic())))
            pause = min(pause * 2, 2.0)
            failed_at = time.monotonic()

    async def _listing_since(self, project_id_segment: str, since: float) -> _Listing:
        """A listing that began at or after ``since``, shared by concurrent callers."""
        while (shared := self._inflight.get(project_id_segment)) is not None:
            began, future = shared
            try:
                listing = await asyncio.shield(future)
            except _LeaderGone:
                continue
            if began >= since:
                return listing
            # That one began before our failure; wait for the next (or run it).
        future = asyncio.get_running_loop().create_future()
        self._inflight[project_id_segment] = (time.monotonic(), future)
        try:
            listing = await self._list(project_id_segment)
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else _LeaderGone()
            future.set_exception(failure)
            future.exception()  # retrieved: there may be no followers
            raise
        finally:
            if self._inflight.get(project_id_segment, (0.0, None))[1] is future:
                del self._inflight[project_id_segment]
        future.set_result(listing)
        return listing

    async def _list(self, project_id_segment: str) -> _Listing:
        self.listings += 1
        started = time.monotonic()
        envelope, date = await self._core.request_with_date(
            "GET",
            f"/v1/training_projects/{project_id_segment}/jobs",
            JobsEnvelope,
            idempotent=True,
        )
        return _Listing(envelope.training_jobs, parse_http_date(date), started)


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


def _pick(
    listing: _Listing,
    name: str,
    claims: Claims | None,
    call_started: float,
    *,
    exclude: str | None = None,
) -> TrainingJob | None:
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
    if not candidates:
        return None
    if claims is None and len(candidates) > 1:
        raise _Undecidable(f"{len(candidates)} new jobs are named {name!r}")
    return min(candidates, key=lambda job: job.created_at)
