"""What a handler works with: the request (`Call`) and the server's state (`ServerState`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._faults import Fault
from ._models import FakeStats, RequestRecord, StoredJob
from ._store import Store

__all__ = ["Call", "Handler", "ServerState", "job_of"]


@dataclass(slots=True)
class Call:
    """What an endpoint handler needs from a request.

    Attributes:
        path: Path parameters.
        body: Validated JSON body (defaults filled in; ``{}`` when there is none).
        query: Parsed query parameters.
        now: Fake-clock time the operation runs at (set when it commits).
        fault: The injected fault drawn for the request, if any.
    """

    path: Mapping[str, str]
    body: dict[str, Any]
    query: dict[str, Any]
    now: float
    fault: Fault | None


@dataclass(slots=True, eq=False)
class ServerState:
    """Everything `FakeTrainingAPI.reset` forgets: the store, counters and the request log.

    Attributes:
        store: Teams, projects and jobs.
        started_at: Fake-clock time the state was created.
        stats: Counters.
        requests: The request log, oldest first.
        request_seq: Requests received (numbers request ids).
        blob_seq: Upload credentials handed out.
    """

    store: Store
    started_at: float
    stats: FakeStats = field(default_factory=FakeStats)
    requests: list[RequestRecord] = field(default_factory=list)
    request_seq: int = 0
    blob_seq: int = 0


Handler = Callable[[ServerState, Call], dict[str, Any]]
"""An endpoint: ``handler(state, call) -> JSON payload``; raises `ApiError` for a 4xx."""


def job_of(state: ServerState, call: Call) -> StoredJob:
    """Return the job a ``/training_projects/{p}/jobs/{j}`` path names.

    Args:
        state: The server state.
        call: The request.

    Returns:
        The job.

    Raises:
        ApiError: 404 for an unknown project or job, or a job of another project.
    """
    return state.store.job(call.path["training_project_id"], call.path["training_job_id"])
