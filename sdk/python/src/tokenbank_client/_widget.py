"""Customer tokens for tokenbank's widgets, signed by the host app for its signed-in user.

A widget in the browser calls ``/api/v1/widget/...`` with ``Authorization: Bearer
<token>``; tokenbank checks the HS256 signature with the secret it shares with the host
(``WIDGET_TOKEN_SECRET``) and serves that customer only. Short-lived on purpose: mint one
per page load. Made with the standard library (no JWT dependency for one algorithm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

AUDIENCE = "tokenbank"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def customer_token(
    secret: str, external_id: str, *, ttl_s: int = 600, now: float | None = None
) -> str:
    """An HS256 JWT naming ``external_id`` (``sub``) for ``ttl_s`` seconds."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": external_id, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_s}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
