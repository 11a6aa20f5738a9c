"""Rules the fake applies beyond the schema, as the real API does: ranges and bounds."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_EPOCH_MILLIS",
    "MAX_NODES",
    "MAX_TIMEOUT_MINUTES",
    "TEN_YEARS_MINUTES",
    "ApiError",
    "check_epoch_millis",
    "check_job_spec",
    "memory_mib",
    "session_minutes",
]

MAX_NODES = 1024
"""Largest ``compute.node_count`` the fake accepts."""
MAX_TIMEOUT_MINUTES = 2**31 - 1
"""Largest session ``timeout_minutes`` (a 32-bit integer column, like the real API's)."""
TEN_YEARS_MINUTES = 10 * 365 * 24 * 60
MAX_EPOCH_MILLIS = 253_402_300_799_999
"""Last millisecond of the year 9999: the largest window bound the API accepts."""
_MAX_CPUS = 100_000
_MAX_GPUS = 1024
_MAX_MEMORY_MIB = float(2**50)
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {
    "": 1 / (1024 * 1024),
    "k": 1000 / (1024 * 1024),
    "ki": 1 / 1024,
    "m": 1_000_000 / (1024 * 1024),
    "mi": 1,
    "g": 1_000_000_000 / (1024 * 1024),
    "gi": 1024,
    "t": 1_000_000_000_000 / (1024 * 1024),
    "ti": 1024 * 1024,
}


class ApiError(Exception):
    """An error response the fake sends (``{"message": ...}``).

    Args:
        status: HTTP status code.
        message: Human-readable message.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def memory_mib(memory: object) -> int:
    if isinstance(memory, str):
        match = _MEMORY_RE.match(memory)
        if match:
            factor = _MEMORY_UNITS.get((match.group(2) or "").lower())
            if factor is not None:
                mib = float(match.group(1)) * factor
                if not math.isfinite(mib) or mib > _MAX_MEMORY_MIB:
                    raise ApiError(400, f"training_job.compute.memory: too large ({memory!r})")
                return max(1, int(mib))
    return 2048


def check_job_spec(spec: Mapping[str, Any]) -> None:
    """Refuse job specs the real API refuses beyond the schema (before anything is made).

    Args:
        spec: The validated ``training_job`` object.

    Raises:
        ApiError: 400 naming the field.
    """
    compute = spec.get("compute")
    if isinstance(compute, Mapping):
        nodes = compute.get("node_count", 1)
        if isinstance(nodes, int) and not 1 <= nodes <= MAX_NODES:
            raise ApiError(
                400, f"training_job.compute.node_count: must be 1..{MAX_NODES}, got {nodes}"
            )
        cpus = compute.get("cpu_count", 1)
        if isinstance(cpus, int) and not 0 <= cpus <= _MAX_CPUS:
            raise ApiError(
                400, f"training_job.compute.cpu_count: must be 0..{_MAX_CPUS}, got {cpus}"
            )
        accelerator = compute.get("accelerator")
        if isinstance(accelerator, Mapping):
            count = accelerator.get("count")
            if isinstance(count, int) and not 0 <= count <= _MAX_GPUS:
                raise ApiError(
                    400,
                    f"training_job.compute.accelerator.count: must be 0..{_MAX_GPUS}, got {count}",
                )
        memory_mib(compute.get("memory"))
    session = spec.get("interactive_session")
    if isinstance(session, Mapping):
        minutes = session.get("timeout_minutes")
        if isinstance(minutes, int) and not -1 <= minutes <= MAX_TIMEOUT_MINUTES:
            raise ApiError(
                400,
                "training_job.interactive_session.timeout_minutes: must be -1 (no timeout) "
                f"or 0..{MAX_TIMEOUT_MINUTES}, got {minutes}",
            )


def check_epoch_millis(params: Mapping[str, Any]) -> None:
    """Refuse window bounds outside the years 1970..9999.

    Args:
        params: Query or body parameters with optional ``start_epoch_millis`` and
            ``end_epoch_millis``.

    Raises:
        ApiError: 400 naming the parameter.
    """
    for name in ("start_epoch_millis", "end_epoch_millis"):
        value = params.get(name)
        if isinstance(value, int) and not 0 <= value <= MAX_EPOCH_MILLIS:
            raise ApiError(400, f"{name}: must be between 0 and {MAX_EPOCH_MILLIS}, got {value}")


def session_minutes(minutes: int) -> int:
    """Minutes a session timeout stands for (``-1``, no timeout, is ten years)."""
    return TEN_YEARS_MINUTES if minutes == -1 else minutes
