"""Jobs: create, recreate, get, list, search, update, stop, delete, download."""

from __future__ import annotations

import copy
from typing import Any

from .._context import Call, Handler, ServerState, job_of
from .._render import render_job, render_project
from .._routes import Route
from .._rules import ApiError

__all__ = ["HANDLERS"]


def list_jobs(state: ServerState, call: Call) -> dict[str, Any]:
    store = state.store
    project = store.project(call.path["training_project_id"])
    jobs = [render_job(store, store.jobs[i], call.now) for i in project.job_ids]
    return {"training_project": render_project(store, project, call.now), "training_jobs": jobs}


def _preempt_after(call: Call) -> float | None:
    """Running seconds before preemption when a ``preemption`` fault was drawn."""
    fault = call.fault
    return float(fault.params["after"]) if fault and fault.kind == "preemption" else None


def create_job(state: ServerState, call: Call) -> dict[str, Any]:
    project = state.store.project(call.path["training_project_id"])
    job = state.store.create_job(
        project, call.body["training_job"], call.now, preempt_after=_preempt_after(call)
    )
    state.stats.jobs_created += 1
    return {"training_job": render_job(state.store, job, call.now)}


def get_job(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    project = state.store.projects[job.project_id]
    return {
        "training_project": render_project(state.store, project, call.now),
        "training_job": render_job(state.store, job, call.now),
    }


def delete_job(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    if state.store.delete_job(job, call.now):
        state.stats.jobs_stopped += 1
    return {"id": job.id, "deleted": True, "training_project_id": job.project_id}


def update_job(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    state.store.update_job(
        job,
        call.now,
        priority=call.body.get("priority"),
        availability_model=call.body.get("availability_model"),
    )
    return {"training_job": render_job(state.store, job, call.now)}


def download_job(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    base = f"https://fake-s3.baseten.invalid/artifacts/{job.id}"
    runtime = job.spec.get("runtime") or {}
    artifacts = runtime.get("artifacts") or []
    urls = [f"{base}/{a['s3_key']}?X-Amz-Signature=fake" for a in artifacts]
    return {"artifact_presigned_urls": urls or [f"{base}/training_job.tgz?X-Amz-Signature=f"]}


def recreate_job(state: ServerState, call: Call) -> dict[str, Any]:
    source = job_of(state, call)
    project = state.store.projects[source.project_id]
    job = state.store.create_job(
        project,
        copy.deepcopy(source.spec),
        call.now,
        recreated_from=source.id,
        preempt_after=_preempt_after(call),
    )
    state.stats.jobs_created += 1
    state.stats.jobs_recreated += 1
    return {"training_job": render_job(state.store, job, call.now)}


def stop_job(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    if state.store.stop_job(job, call.now):
        state.stats.jobs_stopped += 1
    return {"training_job": render_job(state.store, job, call.now)}


def search_jobs(state: ServerState, call: Call) -> dict[str, Any]:
    body = call.body
    order_by = body.get("order_by") or []
    descending = True
    for index, order in enumerate(order_by):
        if order["field"] != "created_at":
            raise ApiError(400, f"order_by[{index}].field: only 'created_at' is supported")
        if order["order"] not in ("asc", "desc"):
            raise ApiError(400, f"order_by[{index}].order: must be 'asc' or 'desc'")
        descending = order["order"] == "desc"
    project_id = body.get("project_id")
    job_id = body.get("job_id")
    statuses = body.get("statuses")
    wanted = set(statuses) if statuses is not None else None
    selected = []
    for job in state.store.jobs.values():
        if project_id is not None and job.project_id != project_id:
            continue
        if job_id is not None and job.id != job_id:
            continue
        if wanted is not None and job.status_at(call.now) not in wanted:
            continue
        selected.append(job)
    selected.sort(key=lambda job: (job.created_at, job.seq), reverse=descending)
    return {"training_jobs": [render_job(state.store, job, call.now) for job in selected]}


HANDLERS: dict[str, Handler] = {
    Route.LIST_JOBS: list_jobs,
    Route.CREATE_JOB: create_job,
    Route.GET_JOB: get_job,
    Route.DELETE_JOB: delete_job,
    Route.UPDATE_JOB: update_job,
    Route.DOWNLOAD_JOB: download_job,
    Route.RECREATE_JOB: recreate_job,
    Route.STOP_JOB: stop_job,
    Route.SEARCH_JOBS: search_jobs,
}
