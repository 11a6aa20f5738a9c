"""``client.teams``: the organisation's teams."""

from __future__ import annotations

from .. import _wire as wire
from .._pagination import AsyncPager, single_page
from ..models import Team
from ._base import Resource

__all__ = ["TeamsResource"]


class TeamsResource(Resource):
    """The teams a project can be created in (``projects.upsert(team_id=...)``)."""

    __slots__ = ()

    def list(self) -> AsyncPager[Team]:
        """All teams: ``await`` it for a list, or ``async for`` over it. Idempotent."""

        async def fetch() -> list[Team]:
            route = wire.LIST_TEAMS
            return (await self._core.request(route, route.path())).value.teams

        return AsyncPager(single_page(fetch))
