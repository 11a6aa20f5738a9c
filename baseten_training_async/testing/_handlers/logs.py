"""Logs and metrics, by query string (GET) or body (the deprecated POST forms)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .._context import Call, Handler, ServerState, job_of
from .._logstore import query_logs
from .._models import DEPLOY_FAILED
from .._render import iso, render_job
from .._routes import Route
from .._rules import ApiError, check_epoch_millis

__all__ = ["HANDLERS"]

_MIB = 1024 * 1024
_MAX_STEP_SECONDS = 10 * 365 * 24 * 3600


def _logs(state: ServerState, call: Call, params: Mapping[str, Any]) -> dict[str, Any]:
    job = job_of(state, call)
    check_epoch_millis(params)
    lines = query_logs(
        job,
        call.now,
        start_ms=params.get("start_epoch_millis"),
        end_ms=params.get("end_epoch_millis"),
        limit=params.get("limit"),
        direction=params.get("direction"),
        min_level=params.get("min_level"),
    )
    return {"logs": [line.to_json() for line in lines]}


def get_logs_query(state: ServerState, call: Call) -> dict[str, Any]:
    return _logs(state, call, call.query)


def get_logs_body(state: ServerState, call: Call) -> dict[str, Any]:
    return _logs(state, call, call.body)


def get_metrics_query(state: ServerState, call: Call) -> dict[str, Any]:
    return _metrics(state, call, call.query)


def get_metrics_body(state: ServerState, call: Call) -> dict[str, Any]:
    return _metrics(state, call, call.body)


def _metrics(state: ServerState, call: Call, params: Mapping[str, Any]) -> dict[str, Any]:
    job = job_of(state, call)
    check_epoch_millis(params)
    end_ms = params.get("end_epoch_millis")
    end_ms = int(call.now * 1000) if end_ms is None else end_ms
    start_ms = params.get("start_epoch_millis")
    start_ms = end_ms - 30 * 60 * 1000 if start_ms is None else start_ms
    if start_ms > end_ms:
        raise ApiError(400, "start_epoch_millis must not be after end_epoch_millis")
    step = params.get("step_seconds")
    if step is None:
        step = max(1, (end_ms - start_ms) // 1000 // 60)
    if not 0 < step <= _MAX_STEP_SECONDS:
        raise ApiError(400, f"step_seconds: must be between 1 and {_MAX_STEP_SECONDS}, got {step}")
    times: list[float] = []
    if job.released_at is not None and job.outcome != DEPLOY_FAILED:
        timings = job.timings
        run_start = job.released_at + timings.created + timings.deploying
        run_end = min(call.now, job.end_at or call.now)
        lo = max(start_ms / 1000, run_start)
        hi = min(end_ms / 1000, run_end)
        if lo <= hi:
            count = min(1000, int((hi - lo) // step) + 1)
            times = [lo + k * step for k in range(count)]
    itype = job.instance_type
    gpu_count = int(itype["gpu_count"])
    gpu_mem = (itype["gpu_memory_limit_mib"] or 16_384) * _MIB
    cpu_mem = int(itype["memory_limit_mib"]) * _MIB
    cores = int(itype["millicpu_limit"]) / 1000

    stamps = [iso(t) for t in times]
    steps = range(len(times))

    def series(values: Iterable[float]) -> list[dict[str, Any]]:
        return [{"value": v, "timestamp": ts} for v, ts in zip(values, stamps, strict=False)]

    storage = {
        "usage_bytes": series(float(5_000_000_000 + 10_000_000 * k) for k in steps),
        "utilization": series(0.05 + 0.0001 * k for k in steps),
    }

    def node_metrics(node: int) -> dict[str, Any]:
        return {
            "gpu_memory_usage_bytes": {
                str(i): series(gpu_mem * (0.6 + 0.02 * ((k + i) % 5)) for k in steps)
                for i in range(gpu_count)
            },
            "gpu_utilization": {
                str(i): series(0.8 + 0.15 * math.sin((k + i + node) / 3) for k in steps)
                for i in range(gpu_count)
            },
            "cpu_usage": series(cores * (0.5 + 0.1 * math.cos(k / 4)) for k in steps),
            "cpu_memory_usage_bytes": series(cpu_mem * (0.4 + 0.01 * (k % 10)) for k in steps),
            "ephemeral_storage": storage,
        }

    runtime = job.spec.get("runtime") or {}
    cache_config = runtime.get("cache_config") or {}
    cache_on = bool(cache_config.get("enabled") or runtime.get("enable_cache"))
    leader = node_metrics(0)
    return {
        **leader,
        "training_job": render_job(state.store, job, call.now),
        "cache": storage if cache_on else None,
        "per_node_metrics": [
            {"node_id": f"{job.id}-node-{n}", "metrics": node_metrics(n)}
            for n in range(job.node_count)
        ],
    }


HANDLERS: dict[str, Handler] = {
    Route.GET_LOGS: get_logs_query,
    Route.POST_LOGS: get_logs_body,
    Route.GET_METRICS: get_metrics_query,
    Route.POST_METRICS: get_metrics_body,
}
