"""``/api/meter/{feature}``: the host app's other features, charged to the signed-in user.

Hold the price before the work (``reserve``), then ``commit`` what was used or
``release`` it; or charge at once (``charge``). Prices come from the server's price book
only; every write is rate limited like a reply (``RATE_LIMIT_METER_PER_MIN``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tokenbank.deps import DatabaseDep, ProviderDep, SessionDep, SettingsDep, UserIdDep, limit
from tokenbank.errors import error_responses
from tokenbank.meter import flows, service
from tokenbank.meter.prices import FEATURE_PATTERN
from tokenbank.meter.schemas import (
    MeterChargeIn,
    MeterChargeOut,
    MeterCommitIn,
    MeterCommitOut,
    MeterReleaseIn,
    MeterReleaseOut,
    MeterReserveIn,
    MeterReserveOut,
)

router = APIRouter(
    prefix="/api/meter",
    tags=["meter"],
    responses=error_responses(400, 401, 402, 404, 409, 422, 429, 503),
    dependencies=[limit("meter")],
)

Feature = Annotated[
    str, Path(pattern=FEATURE_PATTERN, description="A feature priced in the price book")
]


@router.post("/{feature}/reserve", operation_id="meter_reserve")
async def reserve(
    feature: Feature,
    body: MeterReserveIn,
    user_id: UserIdDep,
    db: DatabaseDep,
    settings: SettingsDep,
    provider: ProviderDep,
) -> MeterReserveOut:
    """Hold the price of ``quantity`` units (402 when not enough); 404 ``unknown_feature``."""
    held = await flows.reserve(
        db,
        user_id=user_id,
        feature=feature,
        unit_tokens=await flows.unit_price(db, settings, provider.model, feature),
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
        ttl_s=body.ttl_s or settings.reservation_ttl_s,
    )
    return MeterReserveOut(**vars(held), unit_price=held.unit_tokens)


@router.post("/{feature}/commit", operation_id="meter_commit")
async def commit(
    feature: Feature, body: MeterCommitIn, user_id: UserIdDep, db: DatabaseDep
) -> MeterCommitOut:
    """Charge the hold (or ``quantity`` of its units); again returns the first charge."""
    done = await flows.commit_hold(
        db,
        user_id=user_id,
        feature=feature,
        reservation_id=body.reservation_id,
        quantity=body.quantity,
    )
    return MeterCommitOut.model_validate(done, from_attributes=True)


@router.post("/{feature}/release", operation_id="meter_release")
async def release(
    feature: Feature, body: MeterReleaseIn, user_id: UserIdDep, db: DatabaseDep
) -> MeterReleaseOut:
    """Give the hold back (again, or once expired, is a no-op; after a commit 409)."""
    released = await flows.release_hold(
        db, user_id=user_id, feature=feature, reservation_id=body.reservation_id
    )
    return MeterReleaseOut(reservation_id=body.reservation_id, released=released)


@router.post("/{feature}/charge", operation_id="meter_charge")
async def charge(
    feature: Feature,
    body: MeterChargeIn,
    user_id: UserIdDep,
    session: SessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
    provider: ProviderDep,
) -> MeterChargeOut:
    """Charge ``quantity`` units at once (402 when not enough), once per idempotency key."""
    unit_tokens = await flows.unit_price(db, settings, provider.model, feature)
    done = await service.charge(
        session,
        user_id=user_id,
        feature=feature,
        unit_tokens=unit_tokens,
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
    )
    return MeterChargeOut.model_validate(done, from_attributes=True)
