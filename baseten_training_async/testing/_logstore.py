"""Job logs: explicit lines, lines generated on the fake clock, and log-window queries."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from operator import attrgetter

from ._models import (
    COMPLETED,
    DEPLOY_FAILED,
    FAILED,
    LOG_LEVELS,
    PREEMPTED,
    STOPPED,
    LogLine,
    StoredJob,
)
from ._render import checkpoint_file, checkpoint_record
from ._rules import ApiError

__all__ = ["add_logs", "materialize_logs", "ns", "query_logs"]

_LOG_TS = attrgetter("timestamp_ns")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
_MAX_GENERATED_STEPS = 100_000
_SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
_THIRTY_MINUTES_MS = 30 * 60 * 1000


def ns(epoch_seconds: float) -> int:
    """Epoch seconds as integer epoch nanoseconds."""
    return round(epoch_seconds * 1e9)


def add_logs(job: StoredJob, lines: Iterable[LogLine], *, replace: bool) -> None:
    """Add explicit log lines to a job (keeps the list sorted, stable).

    Args:
        job: The job.
        lines: Lines to add.
        replace: Drop the existing lines first.
    """
    if replace:
        job.logs.clear()
    job.logs.extend(lines)
    job.logs.sort(key=_LOG_TS)


def materialize_logs(job: StoredJob, now: float) -> None:
    """Generate the job's automatic log lines up to ``now``.

    Generated lines: an image-pull line when DEPLOYING starts, a start line when
    RUNNING starts, per ``log_every`` seconds of RUNNING a ``step N`` INFO line
    plus a DEBUG line in the same millisecond (and, every 5th step, a line without
    a level), and a final line when the job ends (ERROR for failures).

    Args:
        job: The job.
        now: Current fake time.
    """
    every = job.log_every
    if every is None or every <= 0 or job.released_at is None:
        return
    end = job.end_at
    if end is None:
        return
    timings = job.timings
    horizon = min(now, end)
    new: list[LogLine] = []
    deploy_at = job.released_at + timings.created
    if not job._log_deploy_done and deploy_at <= horizon and deploy_at < end:
        image = job.spec.get("image")
        base = image.get("base_image") if isinstance(image, Mapping) else None
        new.append(LogLine(ns(deploy_at), f"Pulling image {base}", "INFO", None))
        job._log_deploy_done = True
    run_at = deploy_at + timings.deploying
    if job.outcome != DEPLOY_FAILED and run_at < end:
        base_ns = ns(run_at)
        if not job._log_start_done and run_at <= horizon:
            runtime = job.spec.get("runtime")
            commands = runtime.get("start_commands", []) if isinstance(runtime, Mapping) else []
            text = " && ".join(str(c) for c in commands) or "<image entrypoint>"
            new.append(LogLine(base_ns, f"Starting training: {text}", "INFO", "0"))
            job._log_start_done = True
        every_ns = max(1, round(every * 1e9))
        step = job._log_next_step
        while step <= _MAX_GENERATED_STEPS:
            at = run_at + step * every
            if at > horizon or at >= end:
                break
            ts = base_ns + step * every_ns
            loss = 2.5 * math.exp(-0.05 * step) + 0.1
            new.append(LogLine(ts, f"step {step}: loss={loss:.4f}", "INFO", "0"))
            new.append(LogLine(ts + 1500, f"step {step}: grad_norm={loss / 3:.4f}", "DEBUG", "0"))
            if step % 5 == 0:
                new.append(LogLine(ts + 250_000, f"saved checkpoint-{step}", None, "0"))
                if not job.checkpoints_seeded:
                    _save_checkpoint(job, step, (ts + 250_000) / 1e9)
            step += 1
        job._log_next_step = step
    if not job._log_final_done and end <= now:
        status = job.status_at(now)
        new.append(_final_line(status, ns(end)))
        job._log_final_done = True
    if new:
        job.logs.extend(new)
        job.logs.sort(key=_LOG_TS)


def query_logs(
    job: StoredJob,
    now: float,
    *,
    start_ms: int | None,
    end_ms: int | None,
    limit: int | None,
    direction: str | None,
    min_level: str | None,
) -> list[LogLine]:
    """Select a page of logs with the real API's rules.

    A line is in the window when ``start_ms <= timestamp_ns // 1_000_000 <=
    end_ms`` (both ends inclusive). ``end_ms`` defaults to now, ``start_ms`` to 30
    minutes before the end; windows over 7 days are refused; ``limit`` defaults to
    500 and must be within 1..1000; ``direction`` defaults to ``asc``;
    ``min_level`` drops lower levels and lines without a level. The first
    ``limit`` lines in ``direction`` order are returned.

    Args:
        job: The job.
        now: Current fake time.
        start_ms: Window start (epoch milliseconds).
        end_ms: Window end (epoch milliseconds).
        limit: Maximum lines.
        direction: ``asc`` or ``desc``.
        min_level: Minimum level.

    Returns:
        The selected lines in order.

    Raises:
        ApiError: 400 for an invalid window or limit.
    """
    if end_ms is None:
        end_ms = int(now * 1000)
    if start_ms is None:
        start_ms = end_ms - _THIRTY_MINUTES_MS
    if start_ms > end_ms:
        raise ApiError(400, "start_epoch_millis must not be after end_epoch_millis")
    if end_ms - start_ms > _SEVEN_DAYS_MS:
        raise ApiError(400, "The window from start_epoch_millis to end_epoch_millis exceeds 7 days")
    if limit is None:
        limit = 500
    if not 1 <= limit <= 1000:
        raise ApiError(400, f"limit: must be between 1 and 1000, got {limit}")
    materialize_logs(job, now)
    logs = job.logs
    lo = bisect.bisect_left(logs, start_ms * 1_000_000, key=_LOG_TS)
    hi = bisect.bisect_left(logs, (end_ms + 1) * 1_000_000, key=_LOG_TS)
    descending = direction == "desc"
    if min_level is None:
        if descending:
            return logs[max(lo, hi - limit) : hi][::-1]
        return logs[lo : min(hi, lo + limit)]
    threshold = _LEVEL_RANK[min_level]
    indices: Iterable[int] = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
    selected: list[LogLine] = []
    for index in indices:
        line = logs[index]
        if line.level is not None and _LEVEL_RANK[line.level] >= threshold:
            selected.append(line)
            if len(selected) >= limit:
                break
    return selected


def _save_checkpoint(job: StoredJob, step: int, at: float) -> None:
    """Record what a ``saved checkpoint-N`` line says: the checkpoint and one file per node."""
    name = f"checkpoint-{step}"
    job.checkpoints.append(
        checkpoint_record(job, len(job.checkpoints), {"checkpoint_id": name}, at)
    )
    for node in range(job.node_count):
        seed = {"relative_file_name": f"rank-{node}/{name}/model.safetensors", "node_rank": node}
        job.checkpoint_files.append(checkpoint_file(job, len(job.checkpoint_files), seed, at))


def _final_line(status: str, ts: int) -> LogLine:
    if status == COMPLETED:
        return LogLine(ts, "Training completed successfully", "INFO", "0")
    if status == FAILED:
        return LogLine(ts, "RuntimeError: fake training failure (exit code 1)", "ERROR", "0")
    if status == DEPLOY_FAILED:
        return LogLine(ts, "Failed to deploy: fake image pull error", "ERROR", None)
    if status == PREEMPTED:
        return LogLine(ts, "Node preempted: spot capacity reclaimed", "WARNING", None)
    if status == STOPPED:
        return LogLine(ts, "Received stop request; shutting down", "WARNING", "0")
    return LogLine(ts, f"Job reached {status}", "INFO", None)
