"""Links sent by email: random 256-bit tokens, stored as SHA-256, single use, expiring.

``consume`` marks a token used with one conditional UPDATE (``WHERE used_at IS NULL AND
expires_at > now``), so of two clicks racing on one link exactly one succeeds.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import EmailToken, EmailTokenPurpose
from tokenbank.auth.sessions import token_hash

VERIFY_EMAIL = EmailTokenPurpose.VERIFY_EMAIL
RESET_PASSWORD = EmailTokenPurpose.RESET_PASSWORD


async def issue(
    session: AsyncSession, user_id: int, purpose: str, ttl_s: int, now: datetime
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        EmailToken(
            token_hash=token_hash(token),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()
    return token


async def consume(session: AsyncSession, token: str, purpose: str, now: datetime) -> int | None:
    """The user id of a valid unused token of ``purpose``, now marked used; else None."""
    if not token or len(token) > 200:
        return None
    stmt = (
        update(EmailToken)
        .where(
            EmailToken.token_hash == token_hash(token),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EmailToken.user_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def void_all(session: AsyncSession, user_id: int, purpose: str, now: datetime) -> None:
    """Mark every unused link of ``purpose`` used (a newer one, or the work is done)."""
    await session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
