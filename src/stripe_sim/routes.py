"""The ``/v1`` HTTP edge: keys, parameters, idempotency, expansion, errors.

Each endpoint is one service call; this module does what Stripe does around
every call: authenticate the key (``Authorization: Bearer``/Basic, or a
Stripe.js ``key`` parameter for publishable keys), decode nested form
parameters, replay or refuse reused ``Idempotency-Key``s, apply ``expand[]``
and render errors as Stripe's JSON.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import (
    catalog,
    charges,
    customers,
    disputes,
    events,
    fraud_warnings,
    invoices,
    payment_intents,
    payment_methods,
    refunds,
    setup_intents,
    subscriptions,
    test_clocks,
)
from .config import SimConfig
from .errors import (
    ApiKeyInvalid,
    ApiKeyMissing,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    SecretKeyRequired,
    StripeApiError,
    UnrecognizedUrl,
)
from .ids import random_token
from .objects import API_VERSION, Obj
from .params import Params, decode_body, decode_form
from .state import RequestContext, SimState, StoredResponse

Handler = Callable[[SimState, Params, RequestContext, dict[str, str]], Obj]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    publishable: bool = False  # callable with a pk_test_ key (as Stripe.js does)


class IntentService(Protocol):
    """What PaymentIntents and SetupIntents both answer (their modules)."""

    def create(self, state: SimState, p: Params, ctx: RequestContext) -> Obj: ...
    def list_all(self, state: SimState, p: Params) -> Obj: ...
    def retrieve(self, state: SimState, id_: str, p: Params, ctx: RequestContext) -> Obj: ...
    def update(self, state: SimState, id_: str, p: Params, ctx: RequestContext) -> Obj: ...
    def confirm(self, state: SimState, id_: str, p: Params, ctx: RequestContext) -> Obj: ...
    def cancel(self, state: SimState, id_: str, p: Params, ctx: RequestContext) -> Obj: ...


def _intent_endpoints(base: str, it: IntentService) -> list[Endpoint]:
    """An intent's create, list, retrieve, update, confirm and cancel; Stripe.js (a
    publishable key) may retrieve and confirm."""
    return [
        Endpoint("POST", base, lambda s, p, c, a: it.create(s, p, c)),
        Endpoint("GET", base, lambda s, p, c, a: it.list_all(s, p)),
        Endpoint(
            "GET",
            f"{base}/{{id}}",
            lambda s, p, c, a: it.retrieve(s, a["id"], p, c),
            publishable=True,
        ),
        Endpoint("POST", f"{base}/{{id}}", lambda s, p, c, a: it.update(s, a["id"], p, c)),
        Endpoint(
            "POST",
            f"{base}/{{id}}/confirm",
            lambda s, p, c, a: it.confirm(s, a["id"], p, c),
            publishable=True,
        ),
        Endpoint("POST", f"{base}/{{id}}/cancel", lambda s, p, c, a: it.cancel(s, a["id"], p, c)),
    ]


def _endpoints() -> list[Endpoint]:
    pi, ch, dp, ev, pm = payment_intents, charges, disputes, events, payment_methods
    return [
        *_intent_endpoints("/v1/payment_intents", payment_intents),
        Endpoint(
            "POST",
            "/v1/3ds2/challenge_complete",
            lambda s, p, c, a: pi.challenge_complete(s, p, c),
            publishable=True,
        ),
        Endpoint("GET", "/v1/charges", lambda s, p, c, a: ch.list_all(s, p)),
        Endpoint(
            "GET", "/v1/charges/{id}", lambda s, p, c, a: _no_params(p, ch.retrieve(s, a["id"]))
        ),
        Endpoint("POST", "/v1/charges/{id}", lambda s, p, c, a: ch.update(s, a["id"], p)),
        Endpoint(
            "GET", "/v1/charges/{id}/refunds", lambda s, p, c, a: ch.list_refunds_of(s, a["id"], p)
        ),
        Endpoint("POST", "/v1/refunds", lambda s, p, c, a: ch.create_refund(s, p, c)),
        Endpoint("GET", "/v1/refunds", lambda s, p, c, a: ch.list_refunds(s, p)),
        Endpoint(
            "GET",
            "/v1/refunds/{id}",
            lambda s, p, c, a: _no_params(p, ch.retrieve_refund(s, a["id"])),
        ),
        Endpoint("POST", "/v1/refunds/{id}", lambda s, p, c, a: ch.update_refund(s, a["id"], p)),
        Endpoint(
            "POST",
            "/v1/refunds/{id}/cancel",
            lambda s, p, c, a: _then(p, lambda: refunds.cancel(s, a["id"], c)),
        ),
        Endpoint(
            "POST",
            "/v1/test_helpers/refunds/{id}/expire",
            lambda s, p, c, a: _then(p, lambda: refunds.expire(s, a["id"], c)),
        ),
        Endpoint("GET", "/v1/disputes", lambda s, p, c, a: dp.list_all(s, p)),
        Endpoint(
            "GET", "/v1/disputes/{id}", lambda s, p, c, a: _no_params(p, dp.retrieve(s, a["id"]))
        ),
        Endpoint("POST", "/v1/disputes/{id}", lambda s, p, c, a: dp.update(s, a["id"], p, c)),
        Endpoint("POST", "/v1/disputes/{id}/close", lambda s, p, c, a: dp.close(s, a["id"], p, c)),
        Endpoint(
            "GET",
            "/v1/radar/early_fraud_warnings",
            lambda s, p, c, a: fraud_warnings.list_all(s, p),
        ),
        Endpoint(
            "GET",
            "/v1/radar/early_fraud_warnings/{id}",
            lambda s, p, c, a: _no_params(p, fraud_warnings.retrieve(s, a["id"])),
        ),
        Endpoint("GET", "/v1/events", lambda s, p, c, a: ev.list_all(s, p)),
        Endpoint(
            "GET", "/v1/events/{id}", lambda s, p, c, a: _no_params(p, ev.retrieve(s, a["id"]))
        ),
        Endpoint(
            "POST", "/v1/payment_methods", lambda s, p, c, a: pm.create(s, p), publishable=True
        ),
        Endpoint(
            "GET",
            "/v1/payment_methods/{id}",
            lambda s, p, c, a: _no_params(p, pm.retrieve(s, a["id"])),
        ),
        Endpoint(
            "GET", "/v1/balance_transactions", lambda s, p, c, a: ev.list_balance_transactions(s, p)
        ),
        Endpoint(
            "GET",
            "/v1/balance_transactions/{id}",
            lambda s, p, c, a: _no_params(p, ev.retrieve_balance_transaction(s, a["id"])),
        ),
        *_customer_endpoints(),
        *_billing_endpoints(),
    ]


def _customer_endpoints() -> list[Endpoint]:
    cu = customers
    return [
        Endpoint("POST", "/v1/customers", lambda s, p, c, a: cu.create(s, p, c)),
        Endpoint("GET", "/v1/customers", lambda s, p, c, a: cu.list_all(s, p)),
        Endpoint("GET", "/v1/customers/search", lambda s, p, c, a: cu.search_customers(s, p)),
        Endpoint("GET", "/v1/customers/{id}", lambda s, p, c, a: cu.retrieve(s, a["id"], p)),
        Endpoint("POST", "/v1/customers/{id}", lambda s, p, c, a: cu.update(s, a["id"], p, c)),
        Endpoint("DELETE", "/v1/customers/{id}", lambda s, p, c, a: cu.delete(s, a["id"], p, c)),
        Endpoint(
            "GET",
            "/v1/customers/{id}/payment_methods",
            lambda s, p, c, a: cu.payment_methods_of(s, a["id"], p),
        ),
        Endpoint(
            "GET",
            "/v1/customers/{id}/payment_methods/{pm}",
            lambda s, p, c, a: cu.payment_method_of(s, a["id"], a["pm"], p),
        ),
        Endpoint("GET", "/v1/payment_methods", lambda s, p, c, a: cu.list_payment_methods(s, p)),
        Endpoint(
            "POST",
            "/v1/payment_methods/{id}/attach",
            lambda s, p, c, a: cu.attach_endpoint(s, a["id"], p, c),
        ),
        Endpoint(
            "POST",
            "/v1/payment_methods/{id}/detach",
            lambda s, p, c, a: cu.detach_endpoint(s, a["id"], p, c),
        ),
        *_intent_endpoints("/v1/setup_intents", setup_intents),
    ]


def _billing_endpoints() -> list[Endpoint]:
    ca, sub, inv, clk = catalog, subscriptions, invoices, test_clocks
    clocks = "/v1/test_helpers/test_clocks"
    return [
        Endpoint("POST", "/v1/products", lambda s, p, c, a: ca.create_product(s, p, c)),
        Endpoint("GET", "/v1/products", lambda s, p, c, a: ca.list_products(s, p)),
        Endpoint("GET", "/v1/products/search", lambda s, p, c, a: ca.search_products(s, p)),
        Endpoint(
            "GET", "/v1/products/{id}", lambda s, p, c, a: ca.retrieve_product(s, a["id"], p)
        ),
        Endpoint(
            "POST", "/v1/products/{id}", lambda s, p, c, a: ca.update_product(s, a["id"], p, c)
        ),
        Endpoint(
            "DELETE", "/v1/products/{id}", lambda s, p, c, a: ca.delete_product(s, a["id"], p, c)
        ),
        Endpoint("POST", "/v1/prices", lambda s, p, c, a: ca.create_price(s, p, c)),
        Endpoint("GET", "/v1/prices", lambda s, p, c, a: ca.list_prices(s, p)),
        Endpoint("GET", "/v1/prices/search", lambda s, p, c, a: ca.search_prices(s, p)),
        Endpoint("GET", "/v1/prices/{id}", lambda s, p, c, a: ca.retrieve_price(s, a["id"], p)),
        Endpoint("POST", "/v1/prices/{id}", lambda s, p, c, a: ca.update_price(s, a["id"], p, c)),
        Endpoint("POST", "/v1/subscriptions", lambda s, p, c, a: sub.create(s, p, c)),
        Endpoint("GET", "/v1/subscriptions", lambda s, p, c, a: sub.list_all(s, p)),
        Endpoint(
            "GET", "/v1/subscriptions/search", lambda s, p, c, a: sub.search_subscriptions(s, p)
        ),
        Endpoint(
            "GET", "/v1/subscriptions/{id}", lambda s, p, c, a: sub.retrieve(s, a["id"], p)
        ),
        Endpoint("GET", "/v1/subscription_items", lambda s, p, c, a: sub.list_items(s, p)),
        Endpoint(
            "GET",
            "/v1/subscription_items/{id}",
            lambda s, p, c, a: sub.retrieve_item(s, a["id"], p),
        ),
        Endpoint(
            "POST", "/v1/subscriptions/{id}", lambda s, p, c, a: sub.update(s, a["id"], p, c)
        ),
        Endpoint(
            "DELETE", "/v1/subscriptions/{id}", lambda s, p, c, a: sub.cancel(s, a["id"], p, c)
        ),
        Endpoint("GET", "/v1/invoices", lambda s, p, c, a: inv.list_all(s, p)),
        Endpoint("GET", "/v1/invoices/{id}", lambda s, p, c, a: inv.retrieve(s, a["id"], p)),
        Endpoint("POST", "/v1/invoices/{id}", lambda s, p, c, a: inv.update(s, a["id"], p, c)),
        Endpoint(
            "GET", "/v1/invoices/{id}/lines", lambda s, p, c, a: inv.lines_of(s, a["id"], p)
        ),
        Endpoint("POST", "/v1/invoices/{id}/pay", lambda s, p, c, a: inv.pay(s, a["id"], p, c)),
        Endpoint(
            "POST",
            "/v1/invoices/{id}/void",
            lambda s, p, c, a: inv.void_endpoint(s, a["id"], p, c),
        ),
        Endpoint(
            "GET", "/v1/invoice_payments", lambda s, p, c, a: inv.list_invoice_payments(s, p)
        ),
        Endpoint("POST", clocks, lambda s, p, c, a: clk.create(s, p, c)),
        Endpoint("GET", clocks, lambda s, p, c, a: clk.list_all(s, p)),
        Endpoint("GET", clocks + "/{id}", lambda s, p, c, a: clk.retrieve(s, a["id"], p)),
        Endpoint(
            "DELETE", clocks + "/{id}", lambda s, p, c, a: clk.delete(s, a["id"], p, c)
        ),
        Endpoint(
            "POST", clocks + "/{id}/advance", lambda s, p, c, a: clk.advance(s, a["id"], p, c)
        ),
    ]


def _no_params(p: Params, result: Obj) -> Obj:
    p.finish()
    return result


def _then(p: Params, change: Callable[[], Obj]) -> Obj:
    """Refuse unknown parameters before changing anything."""
    p.finish()
    return change()


class ApiEdge:
    """Turns HTTP requests into service calls under the state lock."""

    def __init__(self, state: SimState, config: SimConfig, on_request: Callable[[], None]) -> None:
        self._state = state
        self._config = config
        self._on_request = on_request  # lets the webhook worker start lazily

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route(ep.path, self._endpoint(ep), methods=[ep.method]) for ep in _endpoints()
        ]
        routes.append(
            Route("/v1/{rest:path}", self._unrecognized, methods=["GET", "POST", "DELETE"])
        )
        return routes

    def _endpoint(self, ep: Endpoint) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(request, ep)

        return endpoint

    async def _unrecognized(self, request: Request) -> Response:
        error = UnrecognizedUrl(request.method, request.url.path)
        return _json(error.body(), error.status_code, "req_" + random_token(14))

    async def _handle(self, request: Request, ep: Endpoint) -> Response:
        self._on_request()
        request_id = "req_" + random_token(14)
        try:
            data = decode_form(request.url.query)
            if request.method == "POST":
                content_type = request.headers.get("content-type", "")
                data.update(decode_body(await request.body(), content_type))
            key, publishable = self._authenticate(request, data)
            if publishable and not ep.publishable:
                raise SecretKeyRequired()
            _check_version(request.headers.get("stripe-version"))
        except StripeApiError as exc:
            return _json(exc.body(), exc.status_code, request_id)
        idempotency_key = request.headers.get("idempotency-key") if ep.method == "POST" else None
        ctx = RequestContext(
            base_url=str(request.base_url).rstrip("/"),
            request_id=request_id,
            idempotency_key=idempotency_key,
            publishable=publishable,
        )
        self._state.base_url = ctx.base_url
        fingerprint = json.dumps([ep.method, ep.path, request.path_params, data], sort_keys=True)
        scope = (key, idempotency_key or "")
        if idempotency_key:
            earlier = self._reserve(scope, fingerprint)
            if earlier is not None:
                status, body, replayed = earlier
                return _json(body, status, request_id, _idempotency_headers(ctx, replayed))
        try:
            latency = self._state.api_faults.latency_s
            if latency > 0:
                await asyncio.sleep(latency)  # injected: the request is in flight meanwhile
            status, body, saved = self._execute(ep, data, ctx, request.path_params)
        except BaseException:
            if idempotency_key:
                self._release(scope)
            raise
        if idempotency_key:
            if saved:
                self._save(scope, fingerprint, status, body)
            else:
                self._release(scope)
        return _json(body, status, request_id, _idempotency_headers(ctx, False))

    def _reserve(self, scope: tuple[str, str], fingerprint: str) -> tuple[int, Obj, bool] | None:
        """Replay, refuse, or mark the key in flight (then None: go ahead).

        As Stripe keeps keys: a finished request's result is replayed for 24 hours;
        the same key with other parameters is an ``idempotency_error``; the same key
        while its first request is still running is a 409 ``idempotency_key_in_use``.
        """
        state = self._state
        with state.lock:
            self._forget_expired()
            stored = state.idempotency.get(scope)
            if stored is None:
                state.idempotency[scope] = StoredResponse(fingerprint, 0, {}, in_flight=True)
                return None
            if stored.in_flight:
                error: StripeApiError = IdempotencyKeyInUse(scope[1])
                return error.status_code, error.body(), False
            if stored.fingerprint != fingerprint:
                error = IdempotencyKeyReused(scope[1])
                return error.status_code, error.body(), False
            return stored.status_code, stored.body, True

    def _save(self, scope: tuple[str, str], fingerprint: str, status: int, body: Obj) -> None:
        with self._state.lock:
            stored = StoredResponse(fingerprint, status, body)
            self._state.idempotency[scope] = stored
            self._state.idempotency_saved.append((stored.saved_at, scope))

    def _release(self, scope: tuple[str, str]) -> None:
        with self._state.lock:
            stored = self._state.idempotency.get(scope)
            if stored is not None and stored.in_flight:
                del self._state.idempotency[scope]

    def _forget_expired(self) -> None:
        """Drop results older than the retention period (oldest first, so O(expired))."""
        horizon = time.monotonic() - self._config.idempotency_ttl_s
        table, saved = self._state.idempotency, self._state.idempotency_saved
        while saved and saved[0][0] < horizon:
            saved_at, scope = saved.popleft()
            stored = table.get(scope)
            if stored is not None and not stored.in_flight and stored.saved_at == saved_at:
                del table[scope]

    def _execute(
        self,
        ep: Endpoint,
        data: dict[str, Any],
        ctx: RequestContext,
        path_params: dict[str, str],
    ) -> tuple[int, Obj, bool]:
        """Run the call under the lock: (status, body, whether its result is kept).

        Stripe keeps the result of every request that started executing, errors and
        declines included; a request refused by parameter validation is not kept, so
        it may be retried with the same key.
        """
        with self._state.lock:
            status, body, validation = self._call(ep, data, ctx, path_params)
            return status, body, not validation

    def _call(
        self, ep: Endpoint, data: dict[str, Any], ctx: RequestContext, path_params: dict[str, str]
    ) -> tuple[int, Obj, bool]:
        params = Params(dict(data))
        try:
            expand = params.str_list("expand") or []
            result = ep.handler(self._state, params, ctx, path_params)
            return 200, self._state.store.expand(result, expand), False
        except StripeApiError as exc:
            return exc.status_code, exc.body(), exc.validation

    def _authenticate(self, request: Request, data: dict[str, Any]) -> tuple[str, bool]:
        """Return (key, is_publishable) or raise Stripe's 401."""
        key = _key_from_header(request.headers.get("authorization", ""))
        body_key = data.pop("key", None)
        if key is None and isinstance(body_key, str) and body_key.startswith("pk_"):
            key = body_key  # Stripe.js sends its publishable key as a parameter
        return check_key(self._config, key)


