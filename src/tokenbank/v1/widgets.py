"""Customer tokens for widgets: the host app vouches for who is signed in.

The host signs a short-lived JWT for its signed-in user — ``sub`` = the external id,
``aud`` = ``"tokenbank"``, ``iat`` and ``exp`` at most ``WIDGET_TOKEN_MAX_TTL_S`` apart —
either with HS256 and the shared ``WIDGET_TOKEN_SECRET`` or with RS256 by a key in the
JWKS at ``WIDGET_JWKS_URL``. The widget sends it as ``Authorization: Bearer ...``; the
widget routes accept it for that customer only.

JWKS keys are fetched once and trusted for ``WIDGET_JWKS_CACHE_S``; a token naming a key
id not in the cached set fetches the set again (a host rotating its keys), at most once
per ``WIDGET_JWKS_REFETCH_S`` (made-up key ids cannot make us hammer the host); a failed
fetch answers 503, never a pass.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import jwt

from tokenbank.config import Settings
from tokenbank.v1.errors import JwksUnavailable, WidgetsNotConfigured, WidgetTokenInvalid
from tokenbank.v1.schemas import EXTERNAL_ID_PATTERN

AUDIENCE = "tokenbank"
LEEWAY_S = 30
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)


@dataclass(frozen=True)
class WidgetCustomer:
    external_id: str


class WidgetTokens:
    """One per app process (``app.state.widget_tokens``): checks customer tokens."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        if settings.widget_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.widget_jwks_url,
                cache_jwk_set=True,
                lifespan=int(max(1, settings.widget_jwks_cache_s)),
                timeout=5,
                cooldown_duration=settings.widget_jwks_refetch_s,
            )

    @property
    def configured(self) -> bool:
        return bool(self._settings.widget_token_secret) or self._jwks is not None

    async def verify(self, token: str) -> WidgetCustomer:
        if not self.configured:
            raise WidgetsNotConfigured()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise WidgetTokenInvalid() from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._settings.widget_token_secret:
            key = self._settings.widget_token_secret
        elif alg == "RS256" and self._jwks is not None:
            key = await self._signing_key(token)
        else:
            raise WidgetTokenInvalid()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            raise WidgetTokenInvalid() from None
        return self._customer(claims)

    async def _signing_key(self, token: str) -> Any:
        assert self._jwks is not None
        jwks = self._jwks
        try:
            # PyJWKClient fetches with urllib (blocking): off the event loop.
            signing = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise JwksUnavailable() from None
        except jwt.PyJWTError:  # no such key id, or a malformed token
            raise WidgetTokenInvalid() from None
        return signing.key

    def _customer(self, claims: dict[str, Any]) -> WidgetCustomer:
        iat, exp, sub = claims.get("iat"), claims.get("exp"), claims.get("sub")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise WidgetTokenInvalid()
        if exp - iat > self._settings.widget_token_max_ttl_s:
            raise WidgetTokenInvalid(
                f"Customer tokens may live at most {self._settings.widget_token_max_ttl_s} s."
            )
        if not isinstance(sub, str) or not _EXTERNAL_ID.fullmatch(sub):
            raise WidgetTokenInvalid()
        return WidgetCustomer(sub)
