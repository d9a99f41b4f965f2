"""``dependencies=[limit("login")]`` on a route applies the configured limit.

Per client address for sign-in and sign-up; per user for everything else. The user id is
the request's own (:data:`tokenbank.deps.UserIdDep`): FastAPI resolves a dependency once
per request, so the bearer token is decoded once, for the limiter and the route alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Request

from tokenbank.client_address import request_client_key
from tokenbank.config import Settings
from tokenbank.deps import UserIdDep
from tokenbank.ratelimit.service import Limiter

LimitName = Literal["login", "register", "payment", "generate"]


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
