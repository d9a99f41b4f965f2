"""All SQL of the service API's customers and holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.apikeys.repository import keys
from tokenbank.auth.models import User
from tokenbank.db import Query
from tokenbank.ledger import repository as ledger_repo
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


#: A customer's user id by its external id (the unique index).
CUSTOMER_USER = Query.of(
    select(customers.c.user_id).where(customers.c.external_id == bindparam("external_id"))
)

#: The hold's first statement: the customer's user id, and its token account locked for
#: the hold that follows in the same unit (the ledger's ``account_lock``, as the chat's
#: history read takes it), unless a hold with ``hold_key`` exists (a replay takes no
#: lock). One round trip where the look-up and the ledger's own lock statement were two.
_CUSTOMER_BY_EXTERNAL_ID = (
    select(customers.c.user_id)
    .where(customers.c.external_id == bindparam("external_id"))
    .scalar_subquery()
)
CUSTOMER_FOR_HOLD = Query.of(
    select(
        customers.c.user_id,
        ledger_repo.account_lock(_CUSTOMER_BY_EXTERNAL_ID, bindparam("hold_key"), true()).label(
            "account_locked"
        ),
    ).where(customers.c.external_id == bindparam("external_id"))
)

#: The hold with its customer's external id, if it is a hold of a host's customer.
_HOLD_OWNER = (
    select(reservations, customers.c.external_id)
    .join(customers, customers.c.user_id == reservations.c.user_id)
    .where(reservations.c.id == bindparam("hold_id"))
)
HOLD_OWNER = Query.of(_HOLD_OWNER)

#: Every column of :data:`HOLD_OWNER` as ``hold_<name>`` beside a key's own columns.
HOLD_PREFIX = "hold_"
_hold_of_host = _HOLD_OWNER.subquery("hold")

#: The API key by its secret's hash (as ``apikeys.repository.KEY_BY_HASH``) and, on the
#: same row, the hold the request names (its columns NULL when it is no hold of a host's
#: customer): one read-only statement for the key check and the hold's read, run on its
#: own before the commit's unit. A hold's owner, amount and description never change, so
#: reading them before the unit races nothing; its status is the commit's own business.
KEY_WITH_HOLD = Query.of(
    select(keys, *(c.label(HOLD_PREFIX + c.name) for c in _hold_of_host.c))
    .select_from(keys.outerjoin(_hold_of_host, true()))
    .where(keys.c.secret_hash == bindparam("secret_hash"))
)
