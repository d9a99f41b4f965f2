"""The service API's caller: an API key from ``Authorization: Bearer tbk_...``.

The key is read on every request (no cache: a revoked key is refused at once), counted
against its own rate limit, and checked for the scope the route needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokenbank.apikeys import service
from tokenbank.apikeys.errors import ApiKeyMissing, InsufficientScope
from tokenbank.apikeys.models import ApiKeyScope
from tokenbank.apikeys.service import KeyView
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.deps import SessionDep
from tokenbank.ratelimit.service import Limiter

_api_key = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="A service API key: `Authorization: Bearer tbk_...`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)]


async def counted_secret(request: Request, credentials: Credentials) -> str:
    """The presented secret, counted against its key's rate limit BEFORE any unit of work
    opens (the count is a transaction or a Redis call of its own, which must not wait on
    the request's). The bucket is named by the secret's hash, which names one key: a key's
    limit, and a limit on guessing for anything else sent."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiKeyMissing()
    secret = credentials.credentials
    settings: Settings = request.app.state.settings
    if settings.rate_limit_enabled:
        limiter: Limiter = request.app.state.limiter
        bucket = service.hash_secret(secret)[:32]
        await limiter.hit(f"apikey:{bucket}", settings.rate_limit_api_key_per_min)
    return secret


SecretDep = Annotated[str, Depends(counted_secret)]


async def api_key_in_request(secret: SecretDep, session: SessionDep) -> KeyView:
    """The key, read in the request's own unit of work (after the count)."""
    return await service.authenticate(session, secret)


async def api_key_alone(request: Request, secret: SecretDep) -> KeyView:
    """The key, read in a short unit of its own: for routes that call Stripe and so must
    not hold a transaction open while they wait."""
    db: Database = request.app.state.db
    async with db.transaction() as session:
        return await service.authenticate(session, secret)


def _checked(key: KeyView, scope: ApiKeyScope) -> KeyView:
    if scope not in key.scopes:
        raise InsufficientScope(scope.value)
    return key


def scoped(scope: ApiKeyScope) -> Any:
    """The caller's key, which must carry ``scope`` (403 ``insufficient_scope``)."""

    async def dependency(key: Annotated[KeyView, Depends(api_key_in_request)]) -> KeyView:
        return _checked(key, scope)

    return Depends(dependency)


def scoped_alone(scope: ApiKeyScope) -> Any:
    """:func:`scoped` for routes that manage their own transactions."""

    async def dependency(key: Annotated[KeyView, Depends(api_key_alone)]) -> KeyView:
        return _checked(key, scope)

    return Depends(dependency)


def any_scope(*scopes: ApiKeyScope) -> Any:
    """The caller's key, which must carry at least one of ``scopes``."""

    async def dependency(key: Annotated[KeyView, Depends(api_key_in_request)]) -> KeyView:
        if not key.scopes & set(scopes):
            raise InsufficientScope(" or ".join(s.value for s in scopes))
        return key

    return Depends(dependency)
