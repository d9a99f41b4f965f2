"""The real app plus one route that fails unexpectedly, for tests of what a 500 does to
the connection. Run as ``uvicorn failing_app:create --factory`` (settings from the
environment)."""

from __future__ import annotations

from fastapi import FastAPI

from tokenbank.app import create_app

FAILING_PATH = "/api/test-only/fail"


def create() -> FastAPI:
    app = create_app()

    async def fail() -> None:
        raise RuntimeError("an error nobody planned for")

    app.add_api_route(FAILING_PATH, fail, methods=["GET"])
    # Ahead of the web client's catch-all page route, which would answer it otherwise.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
