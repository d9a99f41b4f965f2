"""Run the simulator: blocking (``run_sim``) or in a background thread (``SimServer``)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import asdict, replace
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .app import create_sim_app
from .config import DEFAULT_PORT, SimConfig, WebhookFaults
from .webhooks import new_webhook_secret

#: Seconds an idle connection stays open. Longer than the clients' own idle limit (the
#: stripe SDK's and httpx's pools: 5 s), so the client closes first: a server closing an
#: idle connection just as a client sends on it fails that request before any answer.
KEEP_ALIVE_S = 75


class SimServerError(RuntimeError):
    pass


class WebhooksNotIdle(TimeoutError):
    """Deliveries were still queued or in flight when the wait ran out."""


def run_sim(config: SimConfig, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (the CLI's ``tokenbank stripe-sim``), saying where.

    A missing webhook secret is generated here so it can be printed, as
    ``stripe listen`` does.
    """
    if config.webhook_secret is None:
        config = replace(config, webhook_secret=new_webhook_secret())
    base = f"http://{host}:{port}"
    print(f"stripe_sim listening on {base}  (STRIPE_API_BASE={base})", flush=True)
    print(f"  Stripe.js stand-in: {base}/v3/", flush=True)
    print(f"  webhooks -> {config.webhook_url or '(none; POST /_sim/webhook to set)'}", flush=True)
    print(f"  webhook signing secret: {config.webhook_secret}", flush=True)
    uvicorn.run(create_sim_app(config), host=host, port=port, log_level="info",
                timeout_keep_alive=KEEP_ALIVE_S)


class SimServer:
    """The simulator on 127.0.0.1 in a daemon thread, with control shortcuts.

    >>> with SimServer(SimConfig(webhook_url=...)) as sim:
    ...     client = stripe.StripeClient("sk_test_local", base_addresses={"api": sim.url})
    """

    def __init__(
        self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._http: httpx.Client | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control_key(self) -> str:
        """The secret key the ``/_sim/`` controls accept: the configured one, or any
        ``sk_test_`` key when the server accepts any."""
        return self.config.api_key or "sk_test_stripe_sim_control"

    def start(self, timeout_s: float = 10.0) -> SimServer:
        if self._thread is not None:
            raise SimServerError("already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            create_sim_app(self.config),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="stripe_sim"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SimServerError("stripe_sim did not start")
            time.sleep(0.01)  # polling uvicorn's own flag; there is no event to wait on
        self._http = httpx.Client(
            base_url=self.url,
            timeout=60.0,
            headers={"Authorization": f"Bearer {self.control_key}"},
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._http is not None:
            self._http.close()
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._http, self._socket = None, None, None, None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- control API shortcuts ---------------------------------------

    def authenticate(
        self, pi_id: str, outcome: str = "complete", client_secret: str | None = None
    ) -> dict[str, Any]:
        """Answer a PaymentIntent's or SetupIntent's 3D Secure challenge
        (``complete`` or ``fail``)."""
        body: dict[str, Any] = {"outcome": outcome}
        if client_secret:
            body["client_secret"] = client_secret
        kind = "setup_intents" if pi_id.startswith("seti_") else "payment_intents"
        return self._post(f"/_sim/{kind}/{pi_id}/authenticate", body)

    def close_dispute(self, dispute_id: str, outcome: str = "won") -> dict[str, Any]:
        """Decide a dispute: ``won``/``lost``, or ``warning_closed``/``escalate`` an inquiry."""
        return self._post(f"/_sim/disputes/{dispute_id}/close", {"outcome": outcome})

    def appeal_dispute(self, dispute_id: str) -> dict[str, Any]:
        """Sim-only: send a chargeback (under review or lost) to appeal."""
        return self._post(f"/_sim/disputes/{dispute_id}/appeal", {})

    def open_dispute(
        self,
        charge_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        inquiry: bool = False,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Sim-only: dispute a charge (partial amounts, inquiries, ``prevented``)."""
        body: dict[str, Any] = {"reason": reason, "inquiry": inquiry}
        if amount is not None:
            body["amount"] = amount
        if status is not None:
            body["status"] = status
        return self._post(f"/_sim/charges/{charge_id}/dispute", body)

    def transition_refund(
        self, refund_id: str, to: str, failure_reason: str | None = None
    ) -> dict[str, Any]:
        """Move a refund to ``to`` as Stripe would (sim-only control)."""
        body: dict[str, Any] = {"to": to}
        if failure_reason is not None:
            body["failure_reason"] = failure_reason
        return self._post(f"/_sim/refunds/{refund_id}/transition", body)

    def later(self) -> list[dict[str, Any]]:
        """Stripe's "some time later" transitions still to come."""
        data = self._get("/_sim/later")["data"]
        assert isinstance(data, list)
        return data

    def run_later(self) -> int:
        """Run every scheduled later transition now; return how many ran."""
        return int(self._post("/_sim/later/run", {})["ran"])

    def set_faults(self, faults: WebhookFaults | None = None, **settings: Any) -> dict[str, Any]:
        """Replace the webhook faults; ``set_faults()`` turns them all off."""
        body = asdict(faults) if faults is not None else settings
        return self._post("/_sim/faults", body)

    def set_clock_offset(self, offset_s: float) -> dict[str, Any]:
        """Sim-only: create objects and events ``offset_s`` seconds from real time
        (negative = in the past); ``set_clock_offset(0)`` returns to real time."""
        return self._post("/_sim/clock", {"offset_s": offset_s})

    def set_api_faults(self, latency_s: float = 0.0) -> dict[str, Any]:
        """Slow every ``/v1`` call by ``latency_s`` seconds; ``set_api_faults()`` ends it."""
        return self._post("/_sim/api_faults", {"latency_s": latency_s})

    def set_webhook(self, url: str | None, secret: str | None = None) -> dict[str, Any]:
        return self._post("/_sim/webhook", {"url": url, "secret": secret})

    @property
    def webhook_secret(self) -> str:
        return str(self._get("/_sim/config")["webhook_secret"])

    def wait_webhooks_idle(self, timeout_s: float = 10.0) -> None:
        """Return once no webhook is queued or in flight; raise WebhooksNotIdle."""
        body = {"timeout_s": timeout_s}
        if not self._post("/_sim/webhooks/wait_idle", body, timeout_s + 10)["idle"]:
            raise WebhooksNotIdle(f"webhooks still pending after {timeout_s}s")

    def deliveries(self) -> list[dict[str, Any]]:
        data = self._get("/_sim/deliveries")["data"]
        assert isinstance(data, list)
        return data

    def resend_event(self, event_id: str) -> bool:
        return bool(self._post(f"/_sim/events/{event_id}/resend", {})["queued"])

    def reset(self) -> None:
        self._post("/_sim/reset", {})

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise SimServerError("SimServer is not running")
        return self._http

    def _get(self, path: str) -> dict[str, Any]:
        return self._checked(self._client().get(path))

    def _post(
        self, path: str, body: dict[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        timeout = timeout_s if timeout_s is not None else 60.0
        return self._checked(self._client().post(path, json=body, timeout=timeout))

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        data = response.json()
        if response.status_code >= 400:
            message = data.get("error", {}).get("message", response.text)
            raise SimServerError(f"{response.status_code}: {message}")
        assert isinstance(data, dict)
        return data
