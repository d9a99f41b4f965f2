"""Assemble the simulator: state, webhook worker, ``/v1`` API, control API, CORS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import SimConfig
from .control import ControlApi
from .routes import ApiEdge
from .state import SimState
from .webhooks import WebhookDeliverer

LOCALHOST_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$"


class Simulator:
    """One simulator instance: its state and its webhook worker."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.deliverer = WebhookDeliverer(config, self._payload_for, self._delivered)
        self.state = SimState(
            sink=self.deliverer,
            async_delay_s=config.async_delay_s,
            invoice_retry_days=tuple(config.invoice_retry_days),
            after_retries=config.after_retries,
        )

    def _payload_for(self, event_id: str) -> bytes | None:
        with self.state.lock:
            event = self.state.store.events.find(event_id)
            if event is None:
                return None
            # Stripe sends pretty-printed JSON; the exact bytes are what is signed.
            return json.dumps(event, indent=2).encode()

    def _delivered(self, event_id: str) -> None:
        with self.state.lock:
            event = self.state.store.events.find(event_id)
            if event is not None:
                event["pending_webhooks"] = 0


def create_sim_app(config: SimConfig) -> ASGIApp:
    """The ASGI app the official ``stripe`` SDK can use as its API base."""
    sim = Simulator(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sim.deliverer.ensure_started()
        yield
        sim.state.later.stop()
        await sim.deliverer.stop()

    api = ApiEdge(sim.state, config, sim.deliverer.ensure_started)
    control = ControlApi(sim.state, sim.deliverer, config, sim.deliverer.ensure_started)
    origins = ["*"] if "*" in config.allowed_origins else list(config.allowed_origins)
    cors = Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_origin_regex=LOCALHOST_ORIGINS,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Request-Id", "Idempotent-Replayed", "Stripe-Version"],
        max_age=600,
    )
    app = Starlette(routes=[*control.routes(), *api.routes()], lifespan=lifespan)
    app.state.simulator = sim
    return _CorsExceptControls(app, cors.cls(app, *cors.args, **cors.kwargs))


class _CorsExceptControls:
    """CORS for the API and Stripe.js, none for ``/_sim/``: no web page may call the
    controls (they hold the webhook secret and change faults), whatever its origin."""

    def __init__(self, app: Starlette, with_cors: ASGIApp) -> None:
        self.app = app
        self.state = app.state
        self._with_cors = with_cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/_sim/"):
            await self.app(scope, receive, send)
        else:
            await self._with_cors(scope, receive, send)
