"""Account actions that must commit part of their work whatever the outcome.

Each takes the :class:`~tokenbank.db.Database` and owns its transactions, because a
record has to stand even when the action then fails:

- a sign-in attempt (and a password change's check of the current password) is counted
  and committed BEFORE the password is checked, so a wrong password cannot roll its own
  count back (the per-account throttle), and the slow hash runs outside any transaction;
- a refresh token presented twice ends its whole session, committed before the refusal.

Everything else about accounts is in :mod:`tokenbank.auth.service`, in the caller's unit.
"""

from __future__ import annotations

from tokenbank.auth import repository as repo
from tokenbank.auth import service, sessions, throttle
from tokenbank.auth.errors import (
    InvalidCredentials,
    RefreshTokenInvalid,
    RefreshTokenReused,
    WrongCurrentPassword,
)
from tokenbank.auth.service import SignedIn
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.types import utcnow


async def sign_in(db: Database, login: str, password: str, settings: Settings) -> SignedIn:
    """Sign in. Besides the per-address limit, each account allows a few failures, then
    waits longer after each (``LoginLocked``)."""
    async with db.transaction() as session:  # committed before the password is checked
        ticket = await service.admit_login(session, login, settings, utcnow())
    if not await service.check_password(password, ticket.password_hash) or not ticket.user_id:
        raise InvalidCredentials()
    async with db.transaction() as session:
        await throttle.clear(session, ticket.throttle_key)
        user = await service.get_user(session, ticket.user_id)
        issued = await sessions.start(session, user.id, settings, utcnow())
    return SignedIn(user, issued)


async def refresh(db: Database, refresh_token: str | None, settings: Settings) -> SignedIn:
    """A new access token and the next refresh token. A refresh token works once;
    presenting a used one ends its whole session (committed), then is refused."""
    if not refresh_token:
        raise RefreshTokenInvalid()
    async with db.transaction() as session:
        result = await sessions.rotate(session, refresh_token, settings, utcnow())
        user = await repo.get(session, result.issued.user_id) if result.issued else None
    if result.outcome is sessions.RefreshOutcome.REUSED:
        raise RefreshTokenReused()
    if result.issued is None or user is None:
        raise RefreshTokenInvalid()
    return SignedIn(user, result.issued)


async def change_password(
    db: Database, user_id: int, current_password: str, new_password: str, settings: Settings
) -> SignedIn:
    """New password (the current one is required, and throttled like a sign-in). Every
    session ends, the caller's included; the result is a new session for this browser."""
    async with db.transaction() as session:  # committed before the password is checked
        user = await service.get_user(session, user_id)
        if settings.rate_limit_enabled:
            await throttle.admit_login(
                session, throttle.login_key(user.id, user.username), settings, utcnow()
            )
        current_hash = user.password_hash
    if not await service.check_password(current_password, current_hash):
        raise WrongCurrentPassword()
    async with db.transaction() as session:
        user = await service.get_user(session, user_id)
        await service.set_password(session, user, new_password, "password_changed", utcnow())
        issued = await sessions.start(session, user.id, settings, utcnow())
    return SignedIn(user, issued)
