"""All SQL of the meter: what each metered hold was for (``meter_holds``).

Its statements are :class:`~tokenbank.db.Query` objects, so they run in a session or in a
driver unit (:meth:`~tokenbank.db.Database.run`) beside the ledger's hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from tokenbank.db import Query, Unit
from tokenbank.ledger.models import TokenReservation
from tokenbank.meter.models import MeterHold

holds = cast(Table, MeterHold.__table__)
reservations = cast(Table, TokenReservation.__table__)

_VALUES: dict[str, Any] = {
    name: bindparam(name)
    for name in ("reservation_id", "user_id", "feature", "quantity", "unit_tokens", "created_at")
}
_INSERT = Query.of(
    postgresql.insert(holds)
    .values(_VALUES)
    .on_conflict_do_nothing()
    .returning(holds.c.reservation_id),
    sqlite=sqlite.insert(holds)
    .values(_VALUES)
    .on_conflict_do_nothing()
    .returning(holds.c.reservation_id),
)

#: A metered hold of this user and feature, with the ledger's view of it.
_OWNED = Query.of(
    select(
        holds.c.reservation_id,
        holds.c.quantity,
        holds.c.unit_tokens,
        reservations.c.amount,
        reservations.c.status,
        reservations.c.expires_at,
    )
    .join(reservations, reservations.c.id == holds.c.reservation_id)
    .where(
        holds.c.reservation_id == bindparam("reservation_id"),
        holds.c.user_id == bindparam("user_id"),
        holds.c.feature == bindparam("feature"),
    )
)


async def insert_hold(
    unit: Unit,
    *,
    reservation_id: int,
    user_id: int,
    feature: str,
    quantity: int,
    unit_tokens: int,
    created_at: datetime,
) -> None:
    await _INSERT.first(
        unit,
        reservation_id=reservation_id,
        user_id=user_id,
        feature=feature,
        quantity=quantity,
        unit_tokens=unit_tokens,
        created_at=created_at,
    )


async def owned_hold(
    unit: Unit, *, reservation_id: int, user_id: int, feature: str
) -> Mapping[str, Any] | None:
    """The hold if it is a ``feature`` hold of ``user_id``, else None."""
    return await _OWNED.first(unit, reservation_id=reservation_id, user_id=user_id, feature=feature)
