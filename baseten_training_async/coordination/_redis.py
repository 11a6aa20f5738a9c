"""`RedisCoordinator`: one rate limit, one 429 cool-down and per-name leases across processes.

The one module that imports ``redis`` (the ``redis`` extra). Every shared
step is a Lua script registered once, so it is atomic and one round trip:

- the token bucket of the API key: refilled on Redis's own clock (``TIME``),
  a token is *reserved* and the caller told how long to wait for it, so
  waiters queue in order instead of polling;
- the cool-down: a key with a ``PX`` expiry, only ever lengthened; the
  bucket script reads it first;
- a lease per (project, job name): ``SET NX PX`` plus a history key that
  remembers whether the last holder released the lease or let it expire,
  renewed and deleted only by the holder's random token (compare-and-renew,
  compare-and-delete).

Keys live under ``bta:{<digest>}:``, the digest being a SHA-256 of the API
key's fingerprint and the optional namespace; project ids and job names are
hashed too. Nothing secret is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import warnings
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "RedisCoordinator needs the 'redis' extra: pip install 'baseten-training-async[redis]'"
    ) from exc

from .._clock import Clock
from .._errors import InvalidInputError, RateLimitError
from ._base import CoordinationError, CoordinationWarning, InProcessCoordinator, LeaseInfo

__all__ = ["RedisCoordinator"]

logger = logging.getLogger("baseten_training_async")

_REDIS_ERRORS = (RedisError, OSError)  # OSError covers TimeoutError and refused sockets
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_HISTORY_HELD = b"held"
_HISTORY_RELEASED = b"released"

# KEYS: bucket, cool-down. ARGV: rate (tokens/s), burst, most ms the caller may wait (-1: any).
# Returns {reserved, wait_ms, cooling}: a reserved token is usable after wait_ms; when
# cooling, nothing was reserved and the cool-down has wait_ms left.
_ACQUIRE = """
local cool = redis.call('PTTL', KEYS[2])
if cool > 0 then return {0, cool, 1} end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate / 1000)
  stamp = now
end
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) * 1000 / rate) end
if max_wait >= 0 and wait > max_wait then return {0, wait, 0} end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {1, wait, 0}
"""

# KEYS: cool-down. ARGV: ms. Lengthens the cool-down, never shortens it.
_COOL = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""

# KEYS: lease, history. ARGV: token, ttl ms, history ttl ms.
# Returns {1, previous history or ''} when taken, else {0, the lease's ms left}.
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local previous = redis.call('GET', KEYS[2])
  redis.call('SET', KEYS[2], 'held', 'PX', ARGV[3])
  if previous then return {1, previous} end
  return {1, ''}
end
return {0, redis.call('PTTL', KEYS[1])}
"""

# KEYS: lease. ARGV: token, ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease, history. ARGV: token, history ttl ms.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], 'released', 'PX', ARGV[2])
  return 1
