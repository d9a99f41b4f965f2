"""The simulator's own control API (not Stripe's), JSON under ``/_sim/``.

Every control except ``/_sim/health`` requires the server's secret key, sent as the
API takes it (``Authorization: Bearer sk_test_...``; the configured ``api_key``, or
any ``sk_test_`` key when none is configured), and every control POST requires a
``Content-Type: application/json`` body (else 415 ``json_body_required``). The
controls send no CORS headers, so no web page can call them. ``SimServer``'s
shortcuts send the key for you.

==========================================  =========================================
``GET  /_sim/health``                       ``{"ok": true}``
``GET  /_sim/config``                       webhook url and signing secret, retry
                                            settings, current faults
``POST /_sim/webhook``                      ``{"url": str|null, "secret": str|null}``
                                            set the endpoint (secret kept if null)
``GET  /_sim/faults``                       current webhook faults
``POST /_sim/faults``                       replace them: ``{"duplicates": 1,
                                            "duplicates_random": false, "shuffle":
                                            false, "shuffle_window": 10,
                                            "shuffle_hold_s": 0.25, "delay_s": 0,
                                            "fail_first_n": 0, "drop_all": false,
                                            "seed": null}`` (omitted = default)
``GET  /_sim/clock``                        ``{"offset_s", "now"}``
``POST /_sim/clock``                        sim-only: ``{"offset_s": -5184000}`` shifts
                                            the clock objects and events are created
                                            with (here 60 days back); 0 = real time
``GET  /_sim/api_faults``                   current API faults
``POST /_sim/api_faults``                   replace them: ``{"latency_s": 0}``: every
                                            ``/v1`` call answers that many seconds
                                            later (in flight meanwhile)
``POST /_sim/payment_intents/{id}/authenticate``  ``{"outcome": "complete"|"fail",
                                            "client_secret"?}``: the customer's
                                            answer to 3D Secure; returns the intent
``POST /_sim/setup_intents/{id}/authenticate``    the same for a SetupIntent
``POST /_sim/disputes/{id}/close``          ``{"outcome": "won"|"lost"|"warning_closed"|
                                            "escalate"}`` (the last two for inquiries;
                                            won/lost close an inquiry); returns the
                                            dispute
``POST /_sim/disputes/{id}/appeal``         sim-only: a chargeback under review or lost
                                            goes to ``appeal_needs_response`` (funds
                                            stay withdrawn); evidence then moves it to
                                            ``appeal_under_review``, won or lost
``POST /_sim/charges/{id}/dispute``         sim-only: the issuer disputes a charge:
                                            ``{"amount"?, "reason"?: "fraudulent",
                                            "inquiry"?: false, "status"?: "prevented"}``
``POST /_sim/refunds/{id}/transition``      ``{"to": status, "failure_reason"?}``:
                                            move a refund as Stripe would (sim-only;
                                            ``canceled`` is the Dashboard's cancel of
                                            a card refund), with its money and events
``GET  /_sim/later``                        ``{"data": [{what, object, due_in_s}]}``:
                                            Stripe's "some time later" transitions
                                            still to come
``POST /_sim/later/run``                    run them all now → ``{"ran": n}``
``GET  /_sim/deliveries``                   ``{"data": [{event_id, type, attempt,
                                            copy, status_code, outcome, error, url,
                                            at}]}``; outcome is delivered | failed |
                                            fault_dropped | dropped | abandoned
``POST /_sim/webhooks/wait_idle``           ``{"timeout_s": 10}`` → ``{"idle": bool}``
                                            once no delivery is queued or in flight
``POST /_sim/events/{id}/resend``           queue the event for delivery again
``POST /_sim/reset``                        forget every object, event, idempotency
                                            key, later transition, queued delivery,
                                            log entry and fault (webhook and API);
                                            keep keys and the endpoint
==========================================  =========================================

Browser pages: ``GET /_sim/3ds/{id}?client_secret=...&return_url=...`` is the
3D Secure challenge (Complete / Fail buttons; redirects to ``return_url`` with
``payment_intent``, ``payment_intent_client_secret`` and ``redirect_status``),
``GET /_sim/receipts/{charge}`` a receipt. ``GET /v3/`` serves the Stripe.js
stand-in.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from . import disputes, payment_intents, refunds, setup_intents
from .config import ApiFaults, SimConfig, WebhookFaults
from .errors import StripeApiError
from .objects import Obj
from .routes import secret_key_of
from .state import RequestContext, SimState
from .webhooks import WebhookDeliverer

_T = TypeVar("_T")

Handler = Callable[[Request], Awaitable[Response]]


class ControlRequestInvalid(StripeApiError):
    pass


class ControlJsonRequired(StripeApiError):
    """A control POST whose body is not ``application/json`` (a plain HTML form or a
    cross-site ``text/plain`` request cannot send that without a CORS preflight)."""

    status_code = 415
    default_code = "json_body_required"


class ControlApi:
    def __init__(
        self,
        state: SimState,
        deliverer: WebhookDeliverer,
        config: SimConfig,
        on_request: Callable[[], None],
    ) -> None:
        self._state = state
        self._deliverer = deliverer
        self._config = config
        self._on_request = on_request

    def routes(self) -> list[BaseRoute]:
        def r(path: str, handler: Handler, methods: list[str]) -> Route:
            return Route(path, self._guarded(handler), methods=methods)

        return [
            Route("/_sim/health", self.health, methods=["GET"]),
            r("/_sim/config", self.get_config, methods=["GET"]),
            r("/_sim/webhook", self.set_webhook, methods=["POST"]),
            r("/_sim/faults", self.get_faults, methods=["GET"]),
            r("/_sim/faults", self.set_faults, methods=["POST"]),
            r("/_sim/clock", self.get_clock, methods=["GET"]),
            r("/_sim/clock", self.set_clock, methods=["POST"]),
            r("/_sim/api_faults", self.get_api_faults, methods=["GET"]),
            r("/_sim/api_faults", self.set_api_faults, methods=["POST"]),
            r("/_sim/payment_intents/{id}/authenticate", self.authenticate, methods=["POST"]),
            r("/_sim/setup_intents/{id}/authenticate", self.authenticate, methods=["POST"]),
            r("/_sim/disputes/{id}/close", self.close_dispute, methods=["POST"]),
            r("/_sim/disputes/{id}/appeal", self.appeal_dispute, methods=["POST"]),
            r("/_sim/charges/{id}/dispute", self.open_dispute, methods=["POST"]),
            r("/_sim/refunds/{id}/transition", self.transition_refund, methods=["POST"]),
            r("/_sim/later", self.later, methods=["GET"]),
            r("/_sim/later/run", self.run_later, methods=["POST"]),
            r("/_sim/deliveries", self.deliveries, methods=["GET"]),
            r("/_sim/webhooks/wait_idle", self.wait_idle, methods=["POST"]),
            r("/_sim/events/{id}/resend", self.resend_event, methods=["POST"]),
            r("/_sim/reset", self.reset, methods=["POST"]),
            # Pages for a browser (the bank's challenge, a receipt): the client
            # secret in the URL or form is the credential, as on Stripe.
            Route("/_sim/3ds/{id}", self.three_d_secure_page, methods=["GET"]),
            Route("/_sim/3ds/{id}", self.three_d_secure_answer, methods=["POST"]),
            Route("/_sim/receipts/{id}", self.receipt, methods=["GET"]),
            Route("/v3", self.stripe_js, methods=["GET"]),
            Route("/v3/", self.stripe_js, methods=["GET"]),
            Route("/js/v3", self.stripe_js, methods=["GET"]),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """Require the server's secret key, and a JSON body on POST; a StripeApiError the
        handler raises is its answer (the error body, with its status)."""

        async def guarded(request: Request) -> Response:
            try:
                secret_key_of(request, self._config)
                if request.method == "POST":
                    content_type = request.headers.get("content-type", "")
                    if content_type.split(";")[0].strip().lower() != "application/json":
                        raise ControlJsonRequired(
                            "stripe_sim control requests need a JSON body "
                            "(Content-Type: application/json).",
                            param="content-type",
                        )
                    await _json_body(request)  # refuse malformed JSON before acting
                return await handler(request)
            except StripeApiError as exc:
                return _error(exc)

        return guarded

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def get_config(self, request: Request) -> Response:
        d, c = self._deliverer, self._config
        return JSONResponse(
            {
                "webhook_url": d.url,
                "webhook_secret": d.secret,
                "webhook_max_attempts": c.webhook_max_attempts,
                "webhook_backoff_base_s": c.webhook_backoff_base_s,
                "webhook_timeout_s": c.webhook_timeout_s,
                "faults": d.faults.to_json(),
            }
        )

    async def set_webhook(self, request: Request) -> Response:
        body = await _json_body(request)
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str | None) or not isinstance(secret, str | None):
            raise ControlRequestInvalid("url and secret must be strings or null")
        self._deliverer.set_endpoint(url, secret)
        return await self.get_config(request)

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self._deliverer.faults.to_json())

    async def set_faults(self, request: Request) -> Response:
        faults = await _parsed_body(request, WebhookFaults.from_json, "faults")
        self._deliverer.set_faults(faults)
        return JSONResponse(faults.to_json())

    async def get_clock(self, request: Request) -> Response:
        state = self._state
        return JSONResponse({"offset_s": state.clock_offset_s, "now": state.now()})

    async def set_clock(self, request: Request) -> Response:
        offset = (await _json_body(request)).get("offset_s", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ControlRequestInvalid("offset_s must be a number", param="offset_s")
        with self._state.lock:
            self._state.clock_offset_s = float(offset)
        return await self.get_clock(request)

    async def get_api_faults(self, request: Request) -> Response:
        return JSONResponse(self._state.api_faults.to_json())

    async def set_api_faults(self, request: Request) -> Response:
        faults = await _parsed_body(request, ApiFaults.from_json, "api_faults")
        self._state.api_faults = faults
        return JSONResponse(faults.to_json())

    async def authenticate(self, request: Request) -> Response:
        self._on_request()
        body = await _json_body(request)
        outcome = body.get("outcome", "complete")
        if outcome not in ("complete", "fail"):
            raise ControlRequestInvalid("outcome must be 'complete' or 'fail'")
        pi = self._authenticate(request, outcome, body.get("client_secret"))
        return JSONResponse(pi)

    async def close_dispute(self, request: Request) -> Response:
        self._on_request()
        outcome = (await _json_body(request)).get("outcome")
        if outcome not in ("won", "lost", "warning_closed", "escalate"):
            raise ControlRequestInvalid(
                "outcome must be 'won', 'lost', 'warning_closed' or 'escalate'"
            )
        return self._with_dispute(
            request, lambda d: disputes.resolve(self._state, d, outcome, None)
        )

    async def appeal_dispute(self, request: Request) -> Response:
        self._on_request()
        return self._with_dispute(request, lambda d: disputes.appeal(self._state, d))

    def _with_dispute(self, request: Request, change: Callable[[Obj], Obj]) -> Response:
        state = self._state
        with state.lock:
            dispute = state.store.disputes.get(request.path_params["id"], "dispute")
            snapshot = state.store.expand(change(dispute), [])
        return JSONResponse(snapshot)

    async def open_dispute(self, request: Request) -> Response:
        """Sim-only: the issuer disputes a charge (any amount, inquiry, prevented)."""
        self._on_request()
        body = await _json_body(request)
        amount, reason = body.get("amount"), body.get("reason", "fraudulent")
        inquiry, status = body.get("inquiry", False), body.get("status")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise ControlRequestInvalid("amount must be an integer", param="amount")
        if reason not in disputes.REASON_CODES:
            raise ControlRequestInvalid(
                f"reason must be one of {', '.join(disputes.REASON_CODES)}", param="reason"
            )
        if not isinstance(inquiry, bool) or status not in (None, "prevented"):
            raise ControlRequestInvalid("inquiry is a boolean; status may be 'prevented'")
        state = self._state
        with state.lock:
            charge = state.store.charges.get(request.path_params["id"], "charge")
            if charge["status"] != "succeeded":
                raise ControlRequestInvalid("Only a succeeded charge can be disputed.")
            if amount is not None and not 0 < amount <= charge["amount"]:
                raise ControlRequestInvalid(
                    "amount must be between 1 and the charge's amount", param="amount"
                )
            dispute = disputes.open_for(
                state, charge, reason=reason, amount=amount, inquiry=inquiry, status=status
            )
            snapshot = state.store.expand(dispute, [])
        return JSONResponse(snapshot)

    async def transition_refund(self, request: Request) -> Response:
        self._on_request()
        body = await _json_body(request)
        to, reason = body.get("to"), body.get("failure_reason")
        if to not in refunds.STATUSES:
            raise ControlRequestInvalid(f"to must be one of {', '.join(refunds.STATUSES)}")
        if reason is not None and reason not in refunds.FAILURE_REASONS:
            raise ControlRequestInvalid(
                f"failure_reason must be one of {', '.join(refunds.FAILURE_REASONS)}"
            )
        state = self._state
        with state.lock:
            refund = state.store.refunds.get(request.path_params["id"], "refund")
            refunds.transition(state, refund, to, None, failure_reason=reason)
            snapshot = state.store.expand(refund, [])
        return JSONResponse(snapshot)

    async def later(self, request: Request) -> Response:
        return JSONResponse({"data": self._state.later.pending()})

    async def run_later(self, request: Request) -> Response:
        self._on_request()
        return JSONResponse({"ran": self._state.later.run_all()})

    async def deliveries(self, request: Request) -> Response:
        return JSONResponse({"data": self._deliverer.deliveries()})

    async def wait_idle(self, request: Request) -> Response:
        self._on_request()
        timeout = (await _json_body(request)).get("timeout_s", 10.0)
        if not isinstance(timeout, int | float):
            raise ControlRequestInvalid("timeout_s must be a number")
        idle = await self._deliverer.wait_idle(float(timeout))
        return JSONResponse({"idle": idle})

    async def resend_event(self, request: Request) -> Response:
        self._on_request()
        state = self._state
        with state.lock:
            event = state.store.events.get(request.path_params["id"], "event")
            queued = self._deliverer.enqueue(event["id"], event["type"])
            if queued:
                event["pending_webhooks"] = 1
        return JSONResponse({"queued": queued})

    async def reset(self, request: Request) -> Response:
        self._state.reset()
        self._deliverer.reset()
        return JSONResponse({"ok": True})

    async def three_d_secure_page(self, request: Request) -> Response:
        pi_id = request.path_params["id"]
        query = request.query_params
        with self._state.lock:
            store = self._state.store
            pi = (store.setup_intents if pi_id.startswith("seti_") else store.payment_intents).find(
                pi_id
            )
            found = pi is not None and pi["client_secret"] == query.get("client_secret")
            snapshot = dict(pi) if pi is not None and found else None
        if snapshot is None:
            return HTMLResponse(_page("Unknown payment", "<p>No such payment.</p>"), 404)
        return HTMLResponse(_challenge_page(snapshot, query.get("return_url")))

    async def three_d_secure_answer(self, request: Request) -> Response:
        self._on_request()
        form = await request.form()
        outcome = str(form.get("outcome", ""))
        client_secret = str(form.get("client_secret", ""))
        return_url = str(form.get("return_url", "")) or None
        if outcome not in ("complete", "fail"):
            return HTMLResponse(_page("Bad request", "<p>Unknown outcome.</p>"), 400)
        try:
            pi = self._authenticate(request, outcome, client_secret)
        except StripeApiError as exc:
            return HTMLResponse(
                _page("Cannot authenticate", f"<p>{html.escape(exc.message)}</p>"), 400
            )
        status = "succeeded" if pi["status"] == "succeeded" else "failed"
        if return_url:
            kind = pi["object"]  # payment_intent | setup_intent
            query = urlencode(
                {
                    kind: pi["id"],
                    f"{kind}_client_secret": pi["client_secret"],
                    "redirect_status": status,
                }
            )
            separator = "&" if "?" in return_url else "?"
            return RedirectResponse(f"{return_url}{separator}{query}", status_code=303)
        return HTMLResponse(_page("Authentication finished", f"<p>Result: {status}.</p>"))

    async def receipt(self, request: Request) -> Response:
        with self._state.lock:
            charge = self._state.store.charges.find(request.path_params["id"])
            charge = dict(charge) if charge else None
        if charge is None:
            return HTMLResponse(_page("Unknown receipt", "<p>No such charge.</p>"), 404)
        amount = f"{charge['amount'] / 100:.2f} {charge['currency'].upper()}"
        details = charge["payment_method_details"]
        method = details.get("card") or details.get("sepa_debit") or {}
        label = method.get("brand", "SEPA Direct Debit")
        body = (
            f"<p>Amount: <strong>{html.escape(amount)}</strong></p>"
            f"<p>Paid with: {html.escape(label)} •••• {html.escape(method.get('last4', ''))}</p>"
            f"<p>Status: {html.escape(charge['status'])}; refunded "
            f"{charge['amount_refunded'] / 100:.2f}</p>"
            f"<p><code>{html.escape(charge['id'])}</code></p>"
        )
        return HTMLResponse(_page("Receipt", body))

    async def stripe_js(self, request: Request) -> Response:
        source = resources.files("stripe_sim").joinpath("static/stripe.js").read_text()
        return Response(
            source,
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    def _authenticate(self, request: Request, outcome: str, client_secret: Any) -> Obj:
        secret = client_secret if isinstance(client_secret, str) and client_secret else None
        ctx = RequestContext(base_url=str(request.base_url).rstrip("/"))
        state = self._state
        intent_id = request.path_params["id"]
        with state.lock:
            if intent_id.startswith("seti_"):
                intent = setup_intents.authenticate(state, intent_id, outcome, secret, ctx)
            else:
                intent = payment_intents.authenticate(state, intent_id, outcome, secret, ctx)
            return state.store.expand(intent, [])


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ControlRequestInvalid("The body is not valid JSON.", param="body") from None
    if not isinstance(data, dict):
        raise ControlRequestInvalid("The body must be a JSON object.", param="body")
    return data


async def _parsed_body(request: Request, parse: Callable[[dict[str, Any]], _T], param: str) -> _T:
    """The JSON body as ``parse`` reads it; what ``parse`` refuses (TypeError, ValueError) is
    a ControlRequestInvalid of ``param``."""
    data = await _json_body(request)
    try:
        return parse(data)
    except (TypeError, ValueError) as exc:
        raise ControlRequestInvalid(str(exc), param=param) from None


def _error(exc: StripeApiError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status_code)


_STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f8fa;margin:0;display:flex;
min-height:100vh;align-items:center;justify-content:center;color:#1a1f36}
main{background:#fff;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.08);
padding:28px 32px;max-width:420px;width:100%}
h1{font-size:20px;margin:0 0 12px}.badge{display:inline-block;background:#ffde92;
color:#7a4d00;font-size:11px;font-weight:700;padding:2px 8px;border-radius:4px;
letter-spacing:.05em;margin-bottom:12px}
button{font-size:15px;padding:10px 18px;border-radius:6px;border:0;cursor:pointer;margin-right:8px}
.ok{background:#635bff;color:#fff}.fail{background:#e3e8ee;color:#1a1f36}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} · stripe_sim</title><style>{_STYLE}</style></head>"
        f"<body><main><span class='badge'>TEST MODE</span><h1>{html.escape(title)}</h1>"
        f"{body}</main></body></html>"
    )


def _challenge_page(pi: Obj, return_url: str | None) -> str:
    if pi["object"] == "setup_intent":
        what = "saving a card for later payments"
    else:
        amount = f"{pi['amount'] / 100:.2f} {pi['currency'].upper()}"
        what = f"a payment of <strong>{html.escape(amount)}</strong>"
    hidden = (
        f"<input type='hidden' name='client_secret' value='{html.escape(pi['client_secret'])}'>"
        f"<input type='hidden' name='return_url' value='{html.escape(return_url or '')}'>"
    )
    body = (
        f"<p>Simulated 3D Secure challenge for {what}."
        f"</p><p>Choose how the customer answers their bank.</p>"
        f"<form method='post' role='dialog' aria-label='3D Secure authentication'>{hidden}"
        f"<button class='ok' name='outcome' value='complete'>Complete</button>"
        f"<button class='fail' name='outcome' value='fail'>Fail</button></form>"
    )
    return _page("3D Secure authentication", body)
