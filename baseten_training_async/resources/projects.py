"""``client.projects``: training projects."""

from __future__ import annotations

from .._errors import InvalidInputError
from .._pagination import AsyncPager, single_page
from .._wire import ProjectEnvelope, ProjectName, ProjectsEnvelope, UpsertProjectRequest
from ..models import CacheSummary, ProjectTombstone, TrainingProject
from ._base import Resource, segment

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
        path = "/v1/training_projects"
        if team_id is not None:
            path = f"/v1/teams/{segment('team_id', team_id)}/training_projects"
        body = UpsertProjectRequest(training_project=ProjectName(name=name))
        envelope = await self._core.request(
            "POST", path, ProjectEnvelope, body=body, idempotent=True
        )
        return envelope.training_project

    def list(self) -> AsyncPager[TrainingProject]:
        """All projects: ``await`` it for a list, or ``async for`` over it."""

        async def fetch() -> list[TrainingProject]:
            envelope = await self._core.request(
                "GET", "/v1/training_projects", ProjectsEnvelope, idempotent=True
            )
            return envelope.training_projects

        return AsyncPager(single_page(fetch))

    async def retrieve(self, project_id: str) -> TrainingProject:
        """Look up one project by id.

        Raises:
            NotFoundError: No project has this id.
        """
        path = f"/v1/training_projects/{segment('project_id', project_id)}"
        envelope = await self._core.request("GET", path, ProjectEnvelope, idempotent=True)
        return envelope.training_project

    async def delete(self, project_id: str) -> ProjectTombstone:
        """Delete a project."""
        path = f"/v1/training_projects/{segment('project_id', project_id)}"
        return await self._core.request("DELETE", path, ProjectTombstone, idempotent=False)

    async def cache_summary(self, project_id: str) -> CacheSummary:
        """The files in a project's shared cache."""
        path = f"/v1/training_projects/{segment('project_id', project_id)}/cache/summary"
        return await self._core.request("GET", path, CacheSummary, idempotent=True)
