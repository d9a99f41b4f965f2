"""Sliding-window rate limits: the rule, and counting in the database.

- :func:`hit` counts in the database inside the caller's session (its transaction, its
  commit): for code that already has a unit of work open.
- :class:`tokenbank.ratelimit.flows.Limiter` (one per process) counts in Redis when
  configured and falls back to :func:`hit` in a transaction of its own.

Both raise :class:`RateLimited` (429, ``Retry-After``) past the limit. Hits are counted
per window of ``WINDOW_S`` seconds aligned to the epoch (the same key counts the same in
either store), and the limit applies to a sliding window: the current window's count plus
the previous window's, weighted by how much of it the last ``WINDOW_S`` seconds still
cover. So a burst straddling a window's edge gets no second allowance, as it would with
fixed windows (three at 0:59 and three more at 1:00 under "three a minute"). A refused
hit counts too: hammering a limit keeps it shut.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.errors import AppError
from tokenbank.ratelimit.models import RateLimitBucket
from tokenbank.types import utcnow

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


def window_start(now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_S, tz=UTC)


def check(count: int, previous: int, limit_per_window: int, start: datetime, now: datetime) -> None:
    """Refuse the hit that made the current window's count ``count`` (``previous`` in the
    window before) when the sliding window's estimate exceeds the limit."""
    elapsed = min(max((now - start).total_seconds(), 0.0), float(WINDOW_S))
    if count + previous * (1 - elapsed / WINDOW_S) <= limit_per_window:
        return
    wait = _seconds_until_allowed(count, previous, limit_per_window, elapsed)
    raise RateLimited(max(1, math.ceil(wait - 1e-6)))  # 40.000000001 s is 40 s


def _seconds_until_allowed(count: int, previous: int, limit: int, elapsed: float) -> float:
    """How long until one more hit would be allowed, if none comes before it."""
    if count + 1 <= limit and previous > 0:  # later in this window, as the previous decays
        return WINDOW_S * (1 - (limit - count - 1) / previous) - elapsed
    # In the next window, as this one (then the previous) decays.
    into_next = WINDOW_S * (1 - (limit - 1) / count) if count > limit - 1 else 0.0
    return WINDOW_S - elapsed + into_next


async def hit(
    session: AsyncSession, key: str, limit_per_window: int, now: datetime | None = None
) -> None:
    """Count one request under ``key`` in the database; raise RateLimited past the limit."""
    when = now or utcnow()
    start = window_start(when)
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(buckets).values(key=key[:255], window_start=start, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[buckets.c.key, buckets.c.window_start],
        set_={"count": buckets.c.count + 1},
    ).returning(buckets.c.count)
    count = int((await session.execute(stmt)).scalar_one())
    previous = await session.scalar(
        select(buckets.c.count).where(
            buckets.c.key == key[:255],
            buckets.c.window_start == start - timedelta(seconds=WINDOW_S),
        )
    )
    check(count, int(previous or 0), limit_per_window, start, when)


async def purge_old(session: AsyncSession, now: datetime | None = None) -> int:
    cutoff = window_start(now or utcnow()) - timedelta(seconds=WINDOW_S * 2)
    result = await session.execute(delete(buckets).where(buckets.c.window_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
