"""The one place that talks to Stripe (or the local Stripe server).

The official SDK is used through its async methods on an httpx async client, so a call
to Stripe never blocks the event loop. Every answer is turned into a small frozen
snapshot of plain values straight away; the rest of the payments code never touches SDK
objects. SDK errors become typed payment errors: an outage is 503 ``stripe_unavailable``
(and never a 500), a refused request is 502 ``stripe_error``, a missing object is
``PaymentNotFound``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stripe
from stripe.params import PaymentIntentCreateParamsAutomaticPaymentMethods

from tokenbank.config import Settings
from tokenbank.payments.errors import (
    PaymentNotFound,
    PaymentsNotConfigured,
    StripeRequestRefused,
    StripeUnavailable,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The Stripe API version every request asks for, and the one to choose for the webhook
#: endpoint (docs/operations.md): the version of the SDK we install (stripe 16.x), whose
#: types describe exactly these shapes. Pinned so that an account default changed in the
#: Dashboard never changes what Stripe sends us.
STRIPE_API_VERSION = "2026-10-28.endive"
#: What the Payment Element offers: the Dashboard's cards, wallets and bank debits, but no
#: method that leaves our page for a redirect (see docs/operations.md, "Payment methods").
AUTOMATIC_PAYMENT_METHODS: PaymentIntentCreateParamsAutomaticPaymentMethods = {
    "enabled": True,
    "allow_redirects": "never",
}

#: A request to Stripe that takes longer than this is treated as an outage.
STRIPE_TIMEOUT_S = 20.0
#: The SDK retries connection errors and 409/5xx answers (with idempotency keys) itself.
STRIPE_NETWORK_RETRIES = 1

#: Dispute statuses in which Stripe has not decided yet.
OPEN_DISPUTE_STATUSES = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)


@dataclass(frozen=True)
class DisputeState:
    """What a dispute means for the tokens, in our own words.

    ``status`` is one of ``open`` (no money moved yet), ``funds_withdrawn`` (Stripe took
    the money back and has not returned it), ``won`` (money reinstated), ``lost`` (money
    stays withdrawn) or ``closed`` (an inquiry closed without a chargeback).
    """

    dispute_id: str
    status: str

    @property
    def funds_withdrawn(self) -> bool:
        return self.status in ("funds_withdrawn", "lost")


@dataclass(frozen=True)
class IntentSnapshot:
    """A PaymentIntent and its latest charge as Stripe reports them right now."""

    id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    metadata: dict[str, str]
    created: int
    last_error_code: str | None = None
    charge_id: str | None = None
    amount_refunded: int = 0
    disputed: bool = False
    dispute: DisputeState | None = None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def is_token_purchase(self) -> bool:
        return self.metadata.get("type") == "token_purchase"


def dispute_state(dispute: dict[str, Any]) -> DisputeState:
    """Classify a Stripe dispute by where its money is, not merely whether it is open."""
    status = str(dispute.get("status") or "")
    net = 0
    for txn in dispute.get("balance_transactions") or []:
        if isinstance(txn, dict):
            net += int(txn.get("amount") or 0)
    if status in ("won", "lost"):
        ours = status
    elif status in OPEN_DISPUTE_STATUSES:
        ours = "funds_withdrawn" if net < 0 else "open"
    else:  # warning_closed, prevented: an inquiry that never became a chargeback
        ours = "closed"
    return DisputeState(dispute_id=str(dispute.get("id") or ""), status=ours)


def _error_code(pi: dict[str, Any]) -> str | None:
    error = pi.get("last_payment_error")
    if not isinstance(error, dict):
        return None
    code = error.get("decline_code") or error.get("code")
    return str(code) if code else None


def snapshot_of(pi: dict[str, Any], dispute: DisputeState | None = None) -> IntentSnapshot:
    charge = pi.get("latest_charge")
    charge_obj = charge if isinstance(charge, dict) else {}
    metadata = pi.get("metadata") or {}
    return IntentSnapshot(
        id=str(pi["id"]),
        status=str(pi["status"]),
        amount=int(pi["amount"]),
        amount_received=int(pi.get("amount_received") or 0),
        currency=str(pi["currency"]).lower(),
        metadata={str(k): str(v) for k, v in metadata.items()},
        created=int(pi.get("created") or 0),
        last_error_code=_error_code(pi),
        charge_id=str(charge_obj["id"]) if charge_obj.get("id") else None,
        amount_refunded=int(charge_obj.get("amount_refunded") or 0),
        disputed=bool(charge_obj.get("disputed")),
        dispute=dispute,
        client_secret=pi.get("client_secret"),
    )


async def _call(request: Awaitable[T], *, missing_ok: bool = False) -> T:
    """Await one SDK call, turning its errors into our typed errors."""
    try:
        return await request
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        log.warning("stripe unavailable: %s", type(exc).__name__)
        raise StripeUnavailable() from exc
    except stripe.InvalidRequestError as exc:
        if missing_ok and exc.code == "resource_missing":
            raise PaymentNotFound() from exc
        log.error("stripe refused a request: %s (%s)", exc.code, exc.http_status)
        raise StripeRequestRefused() from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status == 0:
            log.warning("stripe unavailable: %s %s", type(exc).__name__, status)
            raise StripeUnavailable() from exc
        log.error("stripe refused a request: %s %s", type(exc).__name__, status)
        raise StripeRequestRefused() from exc


class AsyncHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx transport, sending the form body as ``content=``.

    The SDK passes its already-encoded form body as ``data=``, which httpx deprecates for
    raw bytes/text (and will drop); ``content=`` sends the very same bytes.
    """

    def _get_request_args_kwargs(  # type: ignore[no-untyped-def]
        self, method: str, url: str, headers, post_data
    ):
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs.pop("data", None)
        if post_data:
            kwargs["content"] = post_data
        return args, kwargs


