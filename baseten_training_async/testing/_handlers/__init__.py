"""The endpoints of the fake, by domain; `HANDLERS` maps every `Route` to its handler."""

from __future__ import annotations

from .._context import Handler
from . import checkpoints, jobs, logs, projects, teams

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Handler] = {
    **projects.HANDLERS,
    **jobs.HANDLERS,
    **logs.HANDLERS,
    **checkpoints.HANDLERS,
    **teams.HANDLERS,
}
