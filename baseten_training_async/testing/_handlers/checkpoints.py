"""Checkpoints and their files (offset-paged): the ones a running job has saved by now."""

from __future__ import annotations

from typing import Any

from .._context import Call, Handler, ServerState, job_of
from .._logstore import materialize_logs
from .._models import StoredJob
from .._render import render_job
from .._routes import Route

__all__ = ["HANDLERS"]


def _saved_so_far(state: ServerState, call: Call) -> StoredJob:
    job = job_of(state, call)
    materialize_logs(job, call.now)  # each "saved checkpoint-N" line records one
    return job


def checkpoints(state: ServerState, call: Call) -> dict[str, Any]:
    job = _saved_so_far(state, call)
    return {
        "training_job": render_job(state.store, job, call.now),
        "checkpoints": list(job.checkpoints),
    }


def checkpoint_files(state: ServerState, call: Call) -> dict[str, Any]:
    job = _saved_so_far(state, call)
    size = int(call.query.get("page_size", 1000))
    token = int(call.query.get("page_token", 0))
    files = job.checkpoint_files
    total = len(files)
    kind = call.fault.kind if call.fault is not None else None
    if kind == "empty_page":
        return {"presigned_urls": [], "next_page_token": token + size, "total_count": total}
    page = files[token : token + size]
    next_token: int | None = token + size if token + size < total else None
    if kind == "repeat_page_token":
        next_token = token
    return {"presigned_urls": page, "next_page_token": next_token, "total_count": total}


HANDLERS: dict[str, Handler] = {
    Route.CHECKPOINTS: checkpoints,
    Route.CHECKPOINT_FILES: checkpoint_files,
}
