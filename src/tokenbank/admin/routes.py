"""Operator routes (admins only): users, a user's ledger and payments, corrections,
payments, the webhook inbox and the numbers behind the dashboard's charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel

from tokenbank.admin import service
from tokenbank.admin.schemas import (
    AdminPaymentOut,
    AdminStats,
    AdminUserDetail,
    AdminUserOut,
    DailyTotals,
    RefundsByModel,
    RefundsByReason,
    RefundsOverviewOut,
    TopSpender,
    WebhookEventOut,
)
from tokenbank.config import Settings
from tokenbank.deps import (
    AdminId,
    AdminUser,
    DatabaseDep,
    GatewayDep,
    SessionDep,
    SettingsDep,
)
from tokenbank.errors import ErrorBody, error_responses
from tokenbank.ledger.schemas import (
    AdminTokensRequest,
    AdminTokensResponse,
    LotList,
    TokenBalance,
    TransactionOut,
)
from tokenbank.payments.flows import process_again
from tokenbank.payments.models import EventStatus, PaymentStatus
from tokenbank.types import utcnow

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses=error_responses(400, 401, 402, 403, 404, 422, 503),
)
UserIdPath = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retrying with the same key posts the entry at most once.",
    ),
]


def _user_out(row: dict[str, Any]) -> AdminUserOut:
    return AdminUserOut(**row, available=row["balance"] - row["reserved"])


def _payment_out(row: dict[str, Any], settings: Settings) -> AdminPaymentOut:
    pi = row.get("stripe_payment_intent_id")
    url = None
    if pi and not settings.stripe_simulated and settings.stripe_secret_key:
        url = f"https://dashboard.stripe.com/{'' if settings.stripe_live else 'test/'}payments/{pi}"
    fields = {k: row[k] for k in AdminPaymentOut.model_fields if k in row}
    return AdminPaymentOut(**fields, stripe_dashboard_url=url)


@router.post(
    "/users/{user_id}/tokens",
    operation_id="admin_adjust_tokens",
    responses={409: {"model": ErrorBody, "description": "`idempotency_key_reused`"}},
)
async def admin_adjust_tokens(
    user_id: UserIdPath,
    body: AdminTokensRequest,
    session: SessionDep,
    admin: AdminUser,
    idempotency_key: IdempotencyKey = None,
) -> AdminTokensResponse:
    """A positive amount is a ``grant``, a negative one an ``adjustment``; both record the
    reason and the admin's id. The same ``Idempotency-Key`` again (from the same admin, for
    the same user) posts nothing more and returns the first entry; with a different amount
    or reason it is 409 ``idempotency_key_reused``."""
    posted = await service.post_tokens(
        session,
        admin_id=admin.id,
        user_id=user_id,
        amount=body.amount,
        reason=body.reason,
        idempotency_key=idempotency_key,
    )
    return AdminTokensResponse(
        transaction=TransactionOut.model_validate(posted.entry),
        balance=TokenBalance.model_validate(posted.balance),
    )


@router.get("/users", operation_id="admin_list_users")
async def admin_list_users(
    session: SessionDep,
    _admin: AdminUser,
    query: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminUserOut]:
    return [_user_out(r) for r in await service.list_users(session, query, limit)]


@router.get("/users/{user_id}", operation_id="admin_get_user")
async def admin_get_user(
    user_id: UserIdPath,
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminUser,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AdminUserDetail:
    detail = await service.user_detail(session, user_id, limit=limit, before=before)
    return AdminUserDetail(
        user=_user_out(detail.user),
        balance=TokenBalance.model_validate(detail.balance),
        transactions=[TransactionOut.model_validate(e) for e in detail.history.items],
        next_before=detail.history.next_before,
        payments=[_payment_out(p, settings) for p in detail.payments],
    )


@router.get("/users/{user_id}/lots", operation_id="admin_list_user_lots")
async def admin_list_user_lots(
    user_id: UserIdPath,
    session: SessionDep,
    _admin: AdminUser,
    active: Annotated[bool, Query()] = False,
) -> LotList:
    """The user's token lots, as the user sees them (``GET /api/payment/user/lots``)."""
    return LotList.of(await service.user_lots(session, user_id, active=active))


@router.get("/payments", operation_id="admin_list_payments")
async def admin_list_payments(
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminUser,
    status: PaymentStatus | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminPaymentOut]:
    rows = await service.list_payments(session, status=status, limit=limit, before=before)
    return [_payment_out(r, settings) for r in rows]


@router.get("/webhooks", operation_id="admin_list_webhook_events")
async def admin_list_webhook_events(
    session: SessionDep,
    _admin: AdminUser,
    status: EventStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WebhookEventOut]:
    return [
        WebhookEventOut(**r)
        for r in await service.list_webhook_events(session, status=status, limit=limit)
    ]


class ReplayOut(BaseModel):
    id: str
    status: EventStatus
    payment_intent_id: str | None


@router.post("/webhooks/{event_id}/process", operation_id="admin_process_webhook_event")
async def admin_process_webhook_event(
    event_id: Annotated[str, Path(min_length=1, max_length=255, pattern=r"^evt_[A-Za-z0-9_]+$")],
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    _admin: AdminId,
) -> ReplayOut:
    """Apply the event again now, whatever its status (a dead letter included); one that
    never reached us is fetched from Stripe first. Its sync writes only differences."""
    result = await process_again(db, gateway, settings, event_id)
    return ReplayOut(
        id=result.event_id,
        status=EventStatus(result.status),
        payment_intent_id=result.payment_intent_id,
    )


@router.get("/stats", operation_id="admin_stats")
async def admin_stats(
    session: SessionDep,
    _admin: AdminUser,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> AdminStats:
    found = await service.stats(session, utcnow() - timedelta(days=days))
    return AdminStats(
        days=days,
        daily=[DailyTotals(**d) for d in found.daily],
        top_spenders=[TopSpender(**t) for t in found.top_spenders],
    )


@router.get("/refunds", operation_id="admin_refunds")
async def admin_refunds(
    session: SessionDep,
    _admin: AdminUser,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> RefundsOverviewOut:
    """Refunded AI replies of the last ``days`` days, by reason and by model."""
    found = await service.refunds_overview(session, utcnow() - timedelta(days=days))
    return RefundsOverviewOut(
        days=days,
        by_reason=[RefundsByReason(**r) for r in found.by_reason],
        by_model=[RefundsByModel(**m) for m in found.by_model],
    )
