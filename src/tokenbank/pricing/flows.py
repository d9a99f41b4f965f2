"""Reading and writing the price book, each in its own transaction, and each process's
cache of the book in force (:class:`PriceBooks`)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from typing import Any

from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.pricing import book as pb
from tokenbank.pricing import repository as repo
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
    found = books(db, settings, default_model)
    async with db.transaction() as session:
        written = await service.write_version(session, raw, created_by=admin_id)
    found.forget()
    return written


class PriceBooks:
    """One process's cache of the book in force, for one database."""

    def __init__(self, configured: Mapping[str, Any], check_every_s: float) -> None:
        self._configured = configured
        self._check_every_s = check_every_s
        self._book: pb.Book | None = None
        self._checked = 0.0
        #: The newest version number when the book was last loaded (a new one: reload).
        self._newest_seen: int | None = None
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Check the database on next use (after this process wrote a version)."""
        self._checked = 0.0

    async def current(self, db: Database) -> pb.Book:
        book = self._book
        if book is not None and time.monotonic() - self._checked < self._check_every_s:
            return book
        async with self._lock:
            book = self._book
            if book is not None and time.monotonic() - self._checked < self._check_every_s:
                return book
            if book is not None:

                async def newest_id(unit: Unit) -> int | None:
                    return await repo.newest_id(unit)

                if await db.run(newest_id) == self._newest_seen:
                    self._checked = time.monotonic()
                    return book
            book, self._newest_seen = await self._load(db)
            self._book, self._checked = book, time.monotonic()
            return book

    async def at(self, db: Database, version: int) -> pb.Book:
        """A given version (a reply held at an older one is charged at it)."""
        book = self._book
        if book is not None and book.version == version:
            return book
        async with db.transaction() as session:
            row = await repo.by_id(session, version)
        if row is None:
            raise LookupError(f"price book version {version}")
        return pb.parse(row["book"], int(row["id"]))

    async def _load(self, db: Database) -> tuple[pb.Book, int | None]:
        """The book in force for this process, and the newest version number now."""
        async with db.transaction() as session:
            info = await service.in_force(session, self._configured)
            newest_now = await repo.newest_id(session)
        return pb.parse(info.book, info.version), newest_now


_books: weakref.WeakKeyDictionary[Database, PriceBooks] = weakref.WeakKeyDictionary()


def books(db: Database, settings: Settings, default_model: str) -> PriceBooks:
    """The process's cache of the book for ``db`` (made on first use)."""
    found = _books.get(db)
    if found is None:
        configured = service.configured_book(settings, default_model)
        found = PriceBooks(configured, settings.price_book_cache_s)
        _books[db] = found
    return found


async def current(db: Database, settings: Settings, default_model: str) -> pb.Book:
    return await books(db, settings, default_model).current(db)
