"""All SQL of API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.apikeys.models import ApiKey
from tokenbank.db import Query

keys = cast(Table, ApiKey.__table__)


async def insert_key(session: AsyncSession, values: dict[str, Any]) -> int:
    result = await session.execute(insert(keys).values(**values).returning(keys.c.id))
    return int(result.scalar_one())


#: The key whose secret hashes to ``secret_hash`` (a unique index): one read-only
#: statement, run on its own by ``Database.read`` on every request.
KEY_BY_HASH = Query.of(select(keys).where(keys.c.secret_hash == bindparam("secret_hash")))


async def get_key(session: AsyncSession, key_id: int, *, for_update: bool = False) -> Any | None:
    query = select(keys).where(keys.c.id == key_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def list_keys(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(keys).order_by(keys.c.id.desc()))).all())


async def revoke(session: AsyncSession, key_id: int, now: datetime) -> bool:
    """Revoke once: True when this call revoked it."""
    result = await session.execute(
        update(keys)
        .where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(keys.c.id)
    )
    return result.first() is not None
