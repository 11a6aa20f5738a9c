"""The one module that talks to aiohttp: send one request, map transport errors.

Everything above this layer sees `HTTPResponse` or an SDK exception.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl as _ssl
import urllib.request
from collections.abc import Mapping

import aiohttp
from yarl import URL

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BasetenError,
    ClientClosedError,
    InvalidInputError,
)
from ._transport import HTTPRequest, HTTPResponse

__all__ = ["AIOHTTP_VERSION", "AiohttpTransport", "SSLSetting", "env_proxy", "ssl_context"]

AIOHTTP_VERSION: str = aiohttp.__version__

_CHUNK = 1 << 16
# An error body is only quoted and mined for a message: read this much, drop the rest.
_ERROR_BODY_CAP = 256 * 1024
_MAX_CONNECT_SECONDS = 10.0


SSLSetting = _ssl.SSLContext | str | os.PathLike[str] | None
"""An ``SSLContext``, or the path of a CA bundle (PEM) to verify the server with."""


def ssl_context(value: SSLSetting) -> _ssl.SSLContext | None:
    """An ``SSLContext`` for ``value``; None means the system's default verification.

    Raises:
        InvalidInputError: Not a context or a readable CA bundle.
    """
    if value is None or isinstance(value, _ssl.SSLContext):
        return value
    if isinstance(value, str | os.PathLike):
        try:
            return _ssl.create_default_context(cafile=os.fspath(value))
        except (OSError, _ssl.SSLError) as exc:
            raise InvalidInputError("ssl", f"cannot load the CA bundle {value!s}: {exc}") from None
    raise InvalidInputError("ssl", "must be an ssl.SSLContext or the path of a CA bundle")


_Proxy = tuple[URL, Mapping[str, str] | None] | None


def _proxy_setting(url: str) -> tuple[URL, Mapping[str, str] | None]:
    """A proxy URL without credentials, and its ``Proxy-Authorization`` header if it had some."""
    proxy = URL(url)
    if proxy.user is None:
        return proxy, None
    credentials = f"{proxy.user}:{proxy.password or ''}".encode()
    auth = "Basic " + base64.b64encode(credentials).decode("ascii")
    return proxy.with_user(None), {"Proxy-Authorization": auth}


def env_proxy(url: URL) -> str | None:
    """The ``HTTP_PROXY``/``HTTPS_PROXY`` for ``url``, unless ``NO_PROXY`` bypasses it.

    ``NO_PROXY`` is a comma-separated list of host names (a name also covers
    its subdomains; a leading dot is ignored), optionally with ``:port``, or
    ``*`` for every host.
    """
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    if not proxy or url.host is None:
        return None
    host = url.host.lower()
    for entry in proxies.get("no", "").replace(" ", "").lower().split(","):
        name, _, port = entry.lstrip(".").partition(":")
        if entry == "*" or (
            name
            and (host == name or host.endswith("." + name))
            and (not port or port == str(url.port))
        ):
            return None
    return proxy


class AiohttpTransport:
    """The default transport: one pooled aiohttp session, created lazily in the running loop.

    Every request (reconciliation listings included) goes through the one
    session, so proxy and TLS settings apply to all of them.

    Args:
        max_connections: Connector limit; at least the client's concurrency.
        max_response_bytes: Larger bodies raise ``APIResponseValidationError``.
        trust_env: Use ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` from
            the environment, read when the first request is sent.
        proxy: A proxy URL for every request; overrides the environment.
        ssl: An ``SSLContext``, or the path of a CA bundle, to verify the
            server (and an https proxy) with.
    """

    def __init__(
        self,
        *,
        max_connections: int = 64,
        max_response_bytes: int = 64 << 20,
        trust_env: bool = True,
        proxy: str | None = None,
        ssl: SSLSetting = None,
    ) -> None:
        if proxy is not None and (not isinstance(proxy, str) or "://" not in proxy):
            raise InvalidInputError(
                "proxy", f"must be a proxy URL such as http://host:port, got {proxy!r}"
            )
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._trust_env = trust_env
        self._proxy: _Proxy = None if proxy is None else _proxy_setting(proxy)
        # Environment proxies per origin; None until the environment is read (once).
        # (aiohttp's own trust_env reads ~/.netrc and the environment in a thread on
        # every request, and would let a netrc entry clash with the API key header.)
        self._env_proxies: dict[str, _Proxy] | None = None
        self._ssl: _ssl.SSLContext | bool = ssl_context(ssl) or True
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
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
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

    def _proxy_for(self, raw_url: str, url: URL) -> _Proxy:
        if self._proxy is not None or not self._trust_env:
            return self._proxy
        if self._env_proxies is None:  # read the environment once
            env = urllib.request.getproxies_environment()
            self._env_proxies = {} if env.get("http") or env.get("https") else None
            self._trust_env = self._env_proxies is not None  # none set: nothing to look up
            if self._env_proxies is None:
                return None
        end = raw_url.find("/", raw_url.find("//") + 2)
        origin = raw_url if end < 0 else raw_url[:end]  # scheme://host:port, cheaply
        try:
            return self._env_proxies[origin]
        except KeyError:
            found = env_proxy(url)
            proxy = None if found is None else _proxy_setting(found)
            self._env_proxies[origin] = proxy
            return proxy

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # A separate, shorter connect limit tells "never sent" (safe to
            # resend) apart from "sent, no answer" when an attempt times out.
            connect = min(seconds / 2, _MAX_CONNECT_SECONDS)
            timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=connect)
            self._timeouts[seconds] = timeout
        return timeout

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send one request and read the whole response.

        aiohttp's own exceptions are never kept as causes: some of them hold
        the request's headers, and so the API key.

        Raises:
            APIConnectionError: The connection failed (``maybe_committed`` is
                False only when the request certainly never left).
            APITimeoutError: The attempt took longer than its timeout.
            APIResponseValidationError: The body exceeds the size cap.
        """
        session = self._session_for_this_loop()
        url = URL(request.url, encoded=True)
        where = f"{request.method} {url.path}"
        error: BasetenError
        proxy = self._proxy_for(request.url, url) if self._trust_env or self._proxy else None
        headers = request.headers
        proxy_headers = None
        if proxy is not None and proxy[1] is not None:
            if url.scheme == "https":
                proxy_headers = proxy[1]  # sent on the CONNECT that opens the tunnel
            else:
                headers = {**headers, **proxy[1]}  # a plain-http proxy reads the request itself
        try:
            async with session.request(
                request.method,
                url,
                params=request.params,
                data=request.body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(request.timeout),
                proxy=None if proxy is None else proxy[0],
                proxy_headers=proxy_headers,
            ) as response:
                payload = await self._read_capped(response)
                return HTTPResponse(response.status, response.headers, payload)
        except aiohttp.ConnectionTimeoutError:
            error = APITimeoutError(f"{where}: timed out connecting")
        except TimeoutError:
            error = APITimeoutError(
                f"{where}: no response within {request.timeout:g}s", maybe_committed=True
            )
        except aiohttp.ClientConnectorError as exc:
            error = APIConnectionError(f"{where}: could not connect: {exc.os_error}")
        except aiohttp.ClientError as exc:
            error = APIConnectionError(
                f"{where}: connection lost before a complete response ({type(exc).__name__})",
                maybe_committed=True,
            )
        # Raised outside the handlers, so that neither __cause__ nor __context__
        # keeps aiohttp's exception: some hold the request's headers, and the key.
        raise error

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status >= 300:
            return await self._read_prefix(response, min(_ERROR_BODY_CAP, self._max_response_bytes))
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

    @staticmethod
    async def _read_prefix(response: aiohttp.ClientResponse, cap: int) -> bytes:
        """At most ``cap`` bytes of the body; the rest is never read (nor decompressed)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            chunks.append(chunk[: cap - size])
            size += len(chunk)
            if size >= cap:
                break
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the session; safe to call more than once."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
