"""Signed links to the hosted payment page, and the return URLs they may send people to.

A hosted link carries a short-lived token (HS256 with a key derived from ``JWT_SECRET``
for this purpose only, so it is never an access token) naming the customer, the
PaymentIntent and where to return. It travels in the URL's fragment, which browsers send
to no server, log or ``Referer``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import jwt

from tokenbank.config import Settings, normalize_origin
from tokenbank.types import utcnow
from tokenbank.v1.errors import CheckoutTokenInvalid, ReturnUrlNotAllowed

#: How long a hosted payment link works.
CHECKOUT_LINK_TTL_S = 3600
_TYPE = "checkout"


@dataclass(frozen=True)
class CheckoutClaims:
    user_id: int
    payment_intent_id: str
    return_url: str


def check_return_url(settings: Settings, return_url: str) -> str:
    """``return_url`` if it is an http(s) URL on one of the host's configured origins."""
    parts = urlsplit(return_url)
    origin = normalize_origin(f"{parts.scheme}://{parts.netloc}") if parts.netloc else None
    if origin is None or origin not in settings.widget_allowed_origins:
        raise ReturnUrlNotAllowed()
    return return_url


def _key(settings: Settings) -> bytes:
    return hmac.new(
        settings.effective_jwt_secret.encode(), b"tokenbank checkout link", hashlib.sha256
    ).digest()


def sign_link(settings: Settings, claims: CheckoutClaims) -> str:
    now = utcnow()
    payload = {
        "sub": str(claims.user_id),
        "pi": claims.payment_intent_id,
        "ret": claims.return_url,
        "typ": _TYPE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=CHECKOUT_LINK_TTL_S)).timestamp()),
    }
    return jwt.encode(payload, _key(settings), algorithm="HS256")


def read_link(settings: Settings, token: str) -> CheckoutClaims:
    try:
        payload = jwt.decode(
            token,
            _key(settings),
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "pi", "ret", "typ"]},
        )
    except jwt.PyJWTError:
        raise CheckoutTokenInvalid() from None
    if payload.get("typ") != _TYPE:
        raise CheckoutTokenInvalid()
    try:
        return CheckoutClaims(int(payload["sub"]), str(payload["pi"]), str(payload["ret"]))
    except (TypeError, ValueError):
        raise CheckoutTokenInvalid() from None


def hosted_url(base_origin: str, token: str) -> str:
    return f"{base_origin.rstrip('/')}/checkout#token={token}"