@dataclass(frozen=True)
class CreatedIntent:
    id: str
    client_secret: str = field(repr=False)
    status: str


class StripeGateway:
    """The SDK client built from Settings, plus the few calls payments make."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: AsyncHTTPXClient | None = None
        self._client: stripe.StripeClient | None = None
        if settings.stripe_secret_key:
            self._http = AsyncHTTPXClient(timeout=STRIPE_TIMEOUT_S)
            bases: dict[str, str] = {}
            if settings.stripe_api_base:
                bases["api"] = settings.stripe_api_base.rstrip("/")
            self._client = stripe.StripeClient(
                settings.stripe_secret_key,
                base_addresses=bases,  # type: ignore[arg-type]
                http_client=self._http,
                max_network_retries=STRIPE_NETWORK_RETRIES,
                stripe_version=STRIPE_API_VERSION,
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    def require_configured(self) -> None:
        if self._client is None:
            raise PaymentsNotConfigured()

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            raise PaymentsNotConfigured()
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        description: str,
        idempotency_key: str,
    ) -> CreatedIntent:
        pi = await _call(
            self.client.v1.payment_intents.create_async(
                {
                    "amount": amount,
                    "currency": currency,
                    "automatic_payment_methods": AUTOMATIC_PAYMENT_METHODS,
                    "metadata": metadata,
                    "description": description,
                },
                {"idempotency_key": idempotency_key},
            )
        )
        return CreatedIntent(id=pi.id, client_secret=pi.client_secret or "", status=pi.status)

    async def retrieve_intent(self, payment_intent_id: str) -> IntentSnapshot:
        """The intent with its latest charge, and the dispute when the charge has one."""
        pi = await _call(
            self.client.v1.payment_intents.retrieve_async(
                payment_intent_id, {"expand": ["latest_charge"]}
            ),
            missing_ok=True,
        )
        return await self._complete(pi.to_dict())

    async def list_intents(self, *, created_gte: int) -> AsyncIterator[IntentSnapshot]:
        """Every intent created since ``created_gte`` (unix seconds), all pages."""
        page = await _call(
            self.client.v1.payment_intents.list_async(
                {"created": {"gte": created_gte}, "limit": 100, "expand": ["data.latest_charge"]}
            )
        )
        iterator = page.auto_paging_iter().__aiter__()
        while True:
            try:
                pi = await _call(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield await self._complete(pi.to_dict())

    async def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """An event as Stripe stores it (for replaying one whose delivery failed)."""
        event = await _call(self.client.v1.events.retrieve_async(event_id), missing_ok=True)
        return dict(event.to_dict())

    async def charge_payment_intent(self, charge_id: str) -> str | None:
        """Which intent a charge belongs to (for dispute events that do not say)."""
        charge = await _call(self.client.v1.charges.retrieve_async(charge_id), missing_ok=True)
        found = charge.payment_intent
        if found is None:
            return None
        return found if isinstance(found, str) else found.id

    async def _complete(self, pi: dict[str, Any]) -> IntentSnapshot:
        charge = pi.get("latest_charge")
        dispute = None
        if isinstance(charge, dict) and charge.get("disputed"):
            dispute = await self._latest_dispute(str(pi["id"]))
        return snapshot_of(pi, dispute)

    async def _latest_dispute(self, payment_intent_id: str) -> DisputeState | None:
        page = await _call(
            self.client.v1.disputes.list_async({"payment_intent": payment_intent_id, "limit": 1})
        )
        if not page.data:
            return None
        return dispute_state(page.data[0].to_dict())
