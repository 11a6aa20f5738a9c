"""Projects: upsert (plain and by team), list, get, delete, cache summary."""

from __future__ import annotations

from typing import Any

from .._context import Call, Handler, ServerState
from .._models import ACTIVE_STATUSES, Team
from .._render import iso, render_project
from .._routes import Route
from .._rules import ApiError

__all__ = ["HANDLERS"]


def _upsert(state: ServerState, call: Call, team: Team | None) -> dict[str, Any]:
    name = call.body["training_project"]["name"]
    if not name.strip():
        raise ApiError(400, "Invalid request body: training_project.name: must not be empty")
    project, created = state.store.upsert_project(name, call.now, team)
    state.stats.projects_created += int(created)
    return {"training_project": render_project(state.store, project, call.now)}


def upsert_project(state: ServerState, call: Call) -> dict[str, Any]:
    return _upsert(state, call, None)


def upsert_team_project(state: ServerState, call: Call) -> dict[str, Any]:
    team_id = call.path["team_id"]
    team = state.store.teams.get(team_id)
    if team is None:
        raise ApiError(404, f"Team {team_id!r} not found")
    return _upsert(state, call, team)


def list_projects(state: ServerState, call: Call) -> dict[str, Any]:
    store = state.store
    return {
        "training_projects": [
            render_project(store, project, call.now) for project in store.projects.values()
        ]
    }


def get_project(state: ServerState, call: Call) -> dict[str, Any]:
    project = state.store.project(call.path["training_project_id"])
    return {"training_project": render_project(state.store, project, call.now)}


def delete_project(state: ServerState, call: Call) -> dict[str, Any]:
    project = state.store.project(call.path["training_project_id"])
    stopped = sum(
        1
        for job_id in project.job_ids
        if job_id in state.store.jobs
        and state.store.jobs[job_id].status_at(call.now) in ACTIVE_STATUSES
    )
    state.store.delete_project(project, call.now)
    state.stats.jobs_stopped += stopped
    return {"id": project.id, "deleted": True}


def cache_summary(state: ServerState, call: Call) -> dict[str, Any]:
    project = state.store.project(call.path["training_project_id"])
    latest = state.store.latest_job(project)
    files: list[dict[str, Any]] = []
    if latest is not None:
        modified = iso(latest.created_at)
        files = [
            {
                "path": "huggingface/hub",
                "size_bytes": 4096,
                "modified": modified,
                "file_type": "directory",
                "permissions": "drwxr-xr-x",
            },
            {
                "path": "huggingface/hub/models--fake--model/model.safetensors",
                "size_bytes": 268_435_456,
                "modified": modified,
                "file_type": "file",
                "permissions": "-rw-r--r--",
            },
        ]
    return {"timestamp": iso(call.now), "project_id": project.id, "file_summaries": files}


HANDLERS: dict[str, Handler] = {
    Route.UPSERT_PROJECT: upsert_project,
    Route.UPSERT_TEAM_PROJECT: upsert_team_project,
    Route.LIST_PROJECTS: list_projects,
    Route.GET_PROJECT: get_project,
    Route.DELETE_PROJECT: delete_project,
    Route.CACHE_SUMMARY: cache_summary,
}
