"""The HTTP edge of the service API: parse, authorise (an API key's scope, a widget's
customer token, a hosted link), call one service function, map the result.

- ``/api/v1/...`` — for the host app's server, with an API key.
- ``/api/v1/widget/...`` — for widgets in the host's pages, with a customer token the host
  signed; CORS for ``WIDGET_ALLOWED_ORIGINS``.
- ``/api/v1/checkout`` — for the hosted payment page, with the signed link's token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokenbank.apikeys.deps import any_scope, scoped, scoped_row
from tokenbank.apikeys.models import ApiKeyScope
from tokenbank.config import Settings
from tokenbank.deps import DatabaseDep, GatewayDep, SessionDep, SettingsDep
from tokenbank.errors import error_responses
from tokenbank.ledger.models import Balance, Entry
from tokenbank.ledger.service import Page
from tokenbank.payments import catalog
from tokenbank.ratelimit.flows import Limiter
from tokenbank.v1 import flows
from tokenbank.v1 import repository as v1_repo
from tokenbank.v1 import service as v1
from tokenbank.v1.errors import CheckoutTokenInvalid, WidgetTokenInvalid
from tokenbank.v1.schemas import (
    EXTERNAL_ID_PATTERN,
    BalanceOut,
    ChargeIn,
    CheckoutConfirmOut,
    CheckoutOut,
    CommitIn,
    CommitOut,
    CustomerIn,
    CustomerOut,
    CustomerSubscription,
    CustomerSubscriptionOut,
    GrantIn,
    HoldIn,
    HoldOut,
    PostedOut,
    PurchaseIn,
    PurchaseOut,
    ReleaseOut,
    TierOut,
    TransactionOut,
    TransactionPage,
    WidgetConfirmIn,
    WidgetConfirmOut,
    WidgetPurchaseIn,
    WidgetPurchaseOut,
)
from tokenbank.v1.widgets import WidgetCustomer, WidgetTokens

ExternalId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=EXTERNAL_ID_PATTERN,
        description="The host app's own id for its user",
    ),
]
HoldId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=200)]
Before = Annotated[int | None, Query(ge=1, le=2**62)]

router = APIRouter(
    prefix="/api/v1",
    tags=["v1"],
    responses=error_responses(400, 401, 403, 404, 409, 422, 429, 503),
)
widget_router = APIRouter(
    prefix="/api/v1/widget",
    tags=["v1-widget"],
    responses=error_responses(400, 401, 404, 422, 429, 503),
)
checkout_router = APIRouter(
    prefix="/api/v1/checkout",
    tags=["v1-checkout"],
    responses=error_responses(400, 401, 404, 422, 429, 502, 503),
)

READ = scoped(ApiKeyScope.READ)
CHARGE = scoped(ApiKeyScope.CHARGE)
GRANT = scoped(ApiKeyScope.GRANT)
WRITE_ANY = any_scope(ApiKeyScope.CHARGE, ApiKeyScope.GRANT, ApiKeyScope.CHECKOUT)


def _path_hold_id(request: Request) -> dict[str, Any]:
    """The path's hold id for the key's statement (None unless a valid id: then the route
    reads the hold itself, after the framework's own validation has spoken)."""
    raw = request.path_params.get("hold_id", "")
    hold_id = int(raw) if raw.isascii() and raw.isdigit() else 0
    return {"hold_id": hold_id if 1 <= hold_id <= 2**62 else None}


#: :data:`CHARGE`, and the hold the path names read in the key's own statement.
CHARGE_WITH_HOLD = scoped_row(ApiKeyScope.CHARGE, v1_repo.KEY_WITH_HOLD, _path_hold_id)


def _base_origin(request: Request, settings: Settings) -> str:
    """Where hosted pages live: ``APP_ORIGIN`` (required in production), else this server."""
    return settings.app_origin or str(request.base_url).rstrip("/")


def transaction_out(e: Entry) -> TransactionOut:
    return TransactionOut(
        id=e.id,
        transaction_type=e.transaction_type,
        amount=e.amount,
        balance_after=e.balance_after,
        description=e.description,
        hold_id=e.reservation_id,
        created_at=e.created_at,
    )


def balance_out(external_id: str, b: Balance) -> BalanceOut:
    return BalanceOut(
        external_id=external_id, balance=b.balance, reserved=b.reserved, available=b.available
    )


def hold_out(h: v1.HoldView) -> HoldOut:
    return HoldOut(
        id=h.id,
        external_id=h.external_id,
        amount=h.amount,
        status=h.status,
        description=h.description,
        expires_at=h.expires_at,
        created_at=h.created_at,
        resolved_at=h.resolved_at,
        replayed=h.replayed,
    )


def posted_out(external_id: str, done: v1.Posted) -> PostedOut:
    return PostedOut(
        transaction=transaction_out(done.entry),
        balance=balance_out(external_id, done.balance),
        replayed=done.entry.replayed,
    )


def page_out(page: Page) -> TransactionPage:
    return TransactionPage(
        items=[transaction_out(e) for e in page.items], next_before=page.next_before
    )


# --- with an API key ----------------------------------------------------------------------


@router.put("/customers/{external_id}", operation_id="v1_put_customer", dependencies=[WRITE_ANY])
async def put_customer(
    external_id: ExternalId, session: SessionDep, body: CustomerIn | None = None
) -> CustomerOut:
    """Create the customer on first use (any write scope); again updates email and name."""
    body = body or CustomerIn()
    c = await v1.put_customer(session, external_id, email=body.email, name=body.name)
    return CustomerOut.model_validate(c, from_attributes=True)


@router.get("/customers/{external_id}/balance", operation_id="v1_get_balance", dependencies=[READ])
async def get_balance(external_id: ExternalId, session: SessionDep) -> BalanceOut:
    return balance_out(external_id, await v1.balance(session, external_id))


@router.get(
    "/customers/{external_id}/subscription",
    operation_id="v1_get_subscription",
    dependencies=[READ],
)
async def get_subscription(external_id: ExternalId, session: SessionDep) -> CustomerSubscriptionOut:
    """The customer's monthly plan (the live one, else the latest ended one), or null."""
    found = await v1.subscription(session, external_id)
    return CustomerSubscriptionOut(
        external_id=external_id,
        subscription=(
            None
            if found is None
            else CustomerSubscription.model_validate(found, from_attributes=True)
        ),
    )


@router.get(
    "/customers/{external_id}/transactions",
    operation_id="v1_list_transactions",
    dependencies=[READ],
)
async def list_transactions(
    external_id: ExternalId, session: SessionDep, limit: Limit = 50, before: Before = None
) -> TransactionPage:
    """Newest first; pass ``next_before`` as ``before`` for the next page."""
    return page_out(await v1.transactions(session, external_id, limit=limit, before=before))


@router.post(
    "/customers/{external_id}/holds",
    operation_id="v1_create_hold",
    dependencies=[CHARGE],
    responses=error_responses(402),
)
async def create_hold(external_id: ExternalId, body: HoldIn, db: DatabaseDep) -> HoldOut:
    """Hold tokens before work that is paid only if it succeeds (402 when not enough)."""
    held = await flows.hold(
        db,
        external_id,
        body.amount,
        idempotency_key=body.idempotency_key,
        ttl_s=body.ttl_s,
        description=body.description,
    )
    return hold_out(held)


@router.get("/holds/{hold_id}", operation_id="v1_get_hold", dependencies=[READ])
async def get_hold(hold_id: HoldId, session: SessionDep) -> HoldOut:
    return hold_out(await v1.get_hold(session, hold_id))


@router.post("/holds/{hold_id}/commit", operation_id="v1_commit_hold")
async def commit_hold(
    hold_id: HoldId,
    db: DatabaseDep,
    key_row: Annotated[Mapping[str, Any], CHARGE_WITH_HOLD],
    body: CommitIn | None = None,
) -> CommitOut:
    """Charge the hold, or ``amount`` of it (the rest is released). Idempotent by hold."""
    body = body or CommitIn()
    done = await flows.commit_hold(
        db,
        hold_id,
        amount=body.amount,
        description=body.description,
        found=v1.hold_beside(key_row, hold_id),
    )
    return CommitOut(
        hold=hold_out(done.hold),
        transaction=transaction_out(done.entry),
        charged=-done.entry.amount,
        released=done.released,
        available=done.available,
        replayed=done.entry.replayed,
    )


@router.post("/holds/{hold_id}/release", operation_id="v1_release_hold", dependencies=[CHARGE])
async def release_hold(hold_id: HoldId, db: DatabaseDep) -> ReleaseOut:
    """Give the hold back; again is a no-op; after a commit, 409."""
    hold, released = await flows.release_hold(db, hold_id)
    return ReleaseOut(hold=hold_out(hold), released=released)


@router.post(
    "/customers/{external_id}/charges",
    operation_id="v1_create_charge",
    dependencies=[CHARGE],
    responses=error_responses(402),
)
async def create_charge(external_id: ExternalId, body: ChargeIn, session: SessionDep) -> PostedOut:
    """Deduct at once, no hold (402 when not enough available)."""
    done = await v1.charge(
        session,
        external_id,
        body.amount,
        idempotency_key=body.idempotency_key,
        description=body.description,
    )
    return posted_out(external_id, done)


@router.post(
    "/customers/{external_id}/grants", operation_id="v1_create_grant", dependencies=[GRANT]
)
async def create_grant(external_id: ExternalId, body: GrantIn, session: SessionDep) -> PostedOut:
    done = await v1.grant(
        session,
        external_id,
        body.amount,
        idempotency_key=body.idempotency_key,
        reason=body.reason,
    )
    return posted_out(external_id, done)


@router.post(
    "/customers/{external_id}/purchases",
    operation_id="v1_create_purchase",
    dependencies=[scoped(ApiKeyScope.CHECKOUT)],
    responses=error_responses(502),
)
async def create_purchase(
    external_id: ExternalId,
    body: PurchaseIn,
    request: Request,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> PurchaseOut:
    """Start a card purchase of a tier for the customer: the intent's client secret for
    your own Stripe.js form, or ``hosted_url`` — our payment page, which returns to
    ``return_url``. Tokens arrive when Stripe says the payment succeeded."""
    done = await flows.start_purchase(
        db,
        gateway,
        settings,
        external_id=external_id,
        tier=body.tier,
        idempotency_key=body.idempotency_key,
        return_url=body.return_url,
        base_origin=_base_origin(request, settings),
    )
    p = done.started.payment
    assert done.hosted_url is not None  # a return_url is required here
    return PurchaseOut(
        client_secret=done.started.client_secret,
        payment_intent_id=done.started.payment_intent_id,
        hosted_url=done.hosted_url,
        publishable_key=done.started.publishable_key,
        tier=p.tier,
        tokens=p.tokens,
        amount=p.amount_cents,
        currency=p.currency,
    )


# --- with a widget's customer token -------------------------------------------------------

_widget_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="WidgetToken",
    description="A short-lived customer token the host app signed (see docs/integration.md).",
)


async def widget_customer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_widget_bearer)],
) -> WidgetCustomer:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise WidgetTokenInvalid()
    tokens: WidgetTokens = request.app.state.widget_tokens
    return await tokens.verify(credentials.credentials)


