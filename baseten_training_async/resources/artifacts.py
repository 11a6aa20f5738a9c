"""``client.artifacts``: where to upload the files a job's runtime downloads."""

from __future__ import annotations

from .. import _wire as wire
from ..models import BlobCredentials
from ._base import Resource

__all__ = ["ArtifactsResource"]


class ArtifactsResource(Resource):
    """Upload locations for training artifacts (`S3Artifact`)."""

    __slots__ = ()

    async def upload_credentials(self) -> BlobCredentials:
        """A fresh S3 location and short-lived credentials to upload one artifact to.

        Idempotent. Upload the file to ``s3_bucket``/``s3_key`` with ``creds``,
        then reference it as ``S3Artifact(s3_bucket=..., s3_key=...)`` in the
        job's `Runtime`.
        """
        route = wire.UPLOAD_CREDENTIALS
        return (await self._core.request(route, route.path())).value
