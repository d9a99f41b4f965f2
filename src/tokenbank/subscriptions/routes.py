"""The HTTP edge of subscriptions: parse, authorise, call one flow, map the result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request

from tokenbank.config import Settings
from tokenbank.deps import AdminId, DatabaseDep, GatewayDep, SettingsDep, UserIdDep, limit
from tokenbank.errors import error_responses
from tokenbank.subscriptions import flows
from tokenbank.subscriptions.billing import portal_available
from tokenbank.subscriptions.schemas import (
    AdvanceClockRequest,
    AdvanceClockResponse,
    CreateSubscriptionResponse,
    PlanList,
    PlanOut,
    PlanRequest,
    PortalOut,
    SubscriptionEnvelope,
    SubscriptionOut,
)
from tokenbank.subscriptions.service import SubscriptionView

router = APIRouter(
    prefix="/api/payment",
    tags=["subscriptions"],
    responses=error_responses(400, 401, 404, 409, 422, 429, 502, 503),
)
admin_router = APIRouter(
    prefix="/api/admin", tags=["admin"], responses=error_responses(401, 403, 404)
)
dev_router = APIRouter(prefix="/api/dev", tags=["development"], include_in_schema=False)


def subscription_out(
    view: SubscriptionView, settings: Settings, client_secret: str | None = None
) -> SubscriptionOut:
    return SubscriptionOut(
        **vars(view), client_secret=client_secret, portal_available=portal_available(settings)
    )


@router.get("/subscription-plans", operation_id="get_subscription_plans")
async def subscription_plans(settings: SettingsDep) -> PlanList:
    return PlanList(
        items=[
            PlanOut(
                id=plan_id,
                name=p.name,
                price_cents=p.price,
                currency=p.currency,
                monthly_tokens=p.monthly_tokens,
                allotment_expires_after_days=p.allotment_expires_after_days,
            )
            for plan_id, p in settings.subscription_plans.items()
        ]
    )


@router.post(
    "/create-subscription", operation_id="create_subscription", dependencies=[limit("payment")]
)
async def create_subscription(
    body: PlanRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> CreateSubscriptionResponse:
    started = await flows.create_subscription(
        db, gateway, settings, user_id=user_id, plan_id=body.plan
    )
    return CreateSubscriptionResponse(
        subscription_id=started.subscription.id,
        client_secret=started.client_secret,
        status=started.subscription.status,
    )


@router.get("/user/subscription", operation_id="get_user_subscription")
async def user_subscription(
    user_id: UserIdDep, db: DatabaseDep, gateway: GatewayDep, settings: SettingsDep
) -> SubscriptionEnvelope:
    found = await flows.current_subscription(db, gateway, user_id)
    if found.subscription is None:
        return SubscriptionEnvelope(subscription=None)
    return SubscriptionEnvelope(
        subscription=subscription_out(found.subscription, settings, found.client_secret)
    )


@router.post(
    "/update-subscription", operation_id="update_subscription", dependencies=[limit("payment")]
)
async def update_subscription(
    body: PlanRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> SubscriptionOut:
    view = await flows.change_plan(db, gateway, settings, user_id=user_id, plan_id=body.plan)
    current = await flows.current_subscription(db, gateway, user_id)
    return subscription_out(view, settings, current.client_secret)


@router.post(
    "/cancel-subscription", operation_id="cancel_subscription", dependencies=[limit("payment")]
)
async def cancel_subscription(
    user_id: UserIdDep, db: DatabaseDep, gateway: GatewayDep, settings: SettingsDep
) -> SubscriptionOut:
    view = await flows.cancel_subscription(db, gateway, settings, user_id=user_id)
    return subscription_out(view, settings)


@router.post(
    "/resume-subscription", operation_id="resume_subscription", dependencies=[limit("payment")]
)
async def resume_subscription(
    user_id: UserIdDep, db: DatabaseDep, gateway: GatewayDep, settings: SettingsDep
) -> SubscriptionOut:
    view = await flows.resume_subscription(db, gateway, settings, user_id=user_id)
    return subscription_out(view, settings)


@router.post(
    "/customer-portal", operation_id="create_customer_portal", dependencies=[limit("payment")]
)
async def customer_portal(
    request: Request,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> PortalOut:
    return_url = str(request.base_url).rstrip("/") + "/subscription"
    url = await flows.portal_url(db, gateway, settings, user_id=user_id, return_url=return_url)
    return PortalOut(url=url)


@admin_router.get("/users/{user_id}/subscription", operation_id="admin_get_user_subscription")
async def admin_user_subscription(
    user_id: Annotated[int, Path(ge=1)],
    _admin: AdminId,
    db: DatabaseDep,
    settings: SettingsDep,
) -> SubscriptionEnvelope:
    view = await flows.admin_view(db, user_id)
    return SubscriptionEnvelope(
        subscription=None if view is None else subscription_out(view, settings)
    )


@dev_router.post("/advance-clock", operation_id="dev_advance_clock")
async def advance_clock(
    body: AdvanceClockRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> AdvanceClockResponse:
    frozen = await flows.advance_clock(db, gateway, settings, user_id=user_id, days=body.days)
    return AdvanceClockResponse(frozen_time=datetime.fromtimestamp(frozen, UTC))
