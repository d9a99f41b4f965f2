"""All SQL of outbound webhooks: endpoints, the delivery outbox, the attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    bindparam,
    column,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Query, Unit, newest_first
from tokenbank.leases import LeasedQueue
from tokenbank.outbound.models import (
    WAITING_STATUSES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)

endpoints = cast(Table, WebhookEndpoint.__table__)
deliveries = cast(Table, WebhookDelivery.__table__)
attempts = cast(Table, WebhookDeliveryAttempt.__table__)
#: The service API's customers, read (never written) to name a user by the host app's
#: own id in an event. Named here rather than imported: the service API's package
#: imports payments, which emits events, so importing it back would be a cycle.
_customers = table("customers", column("user_id"), column("external_id"))

MAX_ERROR_CHARS = 2000


# --- endpoints -----------------------------------------------------------------------


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> int:
    result = await session.execute(insert(endpoints).values(**values).returning(endpoints.c.id))
    return int(result.scalar_one())


async def get_endpoint(session: AsyncSession, endpoint_id: int) -> Any | None:
    stmt = select(endpoints).where(
        endpoints.c.id == endpoint_id, endpoints.c.deleted_at.is_(None)
    )
    return (await session.execute(stmt)).first()


async def list_endpoints(session: AsyncSession) -> list[Any]:
    stmt = select(endpoints).where(endpoints.c.deleted_at.is_(None)).order_by(endpoints.c.id)
    return list((await session.execute(stmt)).all())


SUBSCRIBED_ENDPOINTS = Query.of(
    select(endpoints.c.id, endpoints.c.enabled_events).where(
        endpoints.c.enabled.is_(True), endpoints.c.deleted_at.is_(None)
    )
)


async def subscribed_endpoints(unit: Unit) -> list[tuple[int, str]]:
    """``(id, enabled_events)`` of every endpoint that receives events now (in any kind
    of unit: the payment sync's driver unit emits too)."""
    return [
        (int(r["id"]), str(r["enabled_events"])) for r in await SUBSCRIBED_ENDPOINTS.all(unit)
    ]


async def roll_secret(
    session: AsyncSession, endpoint_id: int, secret: str, previous_until: datetime
) -> bool:
    """The endpoint's secret becomes ``secret``; the one it had signs on beside it until
    ``previous_until``. False when there is no such endpoint (or it was removed)."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.deleted_at.is_(None))
            .values(
                previous_secret=endpoints.c.secret,
                previous_secret_expires_at=previous_until,
                secret=secret,
            )
        ),
    )
    return bool(result.rowcount)


async def delete_endpoint(session: AsyncSession, endpoint_id: int, now: datetime) -> bool:
    """Remove an endpoint (kept, with its log, as deleted) and cancel what still waits to
    go to it; True when this call removed it."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id, endpoints.c.deleted_at.is_(None))
            .values(deleted_at=now, enabled=False)
        ),
    )
    if not result.rowcount:
        return False
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.status.in_(WAITING_STATUSES),
        )
        .values(
            status=DeliveryStatus.CANCELED,
            next_attempt_at=None,
            last_error="endpoint removed",
        )
    )
    return True


EXTERNAL_ID = Query.of(
    select(_customers.c.external_id).where(_customers.c.user_id == bindparam("user_id"))
)


async def customer_external_id(unit: Unit, user_id: int) -> str | None:
    row = await EXTERNAL_ID.first(unit, user_id=user_id)
    return None if row is None else str(row["external_id"])


# --- the outbox --------------------------------------------------------------------------