end
return 0
"""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisCoordinator:
    """Coordinates every client that uses one API key and one Redis.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``
            or ``unix://...``.
        namespace: Keeps apart groups of workers that share a key and a Redis
            but should not share leases or limits (hashed before use).
        rate: Requests per second allowed to all clients together (the API's
            published limit is 100 per key).
        burst: Requests that may start at once after an idle spell. The
            default, a tenth of a second's worth, stays well under the API's
            own burst, so the server's bucket keeps headroom for the timing
            difference between the two clocks.
        lease_ttl: Seconds a lease outlives its holder's last renewal (renewed
            every third of that). Choose it longer than a create can take to
            commit on the server.
        on_redis_failure: ``"fail"``: a call that needs Redis while it is
            unreachable raises `CoordinationError` (a lease that cannot be
            checked cannot protect a name). ``"fallback"``: warn once with
            `CoordinationWarning`, then coordinate within this process only.
        socket_timeout: Seconds a Redis command or connect may take.
        history_ttl: Seconds Redis remembers that a name was leased, so a
            later holder knows to look the job up by name before creating.

    Raises:
        InvalidInputError: An invalid setting.

    Example:
        >>> coordinator = RedisCoordinator("redis://localhost:6379/0")  # doctest: +SKIP
        >>> client = AsyncTrainingClient(coordinator=coordinator)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str | None = None,
        rate: float = 100.0,
        burst: int | None = None,
        lease_ttl: float = 30.0,
        on_redis_failure: Literal["fail", "fallback"] = "fail",
        socket_timeout: float = 5.0,
        history_ttl: float = 24 * 3600.0,
    ) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise InvalidInputError("url", "must be a redis://, rediss:// or unix:// URL")
        if not rate > 0:
            raise InvalidInputError("rate", "must be positive")
        if burst is not None and burst < 1:
            raise InvalidInputError("burst", "must be at least 1")
        if not lease_ttl >= 0.3:
            raise InvalidInputError("lease_ttl", "must be at least 0.3 seconds")
        if on_redis_failure not in ("fail", "fallback"):
            raise InvalidInputError("on_redis_failure", "must be 'fail' or 'fallback'")
        if not socket_timeout > 0:
            raise InvalidInputError("socket_timeout", "must be positive")
        if not history_ttl >= lease_ttl:
            raise InvalidInputError("history_ttl", "must be at least lease_ttl")
        self._url = url
        self._namespace = namespace or ""
        self.rate = float(rate)
        self.burst = burst if burst is not None else max(1, int(rate / 10))
        self.lease_ttl = float(lease_ttl)
        self.on_redis_failure = on_redis_failure
        self.history_ttl = float(history_ttl)
        self._socket_timeout = socket_timeout
        self._redis: aioredis.Redis | None = None
        self._fingerprint: str | None = None
        self._prefix = ""
        self._clock: Clock | None = None
        self._bind_lock = asyncio.Lock()
        self._local = InProcessCoordinator()
        self._fell_back = False
        self._release_failed = False  # warned once; later failures are logged at debug
        self._scripts: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The Redis URL, without its password."""
        return redact_url(self._url)

    @property
    def fell_back(self) -> bool:
        """Whether Redis failed and this coordinator now works in-process only."""
        return self._fell_back

    async def bind(self, *, key_fingerprint: str, clock: Clock) -> None:
        """Connect to Redis and derive the key namespace.

        Binding again with the same fingerprint does nothing.

        Raises:
            CoordinationError: Redis cannot be reached, or the coordinator is
                already bound to another API key.
        """
        if not _FINGERPRINT.fullmatch(key_fingerprint):
            raise InvalidInputError("key_fingerprint", "must be the SHA-256 hex digest of a key")
        async with self._bind_lock:
            if self._fingerprint is not None:
                if key_fingerprint != self._fingerprint:
                    raise CoordinationError(
                        "this RedisCoordinator is already bound to another API key; "
                        "use one coordinator per key"
                    )
                return
            client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._socket_timeout,
                retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
            )
            try:
                await client.ping()
            except _REDIS_ERRORS as exc:
                await client.aclose()
                raise CoordinationError(f"cannot reach Redis at {self.url}: {exc}") from exc
            self._redis = client
            self._clock = clock
            self._fingerprint = key_fingerprint
            namespace = _digest("baseten-training-async", key_fingerprint, self._namespace)
            self._prefix = f"bta:{{{namespace}}}:"  # a hash tag: one Redis Cluster slot
            for name, source in (
                ("acquire", _ACQUIRE),
                ("cool", _COOL),
                ("take", _TAKE),
                ("renew", _RENEW),
                ("release", _RELEASE),
            ):
                self._scripts[name] = client.register_script(source)

    def _bound(self) -> tuple[aioredis.Redis, Clock]:
        if self._redis is None or self._clock is None:
            raise CoordinationError("RedisCoordinator used before bind() (or after aclose())")
        return self._redis, self._clock

    def _failed(self, exc: BaseException, doing: str) -> None:
        """Raise for a Redis failure, or switch to in-process coordination."""
        if self.on_redis_failure == "fail":
            raise CoordinationError(f"Redis at {self.url} failed while {doing}: {exc}") from exc
        if not self._fell_back:
            self._fell_back = True
            warnings.warn(
                f"Redis at {self.url} failed while {doing} ({exc}); coordinating within "
                "this process only from now on: other processes are no longer excluded",
                CoordinationWarning,
                stacklevel=4,
            )

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    async def acquire(self, *, deadline: float | None) -> None:
        """Wait for the shared cool-down, then for a token of the shared bucket.

        Raises:
            RateLimitError: The wait would pass ``deadline``; nothing was reserved.
            CoordinationError: Redis failed (unless falling back).
        """
        _, clock = self._bound()
        keys = [self._prefix + "bucket", self._prefix + "cool"]
        while not self._fell_back:
            max_wait = (
                -1 if deadline is None else max(0, int((deadline - clock.monotonic()) * 1000))
            )
            try:
                reserved, wait_ms, cooling = await self._run(
                    "acquire", keys, [repr(self.rate), self.burst, max_wait]
                )
            except _REDIS_ERRORS as exc:
                self._failed(exc, "taking a rate-limit token")
                return
            wait = int(wait_ms) / 1000
            if reserved:
                if wait > 0:
                    await clock.sleep(wait)
                return
            if not cooling or (deadline is not None and clock.monotonic() + wait > deadline):
                why = "429 cool-down" if cooling else "rate limit"
                raise RateLimitError(
                    f"the shared {why} needs {wait:.3f}s, beyond this call's deadline",
                    retry_after=wait,
                    status_code=429,
                )
            await clock.sleep(wait)

    async def report_rate_limited(self, retry_after: float | None) -> None:
        """Start (or lengthen) the shared cool-down: ``retry_after`` seconds, 1 s if None."""
        self._bound()
        if self._fell_back:
            return
        wait = 1.0 if retry_after is None else max(retry_after, 0.01)
        try:
            await self._run("cool", [self._prefix + "cool"], [_ms(wait)])
        except _REDIS_ERRORS as exc:
            self._failed(exc, "sharing a 429 cool-down")

    @contextlib.asynccontextmanager
    async def lease(self, project_id: str, name: str) -> AsyncIterator[LeaseInfo]:
        """Hold the lease on ``name`` in ``project_id`` across every process.

        Waits while another client holds it. Renewed in the background while
        held; released on exit (or left to expire if Redis cannot be reached
        then: the next holder sees ``taken_over``).

        Raises:
            CoordinationError: Redis failed while taking the lease (unless
                falling back).
        """
        self._bound()
        if not self._fell_back:
            key = _digest(project_id, name)
            keys = [f"{self._prefix}lease:{key}", f"{self._prefix}history:{key}"]
            token = secrets.token_hex(16)
            try:
                info = await self._take(keys, token)
            except _REDIS_ERRORS as exc:
                self._failed(exc, "taking a lease")
            else:
                renewer = asyncio.create_task(self._renew(keys[0], token, info))
                try:
                    yield info
                finally:
                    renewer.cancel()
                    await asyncio.wait([renewer])
                    await asyncio.shield(self._release(keys, token))
                return
        async with self._local.lease(project_id, name) as info:
            yield info

    async def _take(self, keys: list[str], token: str) -> LeaseInfo:
        ttl, history = _ms(self.lease_ttl), _ms(self.history_ttl)
        pause = 0.01
        while True:
            taken, value = await self._run("take", keys, [token, ttl, history])
            if taken:
                return LeaseInfo(
                    taken_over=value == _HISTORY_HELD, waited=value == _HISTORY_RELEASED
                )
            # Held by another client: look again soon, and no later than its expiry.
            # Lease waits are on Redis's clock (real time), whatever the client's clock.
            left = int(value) / 1000
            await asyncio.sleep(min(pause, left) if left > 0 else 0)
            pause = min(pause * 2, 0.25, self.lease_ttl / 10)

    async def _renew(self, key: str, token: str, info: LeaseInfo) -> None:
        loop = asyncio.get_running_loop()
        ttl = self.lease_ttl
        renewed = loop.time()
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                held = await self._run("renew", [key], [token, _ms(ttl)])
            except _REDIS_ERRORS as exc:
                if loop.time() - renewed >= ttl:
                    logger.warning("lease could not be renewed for %.1fs: %s", ttl, exc)
                    info.mark_lost()
                    return
                continue
            if not held:
                logger.warning("lease expired while held (renewals were late); it may be lost")
                info.mark_lost()
                return
            renewed = loop.time()

    async def _release(self, keys: list[str], token: str) -> None:
        try:
            await self._run("release", keys, [token, _ms(self.history_ttl)])
        except _REDIS_ERRORS as exc:
            # The create's outcome is settled; the lease simply expires and the
            # next holder takes it over and looks the job up by name.
            level = logging.DEBUG if self._release_failed else logging.WARNING
            self._release_failed = True
            logger.log(level, "could not release a lease on Redis at %s: %s", self.url, exc)

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call more than once."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisCoordinator({self.url!r}, rate={self.rate}, lease_ttl={self.lease_ttl})"
