"""The HTTP edge of payments: parse, authorise, call one service function, map the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from tokenbank import balance_watch
from tokenbank.background import Waker
from tokenbank.deps import DatabaseDep, GatewayDep, SessionDep, SettingsDep, UserIdDep, limit
from tokenbank.errors import error_responses
from tokenbank.payments import catalog, flows, service
from tokenbank.payments.autotopup import AutoTopupChoice, AutoTopupView
from tokenbank.payments.models import AckStatus
from tokenbank.payments.schemas import (
    STRIPE_ID_PATTERN,
    AutoTopupIn,
    AutoTopupOut,
    AutoTopupThisMonth,
    ConfirmPaymentRequest,
    ConfirmPaymentResponse,
    CreatePaymentIntentRequest,
    CreatePaymentIntentResponse,
    PaymentConfigOut,
    PaymentOut,
    PaymentPage,
    SavedPaymentMethodOut,
    SavedPaymentMethods,
    TestCardOut,
    TierOut,
    WebhookAck,
)
from tokenbank.payments.sync import PaymentView

router = APIRouter(
    prefix="/api/payment",
    tags=["payments"],
    responses=error_responses(400, 401, 404, 409, 422, 429, 502, 503),
)


def payment_out(p: PaymentView) -> PaymentOut:
    return PaymentOut(**vars(p), amount=p.amount_cents, amount_refunded=p.amount_refunded_cents)


@router.get("/pricing-tiers", operation_id="get_pricing_tiers")
async def pricing_tiers(settings: SettingsDep) -> dict[str, TierOut]:
    return {
        tier_id: TierOut.model_validate(t, from_attributes=True)
        for tier_id, t in settings.pricing_tiers.items()
    }


@router.get("/config", operation_id="get_payment_config")
async def payment_config(settings: SettingsDep) -> PaymentConfigOut:
    return PaymentConfigOut(
        publishable_key=settings.stripe_publishable_key,
        mode=catalog.stripe_mode(settings),
        stripe_js_url=catalog.stripe_js_url(settings),
        test_cards=[
            TestCardOut(number=c.number, brand=c.brand, description=c.description)
            for c in catalog.cards_for(settings)
        ],
        configured=bool(settings.stripe_secret_key and settings.stripe_publishable_key),
    )


@router.post(
    "/create-payment-intent",
    operation_id="create_payment_intent",
    dependencies=[limit("payment")],
)
async def create_payment_intent(
    body: CreatePaymentIntentRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> CreatePaymentIntentResponse:
    started = await flows.create_payment_intent(
        db,
        gateway,
        settings,
        user_id=user_id,
        tier_id=body.tier,
        client_key=idempotency_key,
        payment_method_id=body.payment_method_id,
        save_card=bool(body.save_card),
    )
    p = started.payment
    return CreatePaymentIntentResponse(
        client_secret=started.client_secret,
        payment_intent_id=started.payment_intent_id,
        amount=p.amount_cents,
        currency=p.currency,
        tokens=p.tokens,
        publishable_key=started.publishable_key,
        tier=p.tier,
        status=started.status,
    )


@router.post(
    "/confirm-payment",
    operation_id="confirm_payment",
    # Each call may ask Stripe, whose request quota is the merchant's: limited per user.
    dependencies=[limit("payment")],
)
async def confirm_payment(
    body: ConfirmPaymentRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> ConfirmPaymentResponse:
    done = await flows.confirm_payment(
        db, gateway, settings, user_id=user_id, payment_intent_id=body.payment_intent_id
    )
    p = done.payment
    return ConfirmPaymentResponse(
        status=p.status,
        tokens_added=p.tokens_credited,
        balance=done.balance.balance,
        available=done.balance.available,
        payment_intent_id=body.payment_intent_id,
        tokens=p.tokens,
        credited=p.tokens_credited > 0,
        reversed_tokens=p.reversed_tokens,
    )


@router.get("/payments", operation_id="list_payments")
async def list_payments(
    user_id: UserIdDep,
    session: SessionDep,
    limit_: Annotated[int, Query(alias="limit", ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> PaymentPage:
    items, next_before = await service.list_payments(session, user_id, limit=limit_, before=before)
    return PaymentPage(items=[payment_out(p) for p in items], next_before=next_before)


@router.get("/payments/{payment_intent_id}", operation_id="get_payment")
async def get_payment(
    user_id: UserIdDep,
    session: SessionDep,
    payment_intent_id: Annotated[
        str, Path(min_length=1, max_length=255, pattern=STRIPE_ID_PATTERN)
    ],
) -> PaymentOut:
    return payment_out(await service.owned_intent(session, user_id, payment_intent_id))


#: The Stripe webhook alone, included by the app ahead of every other router: Stripe posts
#: every event of the account, and the framework tries the routes in order.
webhook_router = APIRouter(prefix=router.prefix, tags=router.tags, responses=router.responses)


@webhook_router.post("/webhook", operation_id="stripe_webhook", response_model=WebhookAck)
async def stripe_webhook(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> Response:
    """Answers 2xx once the event is durably recorded in the inbox (no Stripe call here;
    the event's unit of work has committed when ``acknowledge`` returns); the process's
    webhook worker applies it. A bad signature or body is a 400."""
    result = await flows.acknowledge(db, settings, await request.body(), stripe_signature)
    if result.status == AckStatus.RECEIVED:
        worker: Waker | None = getattr(request.app.state, "webhook_worker", None)
        if worker is not None:
            worker.notify()  # committed already: the worker finds the event
    # The answer serialized here, as the declared model: the framework's response
    # validation and encoding cost more than the insert's Python.
    ack = WebhookAck(event_id=result.event_id, status=AckStatus(result.status))
    return Response(ack.model_dump_json(), media_type="application/json")


@router.get(
    "/saved-payment-methods",
    operation_id="list_saved_payment_methods",
    # Each call asks Stripe, whose request quota is the merchant's: limited per user.
    dependencies=[limit("payment")],
)
async def list_saved_payment_methods(
    user_id: UserIdDep, db: DatabaseDep, gateway: GatewayDep
) -> SavedPaymentMethods:
    cards = await flows.saved_cards(db, gateway, user_id)
    return SavedPaymentMethods(
        items=[SavedPaymentMethodOut.model_validate(c, from_attributes=True) for c in cards]
    )


@router.delete(
    "/saved-payment-methods/{payment_method_id}",
    operation_id="delete_saved_payment_method",
    status_code=204,
    dependencies=[limit("payment")],
)
async def delete_saved_payment_method(
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    payment_method_id: Annotated[
        str, Path(min_length=1, max_length=255, pattern=STRIPE_ID_PATTERN)
    ],
) -> Response:
    await flows.remove_saved_card(db, gateway, user_id, payment_method_id)
    return Response(status_code=204)


def auto_topup_out(v: AutoTopupView) -> AutoTopupOut:
    return AutoTopupOut(
        **vars(v),
        this_month=AutoTopupThisMonth(count=v.this_month_count, amount=v.this_month_amount),
    )


@router.get("/auto-topup", operation_id="get_auto_topup")
async def get_auto_topup(
    user_id: UserIdDep, db: DatabaseDep, settings: SettingsDep
) -> AutoTopupOut:
    return auto_topup_out(await flows.auto_topup_view(db, settings, user_id))


@router.put("/auto-topup", operation_id="put_auto_topup", dependencies=[limit("payment")])
async def put_auto_topup(
    body: AutoTopupIn,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> AutoTopupOut:
    chosen = await flows.choose_auto_topup(
        db,
        gateway,
        settings,
        user_id,
        AutoTopupChoice(**body.model_dump()),
    )
    balance_watch.forget(user_id)
    return auto_topup_out(chosen)
