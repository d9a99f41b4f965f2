"""Password hashing (argon2id) and access tokens (JWT, HS256 only)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokenbank.auth.errors import InvalidToken
from tokenbank.types import utcnow

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# Verifying against this keeps unknown-user logins as slow as wrong-password ones.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def configure_password_hashing(time_cost: int, memory_kib: int) -> None:
    """Set argon2id's cost (RFC 9106's second profile by default: t=3, 64 MiB).

    Existing hashes keep verifying whatever the cost, since each hash records its own
    parameters; tests use a cheap profile so hundreds of sign-ups stay fast.
    """
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost) == (time_cost, memory_kib):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-0")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str


def create_access_token(user_id: int, secret: str, expires_s: int, *, session_id: str) -> str:
    """A short-lived token for the session ``session_id`` (revoking the session ends it)."""
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=expires_s)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_claims(token: str, secret: str) -> AccessClaims:
    """The claims of a valid token; InvalidToken for anything else (alg none included).

    A token without a session id is refused: it could never be revoked.
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "iat"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken() from exc
    sub, sid = claims.get("sub"), claims.get("sid")
    if (
        claims.get("typ") != "access"
        or not isinstance(sub, str)
        or not sub.isdigit()
        or not isinstance(sid, str)
        or not 0 < len(sid) <= 64
    ):
        raise InvalidToken()
    return AccessClaims(int(sub), sid)


def decode_access_token(token: str, secret: str) -> int:
    """The user id in a valid token (signature and expiry only; see ``decode_access_claims``)."""
    return decode_access_claims(token, secret).user_id
