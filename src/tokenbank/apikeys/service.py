"""API keys: made with a high-entropy secret shown once, stored as its SHA-256.

A request's key is looked up by that hash on every request (a unique index: one
read-only statement on its own, outside any unit of work — see ``apikeys.deps``) and
compared in constant time; nothing is cached, so a revoked key is refused by the very next
request, in every process.

Every function takes a session (or a row already read) and never commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.apikeys import repository as repo
from tokenbank.apikeys.errors import (
    ApiKeyError,
    ApiKeyNotActive,
    ApiKeyNotFound,
    ApiKeyRevoked,
    InvalidKeyName,
    InvalidScopes,
)
from tokenbank.apikeys.models import ApiKeyScope
from tokenbank.types import utcnow

SECRET_PREFIX = "tbk_"
#: 32 random bytes: guessing one is hopeless, so a fast hash (SHA-256) is enough.
SECRET_BYTES = 32
#: The longest secret we consider (ours are 47 characters); longer is refused unhashed.
MAX_SECRET_CHARS = 128
MAX_NAME = 100
#: Every scope, for a key that may do anything.
ALL_SCOPES = tuple(s.value for s in ApiKeyScope)


@dataclass(frozen=True)
class KeyView:
    id: int
    name: str
    prefix: str
    scopes: frozenset[ApiKeyScope]
    created_at: datetime
    revoked_at: datetime | None
    rotated_from_id: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its secret, which exists only in this answer."""

    key: KeyView
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(scopes: Iterable[str]) -> frozenset[ApiKeyScope]:
    """The scopes named (whitespace and case forgiven); an unknown or no scope is refused."""
    found: set[ApiKeyScope] = set()
    for raw in scopes:
        name = raw.strip().lower()
        if not name:
            continue
        try:
            found.add(ApiKeyScope(name))
        except ValueError:
            raise InvalidScopes(
                f"Unknown scope {raw!r}; use read, charge, grant, checkout."
            ) from None
    if not found:
        raise InvalidScopes()
    return frozenset(found)


def _scopes_text(scopes: frozenset[ApiKeyScope]) -> str:
    return ",".join(sorted(s.value for s in scopes))


def _view(row: Mapping[str, Any]) -> KeyView:
    """From a row of either kind of unit, columns by name."""
    return KeyView(
        id=int(row["id"]),
        name=row["name"],
        prefix=row["prefix"],
        scopes=frozenset(ApiKeyScope(s) for s in row["scopes"].split(",")),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        rotated_from_id=row["rotated_from_id"],
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if not (0 < len(name) <= MAX_NAME):
        raise InvalidKeyName()
    return name


async def create_key(
    session: AsyncSession,
    name: str,
    scopes: Iterable[str],
    *,
    created_by: int | None = None,
    rotated_from: int | None = None,
) -> CreatedKey:
    parsed = parse_scopes(scopes)
    name = _check_name(name)
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    key_id = await repo.insert_key(
        session,
        {
            "name": name,
            "prefix": secret[:12],
            "secret_hash": hash_secret(secret),
            "scopes": _scopes_text(parsed),
            "created_at": now,
            "rotated_from_id": rotated_from,
            "created_by_user_id": created_by,
        },
    )
    row = await repo.get_key(session, key_id)
    assert row is not None
    return CreatedKey(_view(row._mapping), secret)


async def list_keys(session: AsyncSession) -> list[KeyView]:
    return [_view(r._mapping) for r in await repo.list_keys(session)]


async def revoke_key(session: AsyncSession, key_id: int) -> KeyView:
    """Revoke at once (again: a no-op). The next request with the key is refused."""
    if await repo.get_key(session, key_id) is None:
        raise ApiKeyNotFound()
    await repo.revoke(session, key_id, utcnow())
    row = await repo.get_key(session, key_id)
    assert row is not None
    return _view(row._mapping)


async def rotate_key(
    session: AsyncSession, key_id: int, *, created_by: int | None = None
) -> CreatedKey:
    """A new secret with the same name and scopes; the old one is revoked in the same
    unit of work, so exactly one of them works at any moment."""
    row = await repo.get_key(session, key_id, for_update=True)
    if row is None:
        raise ApiKeyNotFound()
    if not await repo.revoke(session, key_id, utcnow()):
        raise ApiKeyNotActive()
    old = _view(row._mapping)
    return await create_key(
        session, old.name, old.scopes, created_by=created_by, rotated_from=old.id
    )


def presented_digest(secret: str) -> str:
    """The hash a presented secret is looked up by; :class:`ApiKeyError` for anything
    that cannot be one of ours (refused before any read)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_CHARS:
        raise ApiKeyError()
    return hash_secret(secret)


def verified(row: Mapping[str, Any] | None, digest: str) -> KeyView:
    """The active key read by ``digest``; :class:`ApiKeyError` when there is none,
    :class:`ApiKeyRevoked` when it was revoked."""
    if row is None or not hmac.compare_digest(row["secret_hash"], digest):
        raise ApiKeyError()
    key = _view(row)
    if not key.active:
        raise ApiKeyRevoked()
    return key
