"""Accounts: register, sign in, verify email, reset and change passwords.

Never commits (the caller owns the transaction: the request's unit, or one of the
transactions of :mod:`tokenbank.auth.flows` for the actions that must commit part of
their work before they can fail). The sign-up bonus is granted by ONE
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


async def _user_of_link(session: AsyncSession, token: str, purpose: str, now: datetime) -> User:
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


# --- what the routes do, each in the request's unit of work ------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user with a new session (its access and refresh tokens)."""

    user: User
    issued: sessions.Issued


@dataclass(frozen=True, slots=True)
class SignedUp(SignedIn):
    """A new account, signed in, with the token of the email-verification link to send."""

    verification_token: str


async def sign_up(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    locale: str,
    client_key: str,
    settings: Settings,
    now: datetime,
) -> SignedUp:
    """A public sign-up (counted per client address per day), signed in at once; the
    welcome bonus waits for the emailed link (:func:`verify_email`)."""
    if settings.rate_limit_enabled:
        await throttle.count_per_day(
            session, "signup", client_key, settings.signup_per_ip_per_day, now
        )
    user = await register(session, username=username, email=email, password=password, locale=locale)
    issued = await sessions.start(session, user.id, settings, now)
    token = await new_verification_link(session, user, settings, now)
    return SignedUp(user, issued, token)


async def new_verification_link(
    session: AsyncSession, user: User, settings: Settings, now: datetime
) -> str:
    return await email_links.issue(
        session, user.id, email_links.VERIFY_EMAIL, settings.email_verify_ttl_s, now
    )


async def resend_verification(
    session: AsyncSession, user_id: int, settings: Settings, now: datetime
) -> tuple[User, str | None]:
    """A fresh verification link for an unverified address, a few times an hour at most;
    no token when there is nothing to send."""
    user = await get_user(session, user_id)
    allowed = user.email_verified_at is None and await throttle.allow_per_hour(
        session, "verify-mail", str(user.id), settings.password_reset_per_hour, now
    )
    token = await new_verification_link(session, user, settings, now) if allowed else None
    return user, token


async def request_password_reset(
    session: AsyncSession, email: str, settings: Settings, now: datetime
) -> tuple[User, str] | None:
    """A reset link for the address's account (earlier ones void), a few an hour at most;
    None when there is no account or the limit is reached (the caller says the same)."""
    user = await repo.find_by_email(session, email)
    if user is None or not await throttle.allow_per_hour(
        session, "reset-mail", str(user.id), settings.password_reset_per_hour, now
    ):
        return None
    await email_links.void_all(session, user.id, email_links.RESET_PASSWORD, now)
    token = await email_links.issue(
        session, user.id, email_links.RESET_PASSWORD, settings.password_reset_ttl_s, now
    )
    return user, token


async def reset_password_and_sign_in(
    session: AsyncSession, token: str, new_password: str, settings: Settings, now: datetime
) -> SignedIn:
    """Set a new password from the emailed link (once); every session ends and this
    browser gets a new one."""
    user = await complete_password_reset(session, token, new_password, now)
    return SignedIn(user, await sessions.start(session, user.id, settings, now))


async def sign_out(
    session: AsyncSession, session_ids: set[str], refresh_token: str | None, now: datetime
) -> None:
    """End the sessions named by the access token and by the refresh token, if any."""
    ended = set(session_ids)
    if refresh_token:
        found = await sessions.session_of_refresh(session, refresh_token)
        if found:
            ended.add(found)
    for session_id in ended:
        await sessions.revoke(session, session_id, "logout", now)


async def sign_out_everywhere(session: AsyncSession, user_id: int, now: datetime) -> None:
    await sessions.revoke_all(session, user_id, "logout_all", now)


def set_locale(user: User, locale: str) -> User:
    """The language we write to the person in."""
    user.locale = locale
    return user
