"""Forgetting what no longer protects anything: run hourly by every app process.

Ended sessions (with their refresh tokens), spent or expired email links and idle
sign-in counters are deleted a week after they stopped mattering; concurrent runs in
several processes only delete the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth import throttle
from tokenbank.auth.models import AuthSession, EmailToken

KEEP_FOR = timedelta(days=7)
INTERVAL_S = 3600.0


async def purge(session: AsyncSession, now: datetime) -> None:
    """Delete what stopped mattering before ``now - KEEP_FOR`` (the job runs it hourly)."""
    cutoff = now - KEEP_FOR
    await session.execute(
        delete(AuthSession).where(
            or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
        )
    )
    await session.execute(
        delete(EmailToken).where(or_(EmailToken.expires_at < cutoff, EmailToken.used_at < cutoff))
    )
    await throttle.purge_old(session, now)
