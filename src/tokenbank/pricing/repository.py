"""All SQL of the pricing domain, in Core; the reads run on the driver (see ``db.Query``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Query, Unit
from tokenbank.pricing.models import PriceVersion

versions = cast(Table, PriceVersion.__table__)

_COLUMNS = (versions.c.id, versions.c.book, versions.c.created_at, versions.c.created_by)

_NEWEST_ID = Query.of(select(func.max(versions.c.id).label("id")))
_NEWEST = select(*_COLUMNS).order_by(versions.c.id.desc()).limit(1)


async def newest_id(unit: Unit) -> int | None:
    """The version in force (the cheap staleness check: one index look-up)."""
    row = await _NEWEST_ID.first(unit)
    return None if row is None or row["id"] is None else int(row["id"])


async def newest(session: AsyncSession) -> Mapping[str, Any] | None:
    """The version in force, book included (read through the ORM's JSON type)."""
    return _mapping((await session.execute(_NEWEST)).mappings().first())


async def configured_versions(session: AsyncSession) -> list[Mapping[str, Any]]:
    """Versions seeded from configuration, newest first (a handful: one per config)."""
    stmt = (
        select(*_COLUMNS).where(versions.c.created_by.is_(None)).order_by(versions.c.id.desc())
    )
    return [cast(Mapping[str, Any], row) for row in (await session.execute(stmt)).mappings()]


async def by_id(session: AsyncSession, version: int) -> Mapping[str, Any] | None:
    stmt = select(*_COLUMNS).where(versions.c.id == version)
    return _mapping((await session.execute(stmt)).mappings().first())


async def insert(
    session: AsyncSession,
    version: int,
    book: Mapping[str, Any],
    now: datetime,
    created_by: int | None,
) -> Mapping[str, Any] | None:
    """Write version ``version``; None if that number is taken (someone wrote it first)."""
    values = {"id": version, "book": dict(book), "created_at": now, "created_by": created_by}
    if session.get_bind().dialect.name == "sqlite":
        stmt: Any = sqlite.insert(versions).values(values).on_conflict_do_nothing()
    else:
        stmt = postgresql.insert(versions).values(values).on_conflict_do_nothing()
    return _mapping((await session.execute(stmt.returning(*_COLUMNS))).mappings().first())


def _mapping(row: object) -> Mapping[str, Any] | None:
    return None if row is None else cast(Mapping[str, Any], row)
