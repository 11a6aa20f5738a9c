"""``client.projects``: training projects."""

from __future__ import annotations

from .. import _wire as wire
from .._errors import InvalidInputError
from .._pagination import AsyncPager, single_page
from ..models import CacheSummary, ProjectTombstone, TrainingProject
from ._base import Resource

__all__ = ["ProjectsResource"]


class ProjectsResource(Resource):
    """Create, list, look up and delete training projects."""

    __slots__ = ()

    async def upsert(self, name: str, *, team_id: str | None = None) -> TrainingProject:
        """Create a project, or return the existing one with this name.

        Idempotent by name, so it is retried on any transient failure.

        Args:
            name: The project's name.
            team_id: Create it in this team rather than the default one.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("name", "must be a non-empty string")
        body = wire.UpsertProjectRequest(training_project=wire.ProjectName(name=name))
        if team_id is None:
            route, path = wire.UPSERT_PROJECT, wire.UPSERT_PROJECT.path()
        else:
            route, path = wire.UPSERT_TEAM_PROJECT, wire.UPSERT_TEAM_PROJECT.path(team_id)
        response = await self._core.request(route, path, body=body)
        return response.value.training_project

    def list(self) -> AsyncPager[TrainingProject]:
        """All projects: ``await`` it for a list, or ``async for`` over it. Idempotent."""

        async def fetch() -> list[TrainingProject]:
            route = wire.LIST_PROJECTS
            return (await self._core.request(route, route.path())).value.training_projects

        return AsyncPager(single_page(fetch))

    async def retrieve(self, project_id: str) -> TrainingProject:
        """Look up one project by id. Idempotent.

        Raises:
            NotFoundError: No project has this id.
        """
        path = wire.GET_PROJECT.path(project_id)
        return (await self._core.request(wire.GET_PROJECT, path)).value.training_project

    async def delete(self, project_id: str) -> ProjectTombstone:
        """Delete a project. Not retried after the request may have arrived."""
        path = wire.DELETE_PROJECT.path(project_id)
        return (await self._core.request(wire.DELETE_PROJECT, path)).value

    async def cache_summary(self, project_id: str) -> CacheSummary:
        """The files in a project's shared cache. Idempotent."""
        path = wire.CACHE_SUMMARY.path(project_id)
        return (await self._core.request(wire.CACHE_SUMMARY, path)).value
