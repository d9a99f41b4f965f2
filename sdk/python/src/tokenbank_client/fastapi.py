"""FastAPI glue: the client on the app, a hold around a route, billing errors as responses.

    billing = AsyncTokenbank()
    install(app, billing)

    @app.post("/chat")
    async def chat(hold: ActiveHold = hold_tokens(1, current_user_id)) -> Reply: ...

``hold_tokens`` holds before the route runs (a 402 ``insufficient_tokens`` response when
the customer lacks them, and the route never runs), commits when the route returns and
releases when it raises, all before the response is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from tokenbank_client._async import AsyncTokenbank
from tokenbank_client._errors import APIError, InsufficientTokens, RateLimited, TokenbankError
from tokenbank_client._hold import ActiveHold

# Errors the person in front of the host app can act on are passed through as the server
# wrote them; the rest (a bad key, tokenbank down) are the host's problem: a 503.
PASSED_THROUGH: tuple[type[APIError], ...] = (InsufficientTokens, RateLimited)


def install(app: FastAPI, client: AsyncTokenbank) -> None:
    """Put ``client`` on ``app`` (closed at shutdown) and render billing errors."""
    app.state.tokenbank = client
    app.add_exception_handler(TokenbankError, _error_response)
    app.router.add_event_handler("shutdown", client.close)


def get_billing(request: Request) -> AsyncTokenbank:
    """Dependency: the app's client (see :func:`install`)."""
    client = getattr(request.app.state, "tokenbank", None)
    if not isinstance(client, AsyncTokenbank):
        raise RuntimeError("call tokenbank_client.fastapi.install(app, client) first")
    return client


def hold_tokens(amount: int, customer: Callable[..., Any]) -> Any:
    """A dependency holding ``amount`` tokens of the customer ``customer`` (a dependency
    returning your user id) around the route: see the module docstring."""

    async def dependency(
        request: Request, external_id: Any = Depends(customer)
    ) -> AsyncIterator[ActiveHold]:
        async with get_billing(request).hold(str(external_id), amount) as hold:
            yield hold

    return Depends(dependency, scope="function")


async def _error_response(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, PASSED_THROUGH):
        return JSONResponse(exc.body or {"error": {"code": exc.code, "message": exc.message}},
                            status_code=exc.status_code)
    return JSONResponse(
        {"error": {"code": "billing_unavailable", "message": "Billing is not available."}},
        status_code=503,
    )