WidgetCustomerDep = Annotated[WidgetCustomer, Depends(widget_customer)]


async def _limit_payment(request: Request, who: str) -> None:
    settings: Settings = request.app.state.settings
    if settings.rate_limit_enabled:
        limiter: Limiter = request.app.state.limiter
        await limiter.hit(f"payment:{who}", settings.rate_limit_payment_per_min)


@widget_router.get("/balance", operation_id="widget_get_balance")
async def widget_balance(customer: WidgetCustomerDep, session: SessionDep) -> BalanceOut:
    return balance_out(customer.external_id, await v1.balance(session, customer.external_id))


@widget_router.get("/transactions", operation_id="widget_list_transactions")
async def widget_transactions(
    customer: WidgetCustomerDep, session: SessionDep, limit: Limit = 50, before: Before = None
) -> TransactionPage:
    page = await v1.transactions(session, customer.external_id, limit=limit, before=before)
    return page_out(page)


@widget_router.get("/tiers", operation_id="widget_get_tiers")
async def widget_tiers(_customer: WidgetCustomerDep, settings: SettingsDep) -> list[TierOut]:
    return [TierOut(id=tier_id, **t.model_dump()) for tier_id, t in settings.pricing_tiers.items()]


@widget_router.post(
    "/purchases", operation_id="widget_create_purchase", responses=error_responses(409, 502)
)
async def widget_purchase(
    body: WidgetPurchaseIn,
    customer: WidgetCustomerDep,
    request: Request,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> WidgetPurchaseOut:
    """A PaymentIntent for the widget's own card form (Stripe.js)."""
    await _limit_payment(request, f"customer:{customer.external_id}")
    done = await flows.start_purchase(
        db,
        gateway,
        settings,
        external_id=customer.external_id,
        tier=body.tier,
        idempotency_key=body.idempotency_key,
        return_url=None,
        base_origin=_base_origin(request, settings),
    )
    p = done.started.payment
    return WidgetPurchaseOut(
        client_secret=done.started.client_secret,
        payment_intent_id=done.started.payment_intent_id,
        publishable_key=done.started.publishable_key,
        stripe_js_url=catalog.stripe_js_url(settings),
        tier=p.tier,
        tokens=p.tokens,
        amount=p.amount_cents,
        currency=p.currency,
    )


@widget_router.post(
    "/confirm", operation_id="widget_confirm_purchase", responses=error_responses(502)
)
async def widget_confirm(
    body: WidgetConfirmIn,
    customer: WidgetCustomerDep,
    request: Request,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> WidgetConfirmOut:
    """Ask Stripe (never the browser) whether the customer's payment succeeded; credit once."""
    await _limit_payment(request, f"customer:{customer.external_id}")
    done = await flows.confirm_for_customer(
        db,
        gateway,
        settings,
        external_id=customer.external_id,
        payment_intent_id=body.payment_intent_id,
    )
    p = done.payment
    return WidgetConfirmOut(
        payment_intent_id=body.payment_intent_id,
        status=p.status,
        credited=p.tokens_credited > 0,
        tokens_added=p.tokens_credited,
        balance=done.balance.balance,
        available=done.balance.available,
    )


# --- with a hosted payment link -----------------------------------------------------------

_link_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="CheckoutLink",
    description="The token in a hosted payment link's fragment (#token=...).",
)


async def link_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_link_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise CheckoutTokenInvalid()
    return credentials.credentials


LinkToken = Annotated[str, Depends(link_token)]


@checkout_router.get("", operation_id="checkout_get")
async def get_checkout(
    token: LinkToken, db: DatabaseDep, gateway: GatewayDep, settings: SettingsDep
) -> CheckoutOut:
    """What the hosted page needs to take the card (price and tokens from our row)."""
    opened = await flows.open_checkout(db, gateway, settings, token)
    p = opened.payment
    return CheckoutOut(
        payment_intent_id=p.payment_intent_id or "",
        client_secret=opened.client_secret,
        publishable_key=settings.stripe_publishable_key,
        stripe_js_url=catalog.stripe_js_url(settings),
        tier=p.tier,
        tokens=p.tokens,
        amount=p.amount_cents,
        currency=p.currency,
        status=p.status,
        return_url=opened.return_url,
    )


@checkout_router.post("/confirm", operation_id="checkout_confirm")
async def confirm_checkout(
    token: LinkToken,
    request: Request,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> CheckoutConfirmOut:
    """Ask Stripe whether the linked payment succeeded; credit once; say where to return."""
    await _limit_payment(request, f"link:{token[-16:]}")
    done, return_url = await flows.confirm_checkout(db, gateway, settings, token)
    p = done.payment
    return CheckoutConfirmOut(
        status=p.status,
        credited=p.tokens_credited > 0,
        tokens_added=p.tokens_credited,
        return_url=return_url,
    )
