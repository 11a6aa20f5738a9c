"""``client.capacity``: training GPU capacity of the organisation and its teams."""

from __future__ import annotations

from .. import _wire as wire
from .._errors import InvalidInputError
from ..models import TeamGpuCapacity, TrainingCapacity
from ._base import Resource, non_empty

__all__ = ["CapacityResource"]


class CapacityResource(Resource):
    """Read and set how many GPUs training jobs may use."""

    __slots__ = ()

    async def retrieve(self) -> TrainingCapacity:
        """GPU limits and usage, per GPU type and per team. Idempotent."""
        return (await self._core.request(wire.CAPACITY, wire.CAPACITY.path())).value

    async def update(self, *, team_id: str, gpu_type: str, max_gpus: int) -> TeamGpuCapacity:
        """Set how many GPUs of one type a team's training jobs may use at once.

        Idempotent (it sets a limit, so a repeat leaves the same state):
        retried on any transient failure.

        Args:
            team_id: The team.
            gpu_type: The GPU type, e.g. ``"H100"``.
            max_gpus: The team's new limit for that type.
        """
        if not isinstance(max_gpus, int) or isinstance(max_gpus, bool) or max_gpus < 0:
            raise InvalidInputError("max_gpus", "must be an integer >= 0")
        body = wire.PatchCapacityRequest(
            team_id=non_empty("team_id", team_id),
            gpu_type=non_empty("gpu_type", gpu_type),
            max_gpus=max_gpus,
        )
        route = wire.UPDATE_CAPACITY
        return (await self._core.request(route, route.path(), body=body)).value.team_gpu_capacity
