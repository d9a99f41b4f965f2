"""The meter's holds as units of their own (they take ``Database``).

Reserve, commit and release each run as ONE unit through ``Database.run`` — on the
driver (asyncpg, or SQLite's own connection), the ledger's statements and the hold's
record between one ``BEGIN`` and ``COMMIT`` — as the service API's holds and a chat
reply's hold do: the hot path of every metered call."""

from __future__ import annotations

from functools import partial

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.meter import service
from tokenbank.meter.errors import UnknownFeature
from tokenbank.meter.prices import feature_price
from tokenbank.meter.service import MeterCommitted, MeterHoldView
from tokenbank.pricing import flows as pricing


async def reserve(
    db: Database,
    *,
    user_id: int,
    feature: str,
    unit_tokens: int,
    quantity: int,
    idempotency_key: str,
    ttl_s: float,
) -> MeterHoldView:
    return await db.run(
        partial(
            service.reserve,
            user_id=user_id,
            feature=feature,
            unit_tokens=unit_tokens,
            quantity=quantity,
            idempotency_key=idempotency_key,
            ttl_s=ttl_s,
        )
    )


async def commit_hold(
    db: Database, *, user_id: int, feature: str, reservation_id: int, quantity: int | None
) -> MeterCommitted:
    return await db.run(
        partial(
            service.commit_hold,
            user_id=user_id,
            feature=feature,
            reservation_id=reservation_id,
            quantity=quantity,
        )
    )


async def release_hold(db: Database, *, user_id: int, feature: str, reservation_id: int) -> bool:
    return await db.run(
        partial(
            service.release_hold, user_id=user_id, feature=feature, reservation_id=reservation_id
        )
    )


async def unit_price(db: Database, settings: Settings, model: str, feature: str) -> int:
    """Tokens per unit of ``feature`` in the price book in force (its default model is the
    provider's ``model``); 404 ``unknown_feature`` when the book does not price it."""
    price = feature_price(await pricing.current(db, settings, model), feature)
    if price is None:
        raise UnknownFeature(feature)
    return price
