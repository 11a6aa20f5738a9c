"""Teams, interactive sessions, GPU capacity, queue context and upload credentials."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._context import Call, Handler, ServerState, job_of
from .._models import ACTIVE_STATUSES, PENDING, Team
from .._render import iso
from .._routes import Route
from .._rules import MAX_TIMEOUT_MINUTES, ApiError, session_minutes

__all__ = ["HANDLERS"]

_LAST_EPOCH_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
_DEFAULT_GPU_BASELINE = 8
_DEFAULT_GPU_LIMIT = 64
_MAX_TEAM_GPUS = 1_000_000


def list_teams(state: ServerState, call: Call) -> dict[str, Any]:
    name = call.query.get("name")
    teams = [
        {"id": t.id, "name": t.name, "default": t.default, "created_at": iso(t.created_at)}
        for t in state.store.teams.values()
        if name is None or t.name == name
    ]
    return {"teams": teams}


def auth_codes(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    codes = []
    for index, session in enumerate(job.sessions.values()):
        codes.append(
            {
                "session_id": session["id"],
                "replica_id": f"g00r{index}",
                "auth_code": session["auth_code"],
                "auth_url": session["auth_url"],
                "generated_at": session["auth_code_generated_at"],
                "tunnel_name": session["tunnel_name"],
                "expires_at": session["expires_at"],
                "working_directory": session["working_directory"],
            }
        )
    return {"auth_codes": codes}


def patch_session(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    session_id = call.path["session_id"]
    session = job.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"Interactive session {session_id!r} not found")
    changes: list[str] = []
    trigger = call.body.get("trigger")
    minutes = call.body.get("timeout_minutes")
    changes_trigger = trigger is not None and trigger != session["trigger"]
    if changes_trigger and session["trigger"] == "on_startup":
        raise ApiError(400, "trigger: cannot be changed for an 'on_startup' session")
    if minutes is not None:
        if minutes == 0 or not -1 <= minutes <= MAX_TIMEOUT_MINUTES:
            raise ApiError(
                400,
                "timeout_minutes: must be -1 (no timeout) or 1.."
                f"{MAX_TIMEOUT_MINUTES}, got {minutes}",
            )
        added = session_minutes(minutes)
        if session["trigger"] == "on_startup":
            expires = datetime.fromisoformat(session["expires_at"]).timestamp() + 60 * added
            if expires > _LAST_EPOCH_SECOND:
                raise ApiError(400, "timeout_minutes: the session would expire after 9999")
        elif session["timeout_minutes"] + added > MAX_TIMEOUT_MINUTES:
            raise ApiError(
                400, f"timeout_minutes: the total would exceed {MAX_TIMEOUT_MINUTES} minutes"
            )
    if changes_trigger:
        session["trigger"] = trigger
        changes.append(f"trigger={trigger}")
    if minutes is not None:
        if session["trigger"] == "on_startup":
            session["expires_at"] = iso(expires)
            changes.append(f"expires_at+={added}m")
        else:
            session["timeout_minutes"] += added
            changes.append(f"timeout_minutes+={added}")
    message = "Updated " + ", ".join(changes) if changes else "No changes"
    return {"interactive_session": dict(session), "message": message}


def ssh_sign(state: ServerState, call: Call) -> dict[str, Any]:
    job = job_of(state, call)
    public_key = call.body["public_key"]
    if not public_key.strip():
        raise ApiError(400, "Invalid request body: public_key: must not be empty")
    return {
        "ssh_certificate": f"ssh-ed25519-cert-v01@openssh.com AAAAfake{job.id} fake-cert",
        "jwt": f"eyJhbGciOiJFUzI1NiJ9.eyJqb2IiOiJ{job.id}In0.fake-signature",
        "proxy_address": "ssh.fake.baseten.invalid:2222",
        "ssh_cert_expires_at": iso(call.now + 3600),
    }


def _gpu_usage(state: ServerState, now: float) -> dict[str, tuple[int, int]]:
    """GPUs in use by released active jobs, by GPU type: (dedicated, spot)."""
    usage: dict[str, tuple[int, int]] = {"H100": (0, 0)}
    for job in state.store.jobs.values():
        if job.gpu_type is not None:
            usage.setdefault(job.gpu_type, (0, 0))
    for job in state.store.active_jobs():
        if job.gpu_type is not None and job.status_at(now) != PENDING:
            dedicated, spot = usage[job.gpu_type]
            if job.availability_model == "spot":
                spot += job.total_gpus
            else:
                dedicated += job.total_gpus
            usage[job.gpu_type] = (dedicated, spot)
    return usage


def _team_capacity(
    state: ServerState, team: Team, gpu: str, usage: Mapping[str, tuple[int, int]]
) -> dict[str, Any]:
    dedicated, spot = usage.get(gpu, (0, 0))
    limit = state.store.team_gpu_limits.get((team.id, gpu), _DEFAULT_GPU_LIMIT)
    return {
        "team_id": team.id,
        "team_name": team.name,
        "gpu_type": gpu,
        "baseline": min(_DEFAULT_GPU_BASELINE, limit),
        "limit": limit,
        "usage_count": dedicated + spot,
        "dedicated_usage_count": dedicated,
        "spot_usage_count": spot,
    }


def gpu_capacity(state: ServerState, call: Call) -> dict[str, Any]:
    usage = _gpu_usage(state, call.now)
    default_team = next(iter(state.store.teams.values()), None)
    team_rows = []
    for team in state.store.teams.values():
        gpus = {gpu for team_id, gpu in state.store.team_gpu_limits if team_id == team.id}
        if team is default_team:
            gpus |= set(usage)
        team_rows += [_team_capacity(state, team, gpu, usage) for gpu in sorted(gpus)]
    return {
        "gpu_capacities": [
            {
                "gpu_type": gpu,
                "baseline": _DEFAULT_GPU_BASELINE,
                "limit": _DEFAULT_GPU_LIMIT,
                "usage_count": dedicated + spot,
                "dedicated_usage_count": dedicated,
                "spot_usage_count": spot,
            }
            for gpu, (dedicated, spot) in sorted(usage.items())
        ],
        "team_gpu_capacities": team_rows,
    }


def set_gpu_capacity(state: ServerState, call: Call) -> dict[str, Any]:
    body = call.body
    team = state.store.teams.get(body["team_id"])
    if team is None:
        raise ApiError(404, f"Team {body['team_id']!r} not found")
    gpu = body["gpu_type"]
    if not gpu.strip():
        raise ApiError(400, "gpu_type: must not be empty")
    max_gpus = body["max_gpus"]
    if not 0 <= max_gpus <= _MAX_TEAM_GPUS:
        raise ApiError(400, f"max_gpus: must be between 0 and {_MAX_TEAM_GPUS}, got {max_gpus}")
    state.store.team_gpu_limits[(team.id, gpu)] = max_gpus
    return {"team_gpu_capacity": _team_capacity(state, team, gpu, _gpu_usage(state, call.now))}


def queue_context(state: ServerState, call: Call) -> dict[str, Any]:
    job = state.store.any_job(call.path["training_job_id"])
    now = call.now
    submitted = job.created_at
    released = job.released_at if job.released_at is not None and job.released_at <= now else None
    window_end = released if released is not None else now
    gpu_type = job.gpu_type or "CPU"
    same_pool = [
        other
        for other in state.store.jobs.values()
        if other.id != job.id and (other.gpu_type or "CPU") == gpu_type and other.seq < job.seq
    ]
    active_at_submit = []
    pending_ahead = []
    for other in same_pool:
        status = other.status_at(submitted)
        if status not in ACTIVE_STATUSES:
            continue
        if status == PENDING:
            if (other.priority, -other.seq) > (job.priority, -job.seq):
                pending_ahead.append(
                    {
                        "training_job_id": other.id,
                        "training_job_name": other.name,
                        "instance_type_name": other.instance_type["name"],
                        "requested_gpus": other.total_gpus,
                        "priority": other.priority,
                        "submitted_at": iso(other.created_at),
                    }
                )
            continue
        active_at_submit.append(
            {
                "training_job_id": other.id,
                "training_job_name": other.name,
                "instance_type_name": other.instance_type["name"],
                "total_gpus": other.total_gpus,
                "workload_plane_name": "fake-workload-plane",
                "status_at_submit": status,
                "status_set_at": iso(other.updated_at(submitted)),
            }
        )
    involved = [job] + [
        state.store.jobs[item["training_job_id"]] for item in active_at_submit + pending_ahead
    ]
    events = []
    for member in involved:
        for moment, status in member.transitions(window_end):
            if submitted <= moment <= window_end:
                events.append((moment, member.seq, member, status))
    events.sort(key=lambda event: (event[0], event[1]))
    capacity = state.store.capacity
    return {
        "target_job_id": job.id,
        "target_job_name": job.name,
        "gpu_type": gpu_type,
        "requested_gpus": job.total_gpus,
        "submitted_at": iso(submitted),
        "released_at": iso(released) if released is not None else None,
        "pending_seconds": int(released - submitted) if released is not None else None,
        "org_capacity": {
            "gpu_type": gpu_type,
            "max_gpus": capacity * max(1, job.total_gpus),
            "min_gpus": None,
            "last_modified": iso(state.started_at),
        }
        if capacity is not None
        else None,
        "team_capacity": None,
        "active_at_submit": active_at_submit,
        "pending_ahead_at_submit": pending_ahead,
        "events": [
            {
                "training_job_id": member.id,
                "training_job_name": member.name,
                "status": status,
                "created": iso(moment),
                "event_message": None,
                "exit_code": 1 if status == "TRAINING_JOB_FAILED" else None,
            }
            for moment, _, member, status in events
        ],
        "events_window_end": iso(window_end),
    }


def blob_credentials(state: ServerState, call: Call) -> dict[str, Any]:
    state.blob_seq += 1
    return {
        "creds": {
            "aws_access_key_id": "FAKEACCESSKEYID",
            "aws_secret_access_key": "fake-secret-access-key",
            "aws_session_token": f"fake-session-token-{state.blob_seq}",
        },
        "s3_key": f"training/uploads/blob-{state.blob_seq:06d}.tgz",
        "s3_bucket": "fake-baseten-training",
    }


HANDLERS: dict[str, Handler] = {
    Route.LIST_TEAMS: list_teams,
    Route.AUTH_CODES: auth_codes,
    Route.PATCH_INTERACTIVE_SESSION: patch_session,
    Route.SSH_SIGN: ssh_sign,
    Route.CAPACITY: gpu_capacity,
    Route.SET_CAPACITY: set_gpu_capacity,
    Route.QUEUE_CONTEXT: queue_context,
    Route.BLOB_CREDENTIALS: blob_credentials,
}
