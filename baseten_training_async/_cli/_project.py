"""Projects by name or id: resolved once per command, with a clear error otherwise."""

from __future__ import annotations

from .. import AsyncTrainingClient, TrainingProject
from ._exit import NotFoundUsageError, UsageError
from ._output import one_line

__all__ = ["resolve_project"]


async def resolve_project(client: AsyncTrainingClient, text: str) -> TrainingProject:
    """The project whose id, or else whose name, is ``text`` (one listing request).

    Args:
        client: The client.
        text: A project id or name, as typed.

    Returns:
        The project.

    Raises:
        UsageError: Several projects have this name.
        NotFoundUsageError: No project has this id or name.
    """
    wanted = text.strip()
    if not wanted:
        raise UsageError("PROJECT: must be a project name or id")
    projects = await client.projects.list()
    by_id = [p for p in projects if p.id == wanted]
    if by_id:
        return by_id[0]
    by_name = [p for p in projects if p.name == wanted]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        ids = ", ".join(one_line(p.id) for p in by_name)
        raise UsageError(
            f"project name {one_line(wanted)!r} is ambiguous: {len(by_name)} projects "
            f"have it ({ids}); pass the id instead"
        )
    raise NotFoundUsageError(
        f"no project with id or name {one_line(wanted)!r} (see: baseten-training projects list)"
    )
