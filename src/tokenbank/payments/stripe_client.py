"""The one place that talks to Stripe (or the local Stripe server).

The official SDK is used through its async methods on a lean asyncio transport of ours
(:mod:`tokenbank.payments.stripe_http`: the SDK builds and reads every request, the
transport only moves its bytes), so a call to Stripe never blocks the event loop. Every
answer is turned into a small frozen snapshot of plain values straight away; the rest of
the payments code never touches SDK objects. SDK errors become typed payment errors: an
outage is 503 ``stripe_unavailable`` (and never a 500), a refused request is 502
``stripe_error``, an id Stripe refuses or an object it does not have is
``StripeObjectUnusable`` (a ``PaymentNotFound``).
"""

from __future__ import annotations

import logging
import re
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import stripe
from stripe.params import PaymentIntentCreateParamsAutomaticPaymentMethods

from tokenbank.config import Settings
from tokenbank.payments.errors import (
    PaymentsNotConfigured,
    StripeObjectUnusable,
    StripeRequestRefused,
    StripeUnavailable,
)
from tokenbank.payments.models import DisputeStatus, PaymentDisputeState, RefundStatus
from tokenbank.payments.purchase import is_token_purchase
from tokenbank.payments.stripe_http import LeanHTTPClient
from tokenbank.types import utcnow

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

#: Stripe object ids are letters, digits and underscores. An event naming anything else
#: (``pi_../x``) is refused here, without asking Stripe (which would refuse it too).
_STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")

#: The most that one list call returns; longer lists are paged.
_PAGE = 100


@dataclass(frozen=True)
class RefundView:
    """One refund of the intent. Its money counts unless it ``failed`` or was ``canceled``:
    ``succeeded`` and ``pending`` (and ``requires_action``, and any status we do not
    know) count, because the customer has the money or has it on its way, and tokens are
    taken back as soon as the money leaves. A refund that then fails is given back."""

    id: str
    amount: int
    status: str

    @property
    def counts(self) -> bool:
        return self.status not in (RefundStatus.FAILED, RefundStatus.CANCELED)


