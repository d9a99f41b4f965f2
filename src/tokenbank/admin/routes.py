"""Operator routes (admins only): users, a user's ledger and payments, corrections,
payments, the webhook inbox and the numbers behind the dashboard's charts."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel

from tokenbank.admin import repository as repo
from tokenbank.admin.schemas import (
    AdminPaymentOut,
    AdminStats,
    AdminUserDetail,
    AdminUserOut,
    DailyTotals,
    TopSpender,
    WebhookEventOut,
)
from tokenbank.auth import service as users
from tokenbank.auth.errors import UserNotFound
from tokenbank.config import Settings
from tokenbank.deps import AdminId, AdminUser, DatabaseDep, SessionDep, SettingsDep
from tokenbank.errors import ErrorBody, error_responses
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import IdempotencyKeyReused
from tokenbank.ledger.routes import balance_out, transaction_out
from tokenbank.ledger.schemas import AdminTokensRequest, AdminTokensResponse
from tokenbank.payments.flows import process_again
from tokenbank.payments.models import EventStatus, PaymentStatus
from tokenbank.payments.routes import GatewayDep
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

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
    await users.get_user(session, user_id)
    key = f"admin:{admin.id}:{idempotency_key}" if idempotency_key is not None else None
    post = ledger.grant if body.amount > 0 else ledger.adjust
    entry = await post(
        session, user_id, body.amount, body.reason, actor_user_id=admin.id, idempotency_key=key
    )
    if entry.replayed and entry.description != body.reason[: ledger.MAX_DESCRIPTION]:
        raise IdempotencyKeyReused()
    if not entry.replayed:
        log.info(
            "admin %s: %+d tokens for user %d (entry %d)",
            entry.transaction_type,
            entry.amount,
            user_id,
            entry.id,
        )
    return AdminTokensResponse(
        transaction=transaction_out(entry),
        balance=balance_out(await ledger.balance(session, user_id)),
    )


@router.get("/users", operation_id="admin_list_users")
async def admin_list_users(
    session: SessionDep,
    _admin: AdminUser,
    query: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminUserOut]:
    return [_user_out(r) for r in await repo.search_users(session, query, limit)]


@router.get("/users/{user_id}", operation_id="admin_get_user")
async def admin_get_user(
    user_id: UserIdPath,
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminUser,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AdminUserDetail:
    row = await repo.get_user(session, user_id)
    if row is None:
        raise UserNotFound()
    page = await ledger.history(session, user_id, limit=limit, before=before)
    pays = await repo.list_payments(session, user_id=user_id, status=None, limit=100, before=None)
    return AdminUserDetail(
        user=_user_out(row),
        balance=balance_out(await ledger.balance(session, user_id)),
        transactions=[transaction_out(e) for e in page.items],
        next_before=page.next_before,
        payments=[_payment_out(p, settings) for p in pays],
    )


@router.get("/payments", operation_id="admin_list_payments")
async def admin_list_payments(
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminUser,
    status: PaymentStatus | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminPaymentOut]:
    rows = await repo.list_payments(
        session, user_id=None, status=status, limit=limit, before=before
    )
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
        for r in await repo.list_webhook_events(session, status=status, limit=limit)
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
    since = utcnow() - timedelta(days=days)
    return AdminStats(
        days=days,
        daily=[DailyTotals(**d) for d in await repo.daily_totals(session, since)],
        top_spenders=[TopSpender(**t) for t in await repo.top_spenders(session, since, 10)],
    )
