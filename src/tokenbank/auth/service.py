"""Accounts: register, sign in, look up. Never commits (the caller owns the transaction)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth import repository as repo
from tokenbank.auth.errors import EmailTaken, InvalidCredentials, UsernameTaken, UserNotFound
from tokenbank.auth.models import User
from tokenbank.auth.security import hash_password, verify_password
from tokenbank.ledger import service as ledger

SIGNUP_BONUS_DESCRIPTION = "Welcome bonus"


async def register(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    signup_bonus_tokens: int,
    is_admin: bool = False,
) -> User:
    """Create the user, their token account and the sign-up bonus, all or nothing.

    The bonus carries the key ``signup:<user id>``, so it is granted exactly once per
    user however often registration is retried.
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
    if signup_bonus_tokens > 0:
        await ledger.grant(
            session,
            user.id,
            signup_bonus_tokens,
            SIGNUP_BONUS_DESCRIPTION,
            idempotency_key=f"signup:{user.id}",
        )
    return user


async def authenticate(session: AsyncSession, login: str, password: str) -> User:
    user = await repo.find_by_login(session, login)
    ok = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok:
        raise InvalidCredentials()
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await repo.get(session, user_id)
    if user is None:
        raise UserNotFound()
    return user
