"""Fixed-window rate limits, counted in Redis when configured, else in the database.

Both stores are shared by every app process, so a limit holds across any number of
processes behind a load balancer.

- :class:`Limiter` (one per process, ``app.state.limiter``) is what routes use:
  ``await limiter.hit(key, limit_per_window)``. With ``REDIS_URL`` set it counts in Redis
  (one round trip, no database transaction). Without Redis, or while Redis does not
  answer, it counts in the database in a short transaction of its own, so the limit still
  holds: a Redis outage costs a transaction per limited request, never the limit itself.
- :func:`hit` counts in the database inside the caller's session (its transaction, its
  commit): for code that already has a unit of work open.

Both raise :class:`RateLimited` (429, ``Retry-After``) past the limit. A window is
``WINDOW_S`` seconds aligned to the epoch; the same key counts the same in either store.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.exceptions import RedisError
from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.errors import AppError
from tokenbank.observability import RATE_LIMIT_STORE_ERRORS
from tokenbank.ratelimit.models import RateLimitBucket
from tokenbank.ratelimit.redis_counters import RedisCounters
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

buckets = cast(Table, RateLimitBucket.__table__)
WINDOW_S = 60


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests; slow down."

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"Too many requests; try again in {retry_after_s} s.", retry_after_s=retry_after_s
        )
        self.headers = {"Retry-After": str(retry_after_s)}


def _window(now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_S, tz=UTC)


def _check(count: int, limit_per_window: int, start: datetime, now: datetime) -> None:
    if count > limit_per_window:
        remaining = (start + timedelta(seconds=WINDOW_S) - now).total_seconds()
        raise RateLimited(max(1, math.ceil(remaining)))


async def hit(
    session: AsyncSession, key: str, limit_per_window: int, now: datetime | None = None
) -> None:
    """Count one request under ``key`` in the database; raise RateLimited past the limit."""
    when = now or utcnow()
    start = _window(when)
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(buckets).values(key=key[:255], window_start=start, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[buckets.c.key, buckets.c.window_start],
        set_={"count": buckets.c.count + 1},
    ).returning(buckets.c.count)
    count = int((await session.execute(stmt)).scalar_one())
    _check(count, limit_per_window, start, when)


async def purge_old(session: AsyncSession, now: datetime | None = None) -> int:
    cutoff = _window(now or utcnow()) - timedelta(seconds=WINDOW_S * 2)
    result = await session.execute(delete(buckets).where(buckets.c.window_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


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
            start = _window(when)
            try:
                count = await self._redis.incr(key, int(start.timestamp()), expire_s=2 * WINDOW_S)
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
                _check(count, limit_per_window, start, when)
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
