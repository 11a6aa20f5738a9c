"""The one module that talks to aiohttp: send one request, map transport errors.

Everything above this layer sees `RawResponse` or an SDK exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BasetenError,
    ClientClosedError,
)

__all__ = ["AIOHTTP_VERSION", "QueryParams", "RawResponse", "Transport"]

AIOHTTP_VERSION: str = aiohttp.__version__

QueryParams = Mapping[str, str | int]
_CHUNK = 1 << 16
_MAX_CONNECT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response read in full: status, headers and body bytes."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport:
    """One pooled aiohttp session, created lazily inside the running loop.

    Args:
        base_url: Scheme, host and optional port, without a trailing slash.
        headers: Headers sent with every request (auth, user agent).
        max_connections: Connector limit; at least the client's concurrency.
        max_response_bytes: Larger bodies raise ``APIResponseValidationError``.
        secret: The API key, scrubbed from bodies that errors quote.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        max_connections: int,
        max_response_bytes: int,
        secret: str,
    ) -> None:
        self._secret = secret.encode()
        self._base_url = base_url
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def closed(self) -> bool:
        """Whether `aclose` has been called."""
        return self._closed

    @property
    def has_open_session(self) -> bool:
        """Whether a session was created and not yet closed."""
        return self._session is not None and not self._session.closed

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("this client is closed; create a new AsyncTrainingClient")
        loop = asyncio.get_running_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                raise_for_status=False,
            )
            self._loop = loop
        elif loop is not self._loop:
            raise BasetenError(
                "this AsyncTrainingClient is bound to another event loop; "
                "create one client per event loop"
            )
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # A separate, shorter connect limit tells "never sent" (safe to
            # resend) apart from "sent, no answer" when an attempt times out.
            connect = min(seconds / 2, _MAX_CONNECT_SECONDS)
            timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=connect)
            self._timeouts[seconds] = timeout
        return timeout

    def redact(self, body: bytes) -> bytes:
        """The body with the API key blanked out, should a server echo it."""
        return body.replace(self._secret, b"<redacted>") if self._secret in body else body

    def url(self, path: str) -> URL:
        """The absolute URL of an already-escaped path."""
        return URL(self._base_url + path, encoded=True)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> RawResponse:
        """Send one request and read the whole response.

        Raises:
            APIConnectionError: The connection failed (``maybe_committed`` is
                False only when the request certainly never left).
            APITimeoutError: The attempt took longer than ``timeout``.
            APIResponseValidationError: The body exceeds the size cap.
        """
        session = self._session_for_this_loop()
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"} if headers else _JSON
        try:
            async with session.request(
                method,
                self.url(path),
                params=params,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            ) as response:
                payload = await self._read_capped(response)
                return RawResponse(response.status, response.headers, payload)
        except aiohttp.ConnectionTimeoutError as exc:
            raise APITimeoutError(
                f"{method} {path}: timed out connecting to {self._base_url}"
            ) from exc
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{method} {path}: no response within {timeout:g}s", maybe_committed=True
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise APIConnectionError(
                f"{method} {path}: could not connect to {self._base_url}: {exc.os_error}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(
                f"{method} {path}: connection lost before a complete response "
                f"({type(exc).__name__})",
                maybe_committed=True,
            ) from exc

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self._max_response_bytes
        declared = response.content_length
        if declared is not None:
            if declared > cap:
                raise APIResponseValidationError(
                    f"response body of {declared} bytes exceeds the {cap}-byte limit",
                    status_code=response.status,
                )
            if "Content-Encoding" not in response.headers:
                return await response.read()  # the declared length is the real one
        # Chunked or compressed: count the bytes as they are decoded.
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise APIResponseValidationError(
                    f"response body exceeds the {cap}-byte limit", status_code=response.status
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the session; safe to call more than once."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


_JSON: Mapping[str, str] = {"Content-Type": "application/json"}
