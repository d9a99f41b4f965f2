"""Serving the built web client (SPA fallback) and the security headers on every page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenbank.config import Settings
from tokenbank.errors import error_response

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "client" / "dist"


def stripe_js_origin(settings: Settings) -> str:
    url = settings.stripe_js_url or "https://js.stripe.com/v3/"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    stripe_origin = stripe_js_origin(settings)
    api_origin = stripe_origin
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        api_origin = f"{parts.scheme}://{parts.netloc}"
    connect = " ".join(
        dict.fromkeys(
            ["'self'", stripe_origin, api_origin, "https://api.stripe.com"]
            if not settings.stripe_api_base
            else ["'self'", stripe_origin, api_origin]
        )
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {stripe_origin}",
            f"frame-src 'self' {stripe_origin}",
            f"connect-src {connect}",
            "img-src 'self' data:",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Pure ASGI (no body buffering), so streamed replies pass straight through."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", content_security_policy(settings).encode()),
        ]
        if settings.is_production and settings.hsts_max_age_s > 0:
            # Production is served over HTTPS (behind its TLS proxy): browsers that have
            # seen it once never try plain HTTP again, so a network attacker cannot strip TLS.
            hsts = f"max-age={settings.hsts_max_age_s}; includeSubDomains"
            self.extra.append((b"strict-transport-security", hsts.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.extra if k not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: The framework's documentation pages: when they are off, they are not client routes either.
DOCS_PATHS = frozenset({"docs", "docs/oauth2-redirect", "redoc", "openapi.json"})
#: Longest path segment a file system stores; longer is no page and no file.
MAX_SEGMENT = 255
MAX_PATH = 2048


def _is_page_path(path: str) -> bool:
    """A path that may name a page or a file: no control characters (NUL included), no
    backslash, no segment longer than a file name can be."""
    if len(path) > MAX_PATH or "\\" in path:
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return False
    parts = path.split("/")
    return all(len(part.encode("utf-8", "surrogatepass")) <= MAX_SEGMENT for part in parts)


def _static_file(dist: Path, path: str) -> Path | None:
    try:
        candidate = (dist / path).resolve()
        if candidate.is_file() and dist.resolve() in candidate.parents:
            return candidate
    except (OSError, ValueError):  # a name the file system refuses is no file of ours
        return None
    return None


def mount_client(app: FastAPI, settings: Settings) -> None:
    dist = Path(settings.client_dist) if settings.client_dist else DEFAULT_DIST
    index = dist / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str, request: Request) -> Response:
        if path.startswith("api/") or path == "api":
            return error_response(404, "not_found", "No such API route.")
        # The raw path, not the route's match: "$" lets a trailing newline slip past it.
        if path in DOCS_PATHS or not _is_page_path(request.scope["path"]):
            return error_response(404, "not_found", "No such page.")
        candidate = _static_file(dist, path) if path else None
        if candidate is not None:
            return FileResponse(candidate)
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return error_response(
            404, "client_not_built", "The web client is not built; run `make setup`."
        )
