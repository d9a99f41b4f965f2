"""Window counters in Redis: one round trip per request, no database transaction.

A window's counter is one Redis key, ``<prefix>rl:<limit key>:<window start>``, made and
counted by one Lua script (INCR, and EXPIRE on the first hit), so the count and its expiry
are one atomic step and a crash between them cannot leave a key that never expires. The
same script reads the previous window's count, which the sliding-window rule weighs in.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

_INCR_WITH_EXPIRY = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


class RedisCounters:
    """Counters shared by every app process that names the same Redis and key prefix."""

    def __init__(self, url: str, *, prefix: str, timeout_s: float) -> None:
        # No retries inside the client: a Redis that does not answer at once is reported
        # to the caller, which counts in the database instead (see ``service.Limiter``).
        # The pool is not capped: a capped pool refuses (rather than waits) past its size,
        # and Redis serves thousands of connections; it grows to the requests in flight.
        self._redis: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._script: Any = self._redis.register_script(_INCR_WITH_EXPIRY)
        self.prefix = prefix

    async def incr(
        self, key: str, window_epoch_s: int, window_s: int, expire_s: int
    ) -> tuple[int, int]:
        """Count one hit in ``key``'s window; return the window's count so far and the
        previous window's count."""
        name = f"{self.prefix}rl:{key}:{window_epoch_s}"
        before = f"{self.prefix}rl:{key}:{window_epoch_s - window_s}"
        count, previous = await self._script(keys=[name, before], args=[expire_s])
        return int(count), int(previous)

    async def aclose(self) -> None:
        await self._redis.aclose()
