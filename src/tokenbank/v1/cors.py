"""CORS for the widget routes only: the host's pages (``WIDGET_ALLOWED_ORIGINS``) may call
``/api/v1/widget/...`` with a customer token; nothing else of the API opens to them, and
no cookie crosses (credentials are not allowed)."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

WIDGET_PREFIX = "/api/v1/widget/"


class WidgetCORS:
    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(WIDGET_PREFIX):
            await self.cors(scope, receive, send)
            return
        await self.app(scope, receive, send)