_DELIVERY_COLUMNS = (
    "endpoint_id",
    "event_id",
    "event_type",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
INSERT_DELIVERY = Query.of(
    insert(deliveries)
    .values({name: bindparam(name, type_=deliveries.c[name].type) for name in _DELIVERY_COLUMNS})
    .returning(deliveries.c.id)
)


async def insert_deliveries(unit: Unit, rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        await INSERT_DELIVERY.first(unit, **row)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker has claimed: only the holder of ``token`` may finish it."""

    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    payload: str
    attempts: int
    token: str
    url: str
    secret: str
    #: False when its endpoint was disabled or removed after the event was written.
    endpoint_active: bool
    #: A rolled secret still in force when claimed: it signs beside ``secret``.
    previous_secret: str | None = None


#: The outbox as a leased queue (see :mod:`tokenbank.leases`): the inbound inbox's claim.
OUTBOX = LeasedQueue(deliveries, waiting=WAITING_STATUSES, processing=DeliveryStatus.PROCESSING)


async def claim_deliveries(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    token: str,
    limit: int = 1,
    delivery_id: int | None = None,
) -> list[ClaimedDelivery]:
    """Claim up to ``limit`` due deliveries, oldest due first (or the one ``delivery_id``
    if no live worker holds it), counting an attempt on each — the inbound inbox's claim
    (:meth:`tokenbank.leases.LeasedQueue.claim`, ``SKIP LOCKED`` on PostgreSQL)."""
    claimed = await OUTBOX.claim(
        session,
        now=now,
        lease_until=lease_until,
        token=token,
        limit=limit,
        key=delivery_id,
        returning=(
            deliveries.c.id,
            deliveries.c.endpoint_id,
            deliveries.c.event_id,
            deliveries.c.event_type,
            deliveries.c.payload,
            deliveries.c.attempts,
        ),
    )
    if not claimed:
        return []
    ids = {int(r.endpoint_id) for r in claimed}
    found = {
        int(e.id): e
        for e in (await session.execute(select(endpoints).where(endpoints.c.id.in_(ids)))).all()
    }
    out = []
    for r in claimed:
        e = found[int(r.endpoint_id)]
        until = e.previous_secret_expires_at
        previous = e.previous_secret if until is not None and until > now else None
        out.append(
            ClaimedDelivery(
                id=int(r.id),
                endpoint_id=int(r.endpoint_id),
                event_id=str(r.event_id),
                event_type=str(r.event_type),
                payload=str(r.payload),
                attempts=int(r.attempts),
                token=token,
                url=str(e.url),
                secret=str(e.secret),
                endpoint_active=bool(e.enabled) and e.deleted_at is None,
                previous_secret=None if previous is None else str(previous),
            )
        )
    return out


async def finish_delivery(
    session: AsyncSession,
    delivery: ClaimedDelivery,
    *,
    status: DeliveryStatus,
    now: datetime,
    error: str | None = None,
    status_code: int | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """End a claim with ``status``; False (nothing written) when the claim is no longer
    ours: it ran out and another worker took the delivery."""
    values: dict[str, Any] = {
        "status": status,
        "last_error": error[:MAX_ERROR_CHARS] if error else None,
        "next_attempt_at": next_attempt_at,
    }
    if status_code is not None:
        values["last_status_code"] = status_code
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    return await OUTBOX.end_claim(session, delivery.id, delivery.token, values)


async def insert_attempt(
    session: AsyncSession,
    *,
    delivery_id: int,
    attempt: int,
    started_at: datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
) -> None:
    await session.execute(
        insert(attempts).values(
            delivery_id=delivery_id,
            attempt=attempt,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error[:MAX_ERROR_CHARS] if error else None,
        )
    )


async def reset_for_retry(session: AsyncSession, delivery_id: int, now: datetime) -> bool:
    """Due again now with a fresh series of attempts (any status, unless a live worker
    holds it); False when there is no such delivery or a worker holds it."""
    stmt = (
        update(deliveries)
        .where(deliveries.c.id == delivery_id, OUTBOX.unheld(now))
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            claim_token=None,
            claimed_until=None,
        )
    )
    result = cast(CursorResult[Any], await session.execute(stmt))
    return int(result.rowcount) > 0


# --- the log ---------------------------------------------------------------------------


async def get_delivery(session: AsyncSession, delivery_id: int) -> Any | None:
    stmt = select(deliveries).where(deliveries.c.id == delivery_id)
    return (await session.execute(stmt)).first()


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: int | None,
    status: DeliveryStatus | None,
    limit: int,
    before: int | None,
) -> list[Any]:
    stmt = select(deliveries)
    if endpoint_id is not None:
        stmt = stmt.where(deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(deliveries.c.status == status)
    stmt = newest_first(stmt, deliveries.c.id, limit=limit, before=before)
    return list((await session.execute(stmt)).all())


async def attempts_of(session: AsyncSession, delivery_ids: Sequence[int]) -> list[Any]:
    if not delivery_ids:
        return []
    stmt = (
        select(attempts)
        .where(attempts.c.delivery_id.in_(list(delivery_ids)))
        .order_by(attempts.c.delivery_id, attempts.c.id)
    )
    return list((await session.execute(stmt)).all())
