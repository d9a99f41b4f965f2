"""Reading and writing the price book, each in its own transaction."""

from __future__ import annotations

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.pricing import service
from tokenbank.pricing.service import VersionInfo


async def book_in_force(db: Database, settings: Settings, default_model: str) -> VersionInfo:
    configured = service.configured_book(settings, default_model)
    async with db.transaction() as session:
        return await service.in_force(session, configured)


async def put_book(
    db: Database, settings: Settings, default_model: str, raw: object, *, admin_id: int
) -> VersionInfo:
    """Write ``raw`` as the next version; this process charges new replies at it at once."""
    books = service.books(db, settings, default_model)
    async with db.transaction() as session:
        written = await service.write_version(session, raw, created_by=admin_id)
    books.forget()
    return written
