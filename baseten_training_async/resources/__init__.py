"""Resource groups of :class:`~baseten_training_async.AsyncTrainingClient`."""

from .jobs import JobsResource
from .projects import ProjectsResource

__all__ = ["JobsResource", "ProjectsResource"]