def check_key(config: SimConfig, key: str | None) -> tuple[str, bool]:
    """Accept the configured keys (any test key when none is configured).

    Returns (key, is_publishable) or raises Stripe's 401.
    """
    if not key:
        raise ApiKeyMissing()
    if key.startswith("pk_test_"):
        if config.publishable_key and key != config.publishable_key:
            raise ApiKeyInvalid(key)
        return key, True
    if key.startswith(("sk_test_", "rk_test_")):
        if config.api_key and key != config.api_key:
            raise ApiKeyInvalid(key)
        return key, False
    raise ApiKeyInvalid(key)


def secret_key_of(request: Request, config: SimConfig) -> str:
    """The request's secret key (``Authorization: Bearer sk_test_...``) or Stripe's 401."""
    key, publishable = check_key(config, _key_from_header(request.headers.get("authorization", "")))
    if publishable or not key.startswith("sk_test_"):
        raise SecretKeyRequired()
    return key


def _check_version(requested: str | None) -> None:
    """This server answers in one API version only (the installed SDK's).

    Without a ``Stripe-Version`` header Stripe uses the account's default version,
    which here is that same one; any other version is refused rather than answered
    in shapes it does not have.
    """
    if requested is not None and requested.strip() != API_VERSION:
        raise StripeApiError(
            f"stripe_sim answers only in API version {API_VERSION}; "
            f"this request asked for {requested!r}.",
            code="api_version_unsupported",
            param="Stripe-Version",
        )


def _key_from_header(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _idempotency_headers(ctx: RequestContext, replayed: bool) -> dict[str, str]:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if ctx.idempotency_key:
        headers["Idempotency-Key"] = ctx.idempotency_key
    return headers


def _json(
    body: Obj, status: int, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION, **(headers or {})}
    return JSONResponse(body, status_code=status, headers=all_headers)