@dataclass(frozen=True)
class DisputeView:
    """One dispute on the charge, with the money its balance transactions moved.

    ``withdrawn`` and ``reinstated`` are sums of its balance transactions' amounts
    (negative ones withdrawn, positive ones reinstated), which are in the settlement
    currency; ``amount`` is the disputed amount in the charge's currency.
    """

    id: str
    status: str
    amount: int
    withdrawn: int = 0
    reinstated: int = 0

    @property
    def known_status(self) -> DisputeStatus | None:
        return DisputeStatus(self.status) if self.status in _DISPUTE_STATUSES else None

    @property
    def taken_cents(self) -> int:
        """The charge-currency money this dispute keeps from us right now."""
        known = self.known_status
        if known is not None and known.is_inquiry:
            return 0  # an inquiry never moves money, whatever else it carries
        net = self.withdrawn - self.reinstated
        if self.withdrawn <= 0 or net <= 0:
            return 0
        if net >= self.withdrawn:
            return self.amount
        return min(self.amount, -(-self.amount * net // self.withdrawn))  # ceil

    @property
    def state(self) -> PaymentDisputeState:
        known = self.known_status
        if known is None:
            return (
                PaymentDisputeState.FUNDS_WITHDRAWN
                if self.taken_cents
                else PaymentDisputeState.UNKNOWN
            )
        if known in (DisputeStatus.WARNING_NEEDS_RESPONSE, DisputeStatus.WARNING_UNDER_REVIEW):
            return PaymentDisputeState.INQUIRY
        if known in (DisputeStatus.WARNING_CLOSED, DisputeStatus.PREVENTED):
            return PaymentDisputeState.CLOSED
        if known in (DisputeStatus.WON, DisputeStatus.LOST):
            return PaymentDisputeState(known.value)
        return PaymentDisputeState.FUNDS_WITHDRAWN if self.taken_cents else PaymentDisputeState.OPEN


_DISPUTE_STATUSES = frozenset(m.value for m in DisputeStatus)

#: Which dispute describes the payment when there are several: an active one before a
#: decided one, money before no money.
_DISPUTE_PRECEDENCE = (
    PaymentDisputeState.FUNDS_WITHDRAWN,
    PaymentDisputeState.UNKNOWN,
    PaymentDisputeState.OPEN,
    PaymentDisputeState.INQUIRY,
    PaymentDisputeState.LOST,
    PaymentDisputeState.WON,
    PaymentDisputeState.CLOSED,
)


@dataclass(frozen=True)
class FraudWarning:
    """A Radar early fraud warning on the intent's charge."""

    id: str
    charge_id: str
    actionable: bool


@dataclass(frozen=True)
class IntentSnapshot:
    """A PaymentIntent, its latest charge, and every refund and dispute of it, as Stripe
    reports them right now. ``read_at`` is when reading began."""

    id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    metadata: dict[str, str]
    created: int
    last_error_code: str | None = None
    charge_id: str | None = None
    refunds: tuple[RefundView, ...] = ()
    disputes: tuple[DisputeView, ...] = ()
    read_at: datetime = field(default_factory=utcnow)
    client_secret: str | None = field(default=None, repr=False)

    @property
    def is_token_purchase(self) -> bool:
        return is_token_purchase(self.metadata)

    @property
    def refunded_cents(self) -> int:
        return sum(r.amount for r in self.refunds if r.counts)

    @property
    def disputed_cents(self) -> int:
        return sum(d.taken_cents for d in self.disputes)

    @property
    def returned_cents(self) -> int:
        """Money the customer has back, by refund or dispute, never more than they paid."""
        paid = self.amount_received or self.amount
        return min(paid, self.refunded_cents + self.disputed_cents)

    @property
    def dispute_state(self) -> PaymentDisputeState | None:
        states = {d.state for d in self.disputes}
        return next((s for s in _DISPUTE_PRECEDENCE if s in states), None)


def dispute_view(dispute: dict[str, Any]) -> DisputeView:
    """A Stripe dispute reduced to its status and the money its balance transactions moved."""
    withdrawn = reinstated = 0
    for txn in dispute.get("balance_transactions") or []:
        amount = int(txn.get("amount") or 0) if isinstance(txn, dict) else 0
        if amount < 0:
            withdrawn -= amount
        else:
            reinstated += amount
    return DisputeView(
        id=str(dispute.get("id") or ""),
        status=str(dispute.get("status") or ""),
        amount=int(dispute.get("amount") or 0),
        withdrawn=withdrawn,
        reinstated=reinstated,
    )


def refund_view(refund: dict[str, Any]) -> RefundView:
    return RefundView(
        id=str(refund.get("id") or ""),
        amount=int(refund.get("amount") or 0),
        status=str(refund.get("status") or ""),
    )


def checked_id(value: str, what: str) -> str:
    """``value`` if Stripe could name an object so; else the event can never be applied."""
    if not _STRIPE_ID.match(value):
        raise StripeObjectUnusable(f"{what} id {value[:80]!r} is not a Stripe id")
    return value


def _error_code(pi: dict[str, Any]) -> str | None:
    error = pi.get("last_payment_error")
    if not isinstance(error, dict):
        return None
    code = error.get("decline_code") or error.get("code")
    return str(code) if code else None


def snapshot_of(
    pi: dict[str, Any],
    refunds: Iterable[RefundView] = (),
    disputes: Iterable[DisputeView] = (),
    *,
    read_at: datetime | None = None,
) -> IntentSnapshot:
    charge = pi.get("latest_charge")
    charge_obj = charge if isinstance(charge, dict) else {}
    charge_id = charge_obj.get("id") or (charge if isinstance(charge, str) else None)
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
        charge_id=str(charge_id) if charge_id else None,
        refunds=tuple(refunds),
        disputes=tuple(disputes),
        read_at=read_at or utcnow(),
        client_secret=pi.get("client_secret"),
    )


async def _call(request: Awaitable[T], *, missing_ok: bool = False) -> T:
    """Await one SDK call, turning its errors into our typed errors.

    ``missing_ok``: the call reads one object by id, and Stripe saying it has no such
    object is an answer (``StripeObjectUnusable``), not a failure to retry.
    """
    try:
        return await request
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        log.warning("stripe unavailable: %s", type(exc).__name__)
        raise StripeUnavailable() from exc
    except stripe.InvalidRequestError as exc:
        if missing_ok and exc.code == "resource_missing":
            raise StripeObjectUnusable(f"Stripe has no such object ({exc.http_status})") from exc
        log.error("stripe refused a request: %s (%s)", exc.code, exc.http_status)
        raise StripeRequestRefused() from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status == 0:
            log.warning("stripe unavailable: %s %s", type(exc).__name__, status)
            raise StripeUnavailable() from exc
        log.error("stripe refused a request: %s %s", type(exc).__name__, status)
        raise StripeRequestRefused() from exc


#: One SDK call with our typed errors, for the other domains that talk to Stripe through
#: the gateway's client (subscriptions).
stripe_call = _call


class AsyncHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx transport, sending the form body as ``content=`` (the tests' own
    SDK clients use it; the gateway uses :class:`LeanHTTPClient`).

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


def stripe_transport(api_base: str | None) -> LeanHTTPClient | AsyncHTTPXClient:
    """The gateway's HTTP client for Stripe: :class:`LeanHTTPClient`, unless the
    environment routes the API's host through a proxy (``HTTPS_PROXY`` and ``NO_PROXY``),
    which only the SDK's httpx transport honours: then that one, as before."""
    host = urlsplit(api_base or "https://api.stripe.com").hostname or "api.stripe.com"
    proxies = urllib.request.getproxies()
    if (proxies.get("https") or proxies.get("http")) and not urllib.request.proxy_bypass(host):
        return AsyncHTTPXClient(timeout=STRIPE_TIMEOUT_S)
    return LeanHTTPClient(timeout=STRIPE_TIMEOUT_S)


@dataclass(frozen=True)
class CreatedIntent:
    id: str
    client_secret: str = field(repr=False)
    status: str
    #: Why the confirmation at creation failed (a decline, ``authentication_required``).
    error_code: str | None = None


@dataclass(frozen=True)
class SavedCard:
    """A card saved on the person's Stripe Customer."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool


def _declined_intent(exc: BaseException | None) -> CreatedIntent | None:
    """The intent a 402 card error carries (a confirmation at creation that failed)."""
    if not isinstance(exc, stripe.CardError):
        return None
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") or {}
    pi = error.get("payment_intent") if isinstance(error, dict) else None
    if not isinstance(pi, dict) or not isinstance(pi.get("id"), str):
        return None
    return CreatedIntent(
        id=pi["id"],
        client_secret=str(pi.get("client_secret") or ""),
        status=str(pi.get("status") or "requires_payment_method"),
        error_code=str(error.get("decline_code") or error.get("code") or "card_declined"),
    )


class StripeGateway:
    """The SDK client built from Settings, plus the few calls payments make."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: LeanHTTPClient | AsyncHTTPXClient | None = None
        self._client: stripe.StripeClient | None = None
        if settings.stripe_secret_key:
            self._http = stripe_transport(settings.stripe_api_base)
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
            await self._http.close_async()

    async def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        description: str,
        idempotency_key: str,
        customer: str | None = None,
        payment_method: str | None = None,
        off_session: bool | None = None,
        setup_future_usage: str | None = None,
        receipt_email: str | None = None,
    ) -> CreatedIntent:
        """Create a PaymentIntent; with ``payment_method`` it is confirmed at once
        (``off_session``: nobody is at the page). A card declined on that confirmation is
        an answer, not an error: the intent is returned with its status and the decline's
        code (Stripe answers 402 with the intent in the error)."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "automatic_payment_methods": AUTOMATIC_PAYMENT_METHODS,
            "metadata": metadata,
            "description": description,
        }
        if customer is not None:
            params["customer"] = customer
        if setup_future_usage is not None:
            params["setup_future_usage"] = setup_future_usage
        if receipt_email is not None:
            params["receipt_email"] = receipt_email
        if payment_method is not None:
            params["payment_method"] = payment_method
            params["confirm"] = True
            params["off_session"] = bool(off_session)
        try:
            pi = await _call(
                self.client.v1.payment_intents.create_async(
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": idempotency_key},
                )
            )
        except StripeRequestRefused as exc:
            declined = _declined_intent(exc.__cause__)
            if declined is None:
                raise
            return declined
        error_code = _error_code(pi.to_dict()) if pi.last_payment_error else None
        return CreatedIntent(
            id=pi.id, client_secret=pi.client_secret or "", status=pi.status, error_code=error_code
        )

    async def saved_cards(self, customer_id: str) -> list[SavedCard]:
        """The Customer's saved cards, the default one marked."""
        checked_id(customer_id, "customer")
        customer = await _call(
            self.client.raw_request_async("get", f"/v1/customers/{customer_id}"),
            missing_ok=True,
        )
        settings = customer.data.get("invoice_settings") or {}
        default = settings.get("default_payment_method")
        listing = await _call(
            self.client.raw_request_async(
                "get", f"/v1/customers/{customer_id}/payment_methods", type="card", limit=_PAGE
            )
        )
        cards = []
        for pm in listing.data.get("data") or []:
            card = pm.get("card") or {}
            cards.append(
                SavedCard(
                    id=str(pm["id"]),
                    brand=str(card.get("brand") or "card"),
                    last4=str(card.get("last4") or ""),
                    exp_month=int(card.get("exp_month") or 0),
                    exp_year=int(card.get("exp_year") or 0),
                    is_default=pm["id"] == default,
                )
            )
        if cards and not any(c.is_default for c in cards):
            first = cards[0]
            cards[0] = SavedCard(
                first.id, first.brand, first.last4, first.exp_month, first.exp_year, True
            )
        return cards

    async def detach_payment_method(self, payment_method_id: str) -> None:
        checked_id(payment_method_id, "payment method")
        await _call(
            self.client.v1.payment_methods.detach_async(payment_method_id), missing_ok=True
        )

    async def create_test_clock(self, *, name: str, idempotency_key: str) -> str:
        """A Stripe test clock frozen at this minute (test mode only), for a development
        Customer.

        Racing first calls share ``idempotency_key``, and Stripe refuses a key reused with
        other parameters, so the frozen time is the minute, not the second: racing calls
        agree unless they straddle a minute, and then the later one asks again with the
        earlier minute, which is what the first call sent."""
        minute = int(utcnow().timestamp()) // 60 * 60
        try:
            return await self._create_test_clock(name, idempotency_key, minute)
        except StripeRequestRefused as exc:
            if not isinstance(exc.__cause__, stripe.IdempotencyError):
                raise
            return await self._create_test_clock(name, idempotency_key, minute - 60)

    async def _create_test_clock(self, name: str, idempotency_key: str, frozen: int) -> str:
        clock = await _call(
            self.client.v1.test_helpers.test_clocks.create_async(
                {"frozen_time": frozen, "name": name[:300]},
                {"idempotency_key": idempotency_key},
            )
        )
        return clock.id

    async def create_customer(
        self,
        *,
        user_id: int,
        email: str,
        name: str,
        test_clock: str | None,
        idempotency_key: str,
    ) -> str:
        """Stripe's Customer for one of our users (``metadata.user_id`` names the user)."""
        params: dict[str, Any] = {
            "email": email,
            "name": name,
            "metadata": {"user_id": str(user_id)},
        }
        if test_clock is not None:
            params["test_clock"] = test_clock
        customer = await _call(
            self.client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )
        return customer.id

    async def retrieve_intent(self, payment_intent_id: str) -> IntentSnapshot:
        """The intent with its latest charge, every refund and every dispute of it."""
        checked_id(payment_intent_id, "payment intent")
        read_at = utcnow()
        # The SDK's raw request (same request, same errors), read as plain JSON: building
        # its typed objects for the intent, its charge and refunds, only to turn them back
        # into dicts, was most of the CPU the webhook worker spent per event.
        response = await _call(
            self.client.raw_request_async(
                "get",
                f"/v1/payment_intents/{payment_intent_id}",
                expand=["latest_charge", "latest_charge.refunds"],
            ),
            missing_ok=True,
        )
        return await self._complete(response.data, read_at)

    async def list_intents(self, *, created_gte: int) -> AsyncIterator[IntentSnapshot]:
        """Every intent created since ``created_gte`` (unix seconds), all pages.

        Each snapshot's ``read_at`` is when the listing began (later pages are read later,
        so this is the conservative time: a sync that began after it wins).
        """
        read_at = utcnow()
        page = await _call(
            self.client.v1.payment_intents.list_async(
                {
                    "created": {"gte": created_gte},
                    "limit": _PAGE,
                    "expand": ["data.latest_charge", "data.latest_charge.refunds"],
                }
            )
        )
        async for pi in _pages(page):
            yield await self._complete(pi.to_dict(), read_at)

    async def list_events(
        self, *, types: Sequence[str], created_gte: int
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of these types created since ``created_gte`` (newest first), all pages.

        Stripe keeps events for 30 days; older ones are not listed.
        """
        page = await _call(
            self.client.v1.events.list_async(
                {"types": list(types), "created": {"gte": created_gte}, "limit": _PAGE}
            )
        )
        async for event in _pages(page):
            yield dict(event.to_dict())

    async def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """An event as Stripe stores it (for replaying one whose delivery failed)."""
        checked_id(event_id, "event")
        event = await _call(self.client.v1.events.retrieve_async(event_id), missing_ok=True)
        return dict(event.to_dict())

    async def charge_payment_intent(self, charge_id: str) -> str | None:
        """Which intent a charge belongs to (for dispute events that do not say)."""
        checked_id(charge_id, "charge")
        charge = await _call(self.client.v1.charges.retrieve_async(charge_id), missing_ok=True)
        found = charge.payment_intent
        if found is None:
            return None
        return found if isinstance(found, str) else found.id

    async def fraud_warnings(self, payment_intent_id: str) -> list[FraudWarning]:
        """Radar's early fraud warnings on the intent's charges."""
        checked_id(payment_intent_id, "payment intent")
        page = await _call(
            self.client.v1.radar.early_fraud_warnings.list_async(
                {"payment_intent": payment_intent_id, "limit": _PAGE}
            )
        )
        found = []
        async for efw in _pages(page):
            charge = efw.charge
            found.append(
                FraudWarning(
                    id=efw.id,
                    charge_id=charge if isinstance(charge, str) else charge.id,
                    actionable=bool(efw.actionable),
                )
            )
        return found

    async def refund_for_fraud(self, warning: FraudWarning) -> bool:
        """Refund the warned charge in full, once per warning (its id is the idempotency
        key). False when Stripe says there is nothing left to refund or it is disputed."""
        try:
            await _call(
                self.client.v1.refunds.create_async(
                    {
                        "charge": warning.charge_id,
                        "reason": "fraudulent",
                        "metadata": {"early_fraud_warning": warning.id},
                    },
                    {"idempotency_key": f"efw-refund:{warning.id}"},
                )
            )
        except StripeRequestRefused as exc:
            cause = exc.__cause__
            code = cause.code if isinstance(cause, stripe.StripeError) else None
            if code in ("charge_already_refunded", "charge_disputed"):
                return False
            raise
        return True

    async def _complete(self, pi: dict[str, Any], read_at: datetime) -> IntentSnapshot:
        """Add the intent's refunds and disputes, every one of them: the refunds come with
        the charge (``expand``, up to 10), more are listed; disputes are listed."""
        charge = pi.get("latest_charge")
        if not charge:
            return snapshot_of(pi, read_at=read_at)
        pi_id = str(pi["id"])
        embedded = charge.get("refunds") if isinstance(charge, dict) else None
        if isinstance(embedded, dict) and not embedded.get("has_more"):
            refunds = list(embedded.get("data") or [])  # all of them came with the charge
        else:
            refunds = await self._all(
                self.client.v1.refunds.list_async({"payment_intent": pi_id, "limit": _PAGE})
            )
        disputes: list[dict[str, Any]] = []
        if not isinstance(charge, dict) or charge.get("disputed"):
            disputes = await self._all(
                self.client.v1.disputes.list_async({"payment_intent": pi_id, "limit": _PAGE})
            )
        return snapshot_of(
            pi,
            [refund_view(r) for r in refunds],
            [dispute_view(d) for d in disputes],
            read_at=read_at,
        )

    async def _all(self, request: Awaitable[Any]) -> list[dict[str, Any]]:
        page = await _call(request)
        return [obj.to_dict() async for obj in _pages(page)]


async def _pages(page: Any) -> AsyncIterator[Any]:
    """Every object of a list, fetching further pages as the SDK does, errors typed."""
    iterator = page.auto_paging_iter().__aiter__()
    while True:
        try:
            obj = await _call(iterator.__anext__())
        except StopAsyncIteration:
            return
        yield obj


#: Every object of a list, all pages, errors typed (for subscriptions).
pages = _pages
