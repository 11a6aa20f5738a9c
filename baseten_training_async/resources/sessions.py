"""``client.jobs.sessions``: interactive sessions attached to training jobs."""

from __future__ import annotations

from .. import _wire as wire
from .._errors import InvalidInputError
from ..models import AuthCode, InteractiveSessionUpdate, SessionTriggerValue, SSHCertificate
from ._base import Resource, non_empty

__all__ = ["SessionsResource"]


class SessionsResource(Resource):
    """Sign in to, extend and connect to a job's interactive sessions."""

    __slots__ = ()

    async def auth_codes(self, project_id: str, job_id: str) -> list[AuthCode]:
        """The sign-in codes of the job's sessions, one per replica. Idempotent."""
        path = wire.AUTH_CODES.path(project_id, job_id)
        return (await self._core.request(wire.AUTH_CODES, path)).value.auth_codes

    async def update(
        self,
        project_id: str,
        job_id: str,
        session_id: str,
        *,
        timeout_minutes: int | None = None,
        trigger: SessionTriggerValue | None = None,
    ) -> InteractiveSessionUpdate:
        """Extend a session or change when it is created.

        Not retried after the request may have arrived: ``timeout_minutes``
        is *added* to the session's timeout, so a resend would add it twice.

        Args:
            project_id: The job's project.
            job_id: The job.
            session_id: The session, from `AuthCode.session_id`.
            timeout_minutes: Minutes to add; ``-1`` makes it never time out.
            trigger: When to create it, e.g. `SessionTrigger.ON_FAILURE`; not
                changeable for a session created on startup.
        """
        path = wire.UPDATE_SESSION.path(project_id, job_id, session_id)
        body = _session_update(timeout_minutes, trigger)
        return (await self._core.request(wire.UPDATE_SESSION, path, body=body)).value

    async def sign_ssh_key(
        self, project_id: str, job_id: str, *, public_key: str, replica_id: str | None = None
    ) -> SSHCertificate:
        """Sign an SSH public key for a session's SSH connection.

        Idempotent: each call signs a new certificate and changes nothing else.

        Args:
            project_id: The job's project.
            job_id: The job.
            public_key: The key, e.g. ``"ssh-ed25519 AAAA... user@host"``.
            replica_id: The replica to connect to, e.g. ``"0"``.
        """
        body = wire.SignSSHRequest(public_key=non_empty("public_key", public_key))
        if replica_id is not None:
            body.replica_id = non_empty("replica_id", replica_id)
        path = wire.SIGN_SSH_KEY.path(project_id, job_id)
        return (await self._core.request(wire.SIGN_SSH_KEY, path, body=body)).value


def _session_update(timeout_minutes: int | None, trigger: str | None) -> wire.PatchSessionRequest:
    if timeout_minutes is None and trigger is None:
        raise InvalidInputError("timeout_minutes", "give timeout_minutes, trigger or both")
    body = wire.PatchSessionRequest()
    if timeout_minutes is not None:
        if not isinstance(timeout_minutes, int) or isinstance(timeout_minutes, bool):
            raise InvalidInputError("timeout_minutes", "must be an integer")
        if timeout_minutes < -1:
            raise InvalidInputError("timeout_minutes", "must be -1 (no timeout) or more")
        body.timeout_minutes = timeout_minutes
    if trigger is not None:
        body.trigger = non_empty("trigger", trigger)
    return body
