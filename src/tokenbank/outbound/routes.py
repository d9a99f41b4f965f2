"""Admin routes for outbound webhooks: endpoints (create, list, remove), the delivery log
and an operator's retry (admins only)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from tokenbank.deps import AdminId, AdminUser, DatabaseDep, SessionDep, SettingsDep
from tokenbank.errors import error_responses
from tokenbank.outbound import flows, service
from tokenbank.outbound.models import DeliveryStatus, EventType
from tokenbank.outbound.schemas import (
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookSecretRoll,
    WebhookSecretRolled,
)
from tokenbank.outbound.service import DeliveryView, EndpointView

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 404, 422),
)
Id = Annotated[int, Path(ge=1, le=2**62)]


def _endpoint_out(e: EndpointView) -> WebhookEndpointOut:
    return WebhookEndpointOut(**asdict(e))


def _delivery_out(d: DeliveryView) -> WebhookDeliveryOut:
    return WebhookDeliveryOut.model_validate(asdict(d))


@router.get("/webhook-endpoints", operation_id="admin_list_webhook_endpoints")
async def list_webhook_endpoints(_admin: AdminUser, session: SessionDep) -> WebhookEndpointList:
    return WebhookEndpointList(
        items=[_endpoint_out(e) for e in await service.list_endpoints(session)],
        event_types=[t.value for t in EventType],
    )


@router.post(
    "/webhook-endpoints", operation_id="admin_create_webhook_endpoint", status_code=201
)
async def create_webhook_endpoint(
    body: WebhookEndpointCreate, _admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointCreated:
    """A new endpoint; its signing secret is in this answer only. Outside development the
    URL must be https on a public address (422 ``webhook_url_refused``)."""
    made = await service.create_endpoint(
        session,
        settings,
        url=body.url,
        events=body.enabled_events,
        description=body.description,
        enabled=body.enabled,
    )
    return WebhookEndpointCreated(endpoint=_endpoint_out(made.endpoint), secret=made.secret)


@router.post(
    "/webhook-endpoints/{endpoint_id}/roll-secret",
    operation_id="admin_roll_webhook_secret",
)
async def roll_webhook_secret(
    endpoint_id: Id, _admin: AdminUser, session: SessionDep, body: WebhookSecretRoll | None = None
) -> WebhookSecretRolled:
    """A new signing secret for the endpoint, in this answer only. The current one keeps
    signing beside it (two `v1=` signatures) for `expires_in_hours` (default 24, at most
    168), so the receiver can switch without refusing a delivery."""
    body = body or WebhookSecretRoll()
    rolled = await service.roll_secret(
        session, endpoint_id, expires_in=timedelta(hours=body.expires_in_hours)
    )
    return WebhookSecretRolled(
        endpoint=_endpoint_out(rolled.endpoint),
        secret=rolled.secret,
        previous_secret_expires_at=rolled.previous_expires_at,
    )


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="admin_delete_webhook_endpoint",
    status_code=204,
)
async def delete_webhook_endpoint(
    endpoint_id: Id, _admin: AdminUser, session: SessionDep
) -> Response:
    """Nothing more is sent to it; deliveries still waiting are canceled, the log kept."""
    await service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get("/webhook-deliveries", operation_id="admin_list_webhook_deliveries")
async def list_webhook_deliveries(
    _admin: AdminUser,
    session: SessionDep,
    endpoint_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    status: DeliveryStatus | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WebhookDeliveryList:
    """Newest first, each with every attempt (status code, error, duration)."""
    found = await service.list_deliveries(
        session, endpoint_id=endpoint_id, status=status, limit=limit, before=before
    )
    return WebhookDeliveryList(
        items=[_delivery_out(d) for d in found],
        next_before=found[-1].id if len(found) == limit else None,
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/retry", operation_id="admin_retry_webhook_delivery"
)
async def retry_webhook_delivery(
    delivery_id: Id, _admin: AdminId, db: DatabaseDep, settings: SettingsDep
) -> WebhookDeliveryOut:
    """Send it again now with a fresh series of attempts (a dead one included); the
    answer is where it stands after this attempt."""
    return _delivery_out(await flows.retry_now(db, settings, delivery_id))
