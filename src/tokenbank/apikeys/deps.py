"""The service API's caller: an API key from ``Authorization: Bearer tbk_...``.

The key is counted against its own rate limit, then read on every request (no cache: a
revoked key is refused at once) as one read-only statement on its own (``Database.read``:
no ``BEGIN``/``COMMIT`` around it, one round trip), before and outside the route's unit of
work, and checked for the scope the route needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokenbank.apikeys import repository, service
from tokenbank.apikeys.errors import ApiKeyMissing, InsufficientScope
from tokenbank.apikeys.models import ApiKeyScope
from tokenbank.apikeys.service import KeyView
from tokenbank.config import Settings
from tokenbank.db import Database, Query
from tokenbank.deps import DatabaseDep
from tokenbank.ratelimit.flows import Limiter

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


async def api_key(secret: SecretDep, db: DatabaseDep) -> KeyView:
    """The active key (after the count): one statement on its own, so no route holds a
    transaction open while it is read, and none waits for one to read it."""
    return await _read_key(db, secret)


async def _read_key(db: Database, secret: str) -> KeyView:
    return (await _read_key_row(db, secret, repository.KEY_BY_HASH, {}))[0]


async def _read_key_row(
    db: Database, secret: str, query: Query, values: Mapping[str, Any]
) -> tuple[KeyView, Mapping[str, Any]]:
    """The active key by ``query`` (the key's columns by name, found by ``secret_hash``,
    maybe more beside them), and its whole row."""
    digest = service.presented_digest(secret)
    row = await db.read(query, secret_hash=digest, **values)
    key = service.verified(row, digest)
    assert row is not None  # verified: a key was found
    return key, row


async def _counted_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    query: Query = repository.KEY_BY_HASH,
    values: Mapping[str, Any] | None = None,
) -> tuple[KeyView, Mapping[str, Any]]:
    """:func:`counted_secret` then :func:`api_key` in one dependency (the framework
    solves each dependency of a request at some cost; these two run on every service
    API call): the count first, then the read, as ever."""
    secret = await counted_secret(request, credentials)
    database: Database = request.app.state.db
    return await _read_key_row(database, secret, query, values or {})


def _checked(key: KeyView, scope: ApiKeyScope) -> KeyView:
    if scope not in key.scopes:
        raise InsufficientScope(scope.value)
    return key


def scoped(scope: ApiKeyScope) -> Any:
    """The caller's key, which must carry ``scope`` (403 ``insufficient_scope``). The key
    is read on its own, so this fits routes with a unit of work per request and routes
    that own their transactions (Stripe calls) alike."""

    async def dependency(request: Request, credentials: Credentials) -> KeyView:
        return _checked((await _counted_key(request, credentials))[0], scope)

    return Depends(dependency)


def scoped_row(
    scope: ApiKeyScope, query: Query, values: Callable[[Request], Mapping[str, Any]]
) -> Any:
    """:func:`scoped`, with the key read by ``query``: the key's columns (found by
    ``secret_hash``) and more on the same row — what the route reads next, found by
    ``values(request)`` (the raw path, say), so that the key check and that read are one
    statement. The dependency's value is the row; the key is refused (401, 403) before
    the route sees any of it, exactly as with :func:`scoped`."""

    async def dependency(request: Request, credentials: Credentials) -> Mapping[str, Any]:
        key, row = await _counted_key(request, credentials, query, values(request))
        _checked(key, scope)
        return row

    return Depends(dependency)


def any_scope(*scopes: ApiKeyScope) -> Any:
    """The caller's key, which must carry at least one of ``scopes``."""

    async def dependency(request: Request, credentials: Credentials) -> KeyView:
        key = (await _counted_key(request, credentials))[0]
        if not key.scopes & set(scopes):
            raise InsufficientScope(" or ".join(s.value for s in scopes))
        return key

    return Depends(dependency)
