"""Resource groups of `baseten_training_async.AsyncTrainingClient`."""

from .artifacts import ArtifactsResource
from .capacity import CapacityResource
from .jobs import JobsResource
from .projects import ProjectsResource
from .sessions import SessionsResource
from .teams import TeamsResource

__all__ = [
    "ArtifactsResource",
    "CapacityResource",
    "JobsResource",
    "ProjectsResource",
    "SessionsResource",
    "TeamsResource",
]
