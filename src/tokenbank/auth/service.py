"""Accounts: register, sign in, verify email, reset and change passwords.

Never commits (the caller owns the transaction). The sign-up bonus is granted by ONE
function, :func:`grant_signup_bonus`, keyed ``signup:<user id>``: public sign-ups get it
when their email is verified, and however often that happens it is granted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth import email_links, sessions, throttle
from tokenbank.auth import repository as repo
from tokenbank.auth.errors import (
    EmailLinkInvalid,
    EmailTaken,
    InvalidCredentials,
    UsernameTaken,
    UserNotFound,
)
from tokenbank.auth.models import User
from tokenbank.auth.security import hash_password, verify_password
from tokenbank.config import Settings
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger

SIGNUP_BONUS_DESCRIPTION = "Welcome bonus"


async def register(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    signup_bonus_tokens: int = 0,
    is_admin: bool = False,
    locale: str = "en",
    email_verified_at: datetime | None = None,
) -> User:
    """Create the user and their token account, all or nothing.

    ``signup_bonus_tokens`` grants the bonus at once and ``email_verified_at`` vouches
    for the address, for accounts an operator creates; a public sign-up passes neither
    and gets its bonus when the email is verified.
    """
    if await repo.username_exists(session, username):
        raise UsernameTaken()
    if await repo.email_exists(session, email):
        raise EmailTaken()
    user = User(
        username=username,
        email=email,
        password_hash=await hash_password(password),
        is_admin=is_admin,
        locale=locale,
        email_verified_at=email_verified_at,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        if "email" in str(exc.orig).lower():
            raise EmailTaken() from exc
        raise UsernameTaken() from exc
    await ledger.open_account(session, user.id)
    await grant_signup_bonus(session, user.id, signup_bonus_tokens)
    return user


async def grant_signup_bonus(session: AsyncSession, user_id: int, tokens: int) -> None:
    """The sign-up bonus, at most once per user (its key: :func:`keys.signup`)."""
    if tokens > 0:
        await ledger.grant(
            session, user_id, tokens, SIGNUP_BONUS_DESCRIPTION, idempotency_key=keys.signup(user_id)
        )


async def authenticate(session: AsyncSession, login: str, password: str) -> User:
    user = await repo.find_by_login(session, login)
    ok = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok:
        raise InvalidCredentials()
    return user


@dataclass(frozen=True, slots=True)
class LoginTicket:
    """An admitted sign-in attempt: who it is for (if anyone) and its throttle key."""

    user_id: int | None
    password_hash: str | None
    throttle_key: str


async def admit_login(
    session: AsyncSession, login: str, settings: Settings, now: datetime
) -> LoginTicket:
    """Count the attempt against its account; LoginLocked while that account waits.

    Run in a transaction of its own that commits before the password is checked, so the
    count stands whatever the check says.
    """
    user = await repo.find_by_login(session, login)
    key = throttle.login_key(user.id if user else None, login.strip())
    if settings.rate_limit_enabled:
        await throttle.admit_login(session, key, settings, now)
    return LoginTicket(user.id if user else None, user.password_hash if user else None, key)


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await repo.get(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def _user_of_link(
    session: AsyncSession, token: str, purpose: str, now: datetime
) -> User:
    """Use up an emailed link and return its user (EmailLinkInvalid if it is not usable)."""
    user_id = await email_links.consume(session, token, purpose, now)
    if user_id is None:
        raise EmailLinkInvalid()
    return await get_user(session, user_id)


async def verify_email(
    session: AsyncSession, token: str, settings: Settings, now: datetime
) -> User:
    """Mark the address verified and grant the sign-up bonus (once)."""
    user = await _user_of_link(session, token, email_links.VERIFY_EMAIL, now)
    if user.email_verified_at is None:
        user.email_verified_at = now
    await grant_signup_bonus(session, user.id, settings.signup_bonus_tokens)
    return user


async def set_password(
    session: AsyncSession, user: User, new_password: str, reason: str, now: datetime
) -> None:
    """New password; every session of the user ends and no reset link stays usable."""
    user.password_hash = await hash_password(new_password)
    await sessions.revoke_all(session, user.id, reason, now)
    await email_links.void_all(session, user.id, email_links.RESET_PASSWORD, now)
    await throttle.clear(session, throttle.login_key(user.id, user.username))


async def complete_password_reset(
    session: AsyncSession, token: str, new_password: str, now: datetime
) -> User:
    user = await _user_of_link(session, token, email_links.RESET_PASSWORD, now)
    await set_password(session, user, new_password, "password_reset", now)
    return user


async def check_password(password: str, password_hash: str | None) -> bool:
    return await verify_password(password, password_hash)
