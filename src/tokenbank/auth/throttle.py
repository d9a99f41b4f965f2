"""Sign-in back-off per account, sign-up cap per address, reset-mail cap per address.

All counters live in ``auth_throttle`` in the database, so every app process sees the
same counts. Each change reads and writes its row under a row lock (PostgreSQL
``FOR UPDATE``; SQLite transactions are ``BEGIN IMMEDIATE``, one writer at a time), so
concurrent attempts are counted one by one.

Sign-in (``admit_login``): the first ``LOGIN_FREE_ATTEMPTS`` attempts since the last
success are free; each one after that locks the account for
``base × 2^(n - free - 1)`` seconds (capped), counted *before* the password is checked,
so a burst of parallel guesses cannot slip in together. A success clears the counter.
``RATE_LIMIT_ENABLED=false`` turns these off with every other limit. The key is the
account (its id, or the login text when no such account exists, so
both cases behave the same), never the address: locking one account never touches
another.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.errors import LoginLocked, SignupLimitReached
from tokenbank.auth.models import AuthThrottle
from tokenbank.config import Settings
from tokenbank.db import insert_or_skip

COUNTER_FORGOTTEN_AFTER = timedelta(days=1)


async def _locked_row(session: AsyncSession, key: str, now: datetime) -> AuthThrottle:
    await session.execute(
        insert_or_skip(session, AuthThrottle, index_elements=[AuthThrottle.key]).values(
            key=key, count=0, locked_until=None, updated_at=now
        )
    )
    stmt = select(AuthThrottle).where(AuthThrottle.key == key).with_for_update()
    row = (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()
    return row


def login_key(user_id: int | None, login: str) -> str:
    return f"login:user:{user_id}" if user_id is not None else f"login:name:{login.lower()}"[:300]


def backoff_s(settings: Settings, attempt: int) -> int:
    over = attempt - settings.login_free_attempts
    if over <= 0:
        return 0
    wait = settings.login_backoff_base_s * 2 ** min(over - 1, 30)
    return int(min(wait, settings.login_backoff_max_s))


async def admit_login(session: AsyncSession, key: str, settings: Settings, now: datetime) -> None:
    """Count one sign-in attempt for ``key``; LoginLocked while the account is locked."""
    row = await _locked_row(session, key, now)
    if row.locked_until is not None and row.locked_until > now:
        raise LoginLocked(max(1, math.ceil((row.locked_until - now).total_seconds())))
    count = 0 if now - row.updated_at > COUNTER_FORGOTTEN_AFTER else row.count
    attempt = count + 1
    wait = backoff_s(settings, attempt)
    row.count = attempt
    row.locked_until = now + timedelta(seconds=wait) if wait else None
    row.updated_at = now
    await session.flush()


async def clear(session: AsyncSession, key: str) -> None:
    await session.execute(delete(AuthThrottle).where(AuthThrottle.key == key))


def _day_key(prefix: str, who: str, now: datetime) -> str:
    return f"{prefix}:{now:%Y-%m-%d}:{who}"[:300]


async def count_per_day(
    session: AsyncSession, prefix: str, who: str, cap: int, now: datetime
) -> None:
    """One more under ``prefix`` for ``who`` today; SignupLimitReached past ``cap``.

    Counted in the caller's transaction: if the sign-up fails, the count rolls back with it.
    """
    key = _day_key(prefix, who, now)
    row = await _locked_row(session, key, now)
    if row.count >= cap:
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise SignupLimitReached(max(1, math.ceil((tomorrow - now).total_seconds())))
    await session.execute(
        update(AuthThrottle)
        .where(AuthThrottle.key == key)
        .values(count=AuthThrottle.count + 1, updated_at=now)
    )


async def allow_per_hour(
    session: AsyncSession, prefix: str, who: str, cap: int, now: datetime
) -> bool:
    """One more under ``prefix`` for ``who`` this hour, if fewer than ``cap`` so far."""
    key = f"{prefix}:{now:%Y-%m-%dT%H}:{who}"[:300]
    row = await _locked_row(session, key, now)
    if row.count >= cap:
        return False
    row.count += 1
    row.updated_at = now
    await session.flush()
    return True


async def purge_old(session: AsyncSession, now: datetime) -> int:
    """Forget counters untouched for a day and no longer locking anything."""
    cutoff = now - COUNTER_FORGOTTEN_AFTER - timedelta(days=1)
    result = await session.execute(
        delete(AuthThrottle).where(
            AuthThrottle.updated_at < cutoff,
            (AuthThrottle.locked_until.is_(None)) | (AuthThrottle.locked_until < now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
