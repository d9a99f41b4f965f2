"""All SQL of the service API's customers and holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User
from tokenbank.db import Query
from tokenbank.ledger.models import TokenReservation
from tokenbank.v1.models import Customer

customers = cast(Table, Customer.__table__)
users = cast(Table, User.__table__)
reservations = cast(Table, TokenReservation.__table__)


def _insert(session: AsyncSession, table: Table) -> PgInsert | SqliteInsert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def find_customer(session: AsyncSession, external_id: str) -> Any | None:
    return (
        await session.execute(select(customers).where(customers.c.external_id == external_id))
    ).first()


async def find_customer_by_user(session: AsyncSession, user_id: int) -> Any | None:
    return (await session.execute(select(customers).where(customers.c.user_id == user_id))).first()


async def insert_user_once(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new user's id; None when the username (or email) exists already."""
    stmt = _insert(session, users).values(**values).on_conflict_do_nothing()
    return cast(int | None, (await session.execute(stmt.returning(users.c.id))).scalar())


async def user_id_by_username(session: AsyncSession, username: str) -> int | None:
    found = await session.execute(select(users.c.id).where(users.c.username == username))
    return cast(int | None, found.scalar())


async def insert_customer_once(session: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = _insert(session, customers).values(**values).on_conflict_do_nothing()
    return (await session.execute(stmt.returning(customers.c.user_id))).first() is not None


async def update_customer(
    session: AsyncSession, user_id: int, values: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        update(customers).where(customers.c.user_id == user_id).values(**values, updated_at=now)
    )


#: A customer's user id by its external id (the unique index): the hold's first read.
CUSTOMER_USER = Query.of(
    select(customers.c.user_id).where(customers.c.external_id == bindparam("external_id"))
)

#: The hold with its customer's external id, if it is a hold of a host's customer.
HOLD_OWNER = Query.of(
    select(reservations, customers.c.external_id)
    .join(customers, customers.c.user_id == reservations.c.user_id)
    .where(reservations.c.id == bindparam("hold_id"))
)
