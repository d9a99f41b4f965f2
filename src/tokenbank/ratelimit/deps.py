"""``dependencies=[limit("login")]`` on a route applies the configured limit."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokenbank.auth.errors import AuthError
from tokenbank.auth.security import decode_access_token
from tokenbank.client_address import request_client_key
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ratelimit.service import hit

LimitName = Literal["login", "register", "payment", "generate"]
_bearer = HTTPBearer(auto_error=False)


def _per_minute(settings: Settings, name: LimitName) -> int:
    return {
        "login": settings.rate_limit_login_per_min,
        "register": settings.rate_limit_register_per_min,
        "payment": settings.rate_limit_payment_per_min,
        "generate": settings.rate_limit_generate_per_min,
    }[name]


def limit(name: LimitName) -> Any:
    """Per client address for sign-in/sign-up, per user for everything else."""

    async def _dependency(request: Request) -> None:
        settings: Settings = request.app.state.settings
        if not settings.rate_limit_enabled:
            return
        if name in ("login", "register"):
            who = f"ip:{request_client_key(request)}"
        else:
            credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
            if credentials is None:
                raise AuthError()
            user_id = decode_access_token(credentials.credentials, settings.effective_jwt_secret)
            who = f"user:{user_id}"
        db: Database = request.app.state.db
        # Its own short transaction: the count stands even if the request later fails.
        async with db.transaction() as session:
            await hit(session, f"{name}:{who}", _per_minute(settings, name))

    return Depends(_dependency)
