"""Sessions: a short-lived access token plus a rotating refresh token.

Guarantees (tested in ``tests/auth/test_sessions.py``):

1. Every access token names its session (``sid``); a request whose session is revoked or
   expired is refused (``session_revoked``), so signing out takes effect at once.
2. A refresh token works once: using it issues the next one and marks it used.
3. A used refresh token presented again revokes its whole session (the family), since
   whoever holds the other copy may be a thief; the legitimate holder signs in again.
4. ``revoke_all`` ends every session of a user (sign out everywhere, password change or
   reset).

Tokens are 256-bit random values; only their SHA-256 is stored.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import AuthSession, RefreshToken
from tokenbank.auth.security import AccessClaims, create_access_token
from tokenbank.config import Settings
from tokenbank.db import Query


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Issued:
    user_id: int
    session_id: str
    access_token: str
    refresh_token: str


class RefreshOutcome(enum.StrEnum):
    """What presenting a refresh token did, in order of precedence."""

    INVALID = "invalid"
    """Unknown token, or its session is revoked or expired: nothing changes."""
    REUSED = "reused"
    """The token was used before: its session is now revoked."""
    ROTATED = "rotated"
    """A fresh access token and the next refresh token were issued."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    outcome: RefreshOutcome
    issued: Issued | None = None


def _access(settings: Settings, user_id: int, session_id: str) -> str:
    return create_access_token(
        user_id, settings.effective_jwt_secret, settings.jwt_expires_s, session_id=session_id
    )


def _new_refresh(session: AsyncSession, session_id: str, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(RefreshToken(token_hash=token_hash(token), session_id=session_id, issued_at=now))
    return token


async def start(session: AsyncSession, user_id: int, settings: Settings, now: datetime) -> Issued:
    """Open a new session for ``user_id`` (sign-up, sign-in, password change or reset)."""
    session_id = secrets.token_urlsafe(24)
    session.add(
        AuthSession(
            id=session_id,
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    await session.flush()
    refresh = _new_refresh(session, session_id, now)
    await session.flush()
    return Issued(user_id, session_id, _access(settings, user_id, session_id), refresh)


async def rotate(
    session: AsyncSession, refresh_token: str, settings: Settings, now: datetime
) -> Refreshed:
    stmt = (
        select(RefreshToken, AuthSession)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == token_hash(refresh_token))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = (await session.execute(stmt)).first()
    if found is None:
        return Refreshed(RefreshOutcome.INVALID)
    token, auth_session = found[0], found[1]
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        return Refreshed(RefreshOutcome.INVALID)
    if token.used_at is not None:
        auth_session.revoked_at = now
        auth_session.revoked_reason = "refresh_reused"
        await session.flush()
        forget_checks()
        return Refreshed(RefreshOutcome.REUSED)
    token.used_at = now
    auth_session.last_used_at = now
    refresh = _new_refresh(session, auth_session.id, now)
    await session.flush()
    issued = Issued(
        auth_session.user_id,
        auth_session.id,
        _access(settings, auth_session.user_id, auth_session.id),
        refresh,
    )
    return Refreshed(RefreshOutcome.ROTATED, issued)


async def session_of_refresh(session: AsyncSession, refresh_token: str) -> str | None:
    stmt = select(RefreshToken.session_id).where(
        RefreshToken.token_hash == token_hash(refresh_token)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _revoke_open(
    session: AsyncSession, which: ColumnElement[bool], reason: str, now: datetime
) -> None:
    """End the still-open sessions that ``which`` selects (an ended one keeps its reason)."""
    await session.execute(
        update(AuthSession)
        .where(which, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    forget_checks()


async def revoke(session: AsyncSession, session_id: str, reason: str, now: datetime) -> None:
    await _revoke_open(session, AuthSession.id == session_id, reason, now)


async def revoke_all(session: AsyncSession, user_id: int, reason: str, now: datetime) -> None:
    await _revoke_open(session, AuthSession.user_id == user_id, reason, now)


#: The session is neither revoked nor expired (one primary-key read).
OPEN_SESSION = Query.of(
    select(AuthSession.id).where(
        AuthSession.id == bindparam("session_id"),
        AuthSession.user_id == bindparam("user_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now"),
    )
)


# Open sessions this process saw recently (only with SESSION_CHECK_CACHE_S > 0). A
# revocation here clears it at once; other processes see it within the cache time.
_recently_open: dict[tuple[int, str], float] = {}


def forget_checks() -> None:
    _recently_open.clear()


def recently_open(claims: AccessClaims, cache_s: float) -> bool:
    if cache_s <= 0:
        return False
    seen = _recently_open.get((claims.user_id, claims.session_id))
    return seen is not None and time.monotonic() - seen < cache_s


def remember_open(claims: AccessClaims, cache_s: float) -> None:
    if cache_s <= 0:
        return
    if len(_recently_open) > 50_000:
        _recently_open.clear()
    _recently_open[(claims.user_id, claims.session_id)] = time.monotonic()
