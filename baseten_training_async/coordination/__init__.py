"""Coordination between clients: one rate limit and one launch per name across processes.

`InProcessCoordinator` is every client's default (nothing shared, nothing to
start). `RedisCoordinator` (the ``redis`` extra) shares the API key's rate
limit, its 429 cool-down and a lease per (project, job name) between every
client pointed at the same Redis with the same key. ``redis`` is imported
only when `RedisCoordinator` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import (
    CoordinationError,
    CoordinationWarning,
    Coordinator,
    InProcessCoordinator,
    LeaseInfo,
)

if TYPE_CHECKING:
    from ._redis import RedisCoordinator

__all__ = [
    "CoordinationError",
    "CoordinationWarning",
    "Coordinator",
    "InProcessCoordinator",
    "LeaseInfo",
    "RedisCoordinator",
]


def __getattr__(name: str) -> Any:
    if name == "RedisCoordinator":
        from ._redis import RedisCoordinator

        return RedisCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
