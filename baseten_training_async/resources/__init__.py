"""Resource groups of `baseten_training_async.AsyncTrainingClient`."""

from .jobs import JobsResource
from .projects import ProjectsResource

__all__ = ["JobsResource", "ProjectsResource"]
