from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from tokenbank.deps import DatabaseDep
from tokenbank.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health", operation_id="health")
async def health(db: DatabaseDep) -> Health:
    """200 once the database answers; 503 ``database_unavailable`` otherwise."""
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer means "not healthy", by definition
        raise DatabaseUnavailable() from exc
    return Health(status="ok")
