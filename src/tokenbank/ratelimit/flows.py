"""The process's rate limiter: Redis first (if configured), the database otherwise.

Both stores are shared by every app process, so a limit holds across any number of
processes behind a load balancer. :class:`Limiter` (one per process, ``app.state.limiter``)
is what routes use: ``await limiter.hit(key, limit_per_window)``. With ``REDIS_URL`` set
it counts in Redis (one round trip, no database transaction). Without Redis, or while
Redis does not answer, it counts in the database in a short transaction of its own
(:func:`tokenbank.ratelimit.service.hit`), so the limit still holds: a Redis outage costs
a transaction per limited request, never the limit itself.

A flow (it calls the outside world, Redis, and owns its transaction), so it takes the
:class:`~tokenbank.db.Database`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from redis.exceptions import RedisError

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import RATE_LIMIT_STORE_ERRORS
from tokenbank.ratelimit.redis_counters import RedisCounters
from tokenbank.ratelimit.service import WINDOW_S, check, hit, window_start
from tokenbank.types import utcnow

log = logging.getLogger(__name__)


class Limiter:
    """The process's rate limiter: Redis first (if configured), the database otherwise.

    When Redis fails (refused, timed out, any Redis error) the hit is counted in the
    database instead, and Redis is left alone for ``redis_retry_s`` so that every request
    does not wait for a dead server's timeout. Counts made in the database during an
    outage are not added to Redis's afterwards: for the rest of that window a key can be
    allowed up to twice its limit (once per store), never more.
    """

    def __init__(
        self, db: Database, redis: RedisCounters | None = None, *, redis_retry_s: float = 5.0
    ) -> None:
        self._db = db
        self._redis = redis
        self._redis_retry_s = redis_retry_s
        self._redis_down_until = 0.0

    @property
    def store(self) -> str:
        """Where counts go now: ``redis`` or ``database``."""
        return "redis" if self._redis_usable() else "database"

    def _redis_usable(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    async def hit(self, key: str, limit_per_window: int, now: datetime | None = None) -> None:
        """Count one request under ``key``; raise RateLimited past the limit."""
        when = now or utcnow()
        if self._redis is not None and self._redis_usable():
            start = window_start(when)
            try:
                count, previous = await self._redis.incr(
                    key, int(start.timestamp()), WINDOW_S, expire_s=2 * WINDOW_S
                )
            except (RedisError, OSError) as exc:  # TimeoutError is an OSError
                RATE_LIMIT_STORE_ERRORS.inc()
                self._redis_down_until = time.monotonic() + self._redis_retry_s
                log.warning(
                    "Redis did not count a rate-limit hit (%s: %s); counting in the database"
                    " for the next %.0f s",
                    type(exc).__name__,
                    exc,
                    self._redis_retry_s,
                )
            else:
                check(count, previous, limit_per_window, start, when)
                return
        async with self._db.transaction() as session:
            await hit(session, key, limit_per_window, when)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def start_limiter(settings: Settings, db: Database) -> Limiter:
    """The process's limiter, on Redis when ``REDIS_URL`` is set."""
    redis = None
    if settings.redis_url:
        redis = RedisCounters(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            timeout_s=settings.redis_timeout_s,
        )
    return Limiter(db, redis, redis_retry_s=settings.rate_limit_redis_retry_s)
