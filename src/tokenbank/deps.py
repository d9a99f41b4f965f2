"""Request dependencies shared by every domain: settings, the unit of work, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth import sessions as auth_sessions
from tokenbank.auth.errors import AdminRequired, AuthError, InvalidToken, SessionRevoked
from tokenbank.auth.models import User
from tokenbank.auth.security import decode_access_claims
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import user_id_var
from tokenbank.types import utcnow

_bearer = HTTPBearer(auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits when the route returns, rolls back on error.

    Used with ``scope="function"`` so the commit happens BEFORE the response is sent: a
    2xx always means the effect is durable, and a failed commit is an error response.
    """
    db: Database = request.app.state.db
    async with db.transaction() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def current_user_id(
    settings: SettingsDep,
    db: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The caller's user id from the bearer token, once its session is known to be open.

    One primary-key read, a unit of its own (or none while this process
    saw the session open within ``SESSION_CHECK_CACHE_S``), so a signed-out session's
    access token stops working at once rather than when it expires.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError()
    claims = decode_access_claims(credentials.credentials, settings.effective_jwt_secret)
    if not auth_sessions.recently_open(claims, settings.session_check_cache_s):
        if not await auth_sessions.check_open(db, claims, utcnow()):
            raise SessionRevoked()
        auth_sessions.remember_open(claims, settings.session_check_cache_s)
    user_id_var.set(claims.user_id)  # every log line of this request names the caller
    return claims.user_id


UserIdDep = Annotated[int, Depends(current_user_id)]


async def current_user(session: SessionDep, user_id: UserIdDep) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise InvalidToken()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise AdminRequired()
    return user


AdminUser = Annotated[User, Depends(current_admin)]


async def current_admin_id(db: DatabaseDep, user_id: UserIdDep) -> int:
    """Like :func:`current_admin`, for routes that manage their own transactions.

    It reads the user in a short transaction of its own instead of the request's unit of
    work, so that a route opening further transactions does not wait on itself (SQLite
    allows one writer at a time).
    """
    async with db.transaction() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise InvalidToken()
    if not user.is_admin:
        raise AdminRequired()
    return user_id


AdminId = Annotated[int, Depends(current_admin_id)]
