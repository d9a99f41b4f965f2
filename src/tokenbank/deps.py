"""Request dependencies shared by every domain's routes: settings, the database and the
request's unit of work, the caller, the rate limits, the Stripe gateway and the AI provider
with the price book in force.

This module is the HTTP edge's one way into process state (``app.state``). Routes import
from here, never from each other; nothing below the routes imports this module. Like the
flows, it owns transactions: the request's unit (:func:`get_session`) and the short
reads that must not wait on it (:func:`current_user_id`, :func:`current_admin_id`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth import sessions as auth_sessions
from tokenbank.auth.errors import AdminRequired, AuthError, InvalidToken, SessionRevoked
from tokenbank.auth.models import User
from tokenbank.auth.security import AccessClaims, decode_access_claims
from tokenbank.chat.providers import AIProvider
from tokenbank.client_address import request_client_key
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import user_id_var
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.pricing import book as pricing_book
from tokenbank.pricing import flows as pricing
from tokenbank.ratelimit.flows import Limiter
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


async def get_gateway(request: Request) -> StripeGateway:
    gateway: StripeGateway = request.app.state.stripe
    return gateway


#: The process's Stripe client (for routes whose flows call Stripe).
GatewayDep = Annotated[StripeGateway, Depends(get_gateway)]


async def get_provider(request: Request) -> AIProvider:
    """The process's AI provider (its model is the price book's default model)."""
    provider: AIProvider = request.app.state.ai_provider
    return provider


ProviderDep = Annotated[AIProvider, Depends(get_provider)]


async def get_price_book(
    db: DatabaseDep, settings: SettingsDep, provider: ProviderDep
) -> pricing_book.Book:
    """The price book this process charges at now (rechecked every ``PRICE_BOOK_CACHE_S``;
    without ``PRICE_BOOK`` the provider's model prices the first version)."""
    return await pricing.current(db, settings, provider.model)


PriceBookDep = Annotated[pricing_book.Book, Depends(get_price_book)]


# --- the caller ------------------------------------------------------------------------


async def _session_open(db: Database, claims: AccessClaims, now: datetime) -> bool:
    """:data:`auth_sessions.OPEN_SESSION` as one statement on its own (``Database.read``:
    no ``BEGIN`` or ``COMMIT`` around it, one round trip; not counted among the units of
    work, which are the app's writes)."""
    row = await db.read(
        auth_sessions.OPEN_SESSION, session_id=claims.session_id, user_id=claims.user_id, now=now
    )
    return row is not None


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
        if not await _session_open(db, claims, utcnow()):
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


# --- rate limits -----------------------------------------------------------------------
# ``dependencies=[limit("login")]`` on a route applies the configured limit: per client
# address for sign-in and sign-up, per user for everything else. The user id is the
# request's own (UserIdDep): FastAPI resolves a dependency once per request, so the bearer
# token is decoded once, for the limiter and the route alike.

LimitName = Literal["login", "register", "payment", "generate", "meter"]


async def get_limiter(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.limiter
    return limiter


#: The process's limiter, for a route that counts under keys of its own
#: (``await limiter.hit(key, limit_per_window)``).
LimiterDep = Annotated[Limiter, Depends(get_limiter)]


def _per_minute(settings: Settings, name: LimitName) -> int:
    return {
        "login": settings.rate_limit_login_per_min,
        "register": settings.rate_limit_register_per_min,
        "payment": settings.rate_limit_payment_per_min,
        "generate": settings.rate_limit_generate_per_min,
        "meter": settings.rate_limit_meter_per_min,
    }[name]


async def _hit(request: Request, name: LimitName, who: str) -> None:
    settings: Settings = request.app.state.settings
    if not settings.rate_limit_enabled:
        return
    limiter: Limiter = request.app.state.limiter
    await limiter.hit(f"{name}:{who}", _per_minute(settings, name))


def limit(name: LimitName) -> Any:
    """The limit ``name`` as a route dependency."""
    if name in ("login", "register"):

        async def by_address(request: Request) -> None:
            await _hit(request, name, f"ip:{request_client_key(request)}")

        return Depends(by_address)

    async def by_user(request: Request, user_id: UserIdDep) -> None:
        await _hit(request, name, f"user:{user_id}")

    return Depends(by_user)
