"""The price book in force: versions, seeding from configuration, and the process's cache.

- The newest ``price_versions`` row is in force; every charge records its number.
- Version 1 is seeded from ``PRICE_BOOK`` (or, without it, from ``REPLY_COST_TOKENS`` and
  ``MODEL_COSTS``: every model one per-reply price) on first use. When the configured book
  changes and the newest version was itself seeded from configuration, a new version is
  written from it; a version written by an admin is never overridden by configuration.
- Each process keeps the book in memory (:class:`PriceBooks`) and checks at most every
  ``PRICE_BOOK_CACHE_S`` seconds whether a newer version exists (one index look-up), so a
  charged reply costs no extra statement; an admin's change is seen at once by the process
  that wrote it and within that interval by every other.
- A change applies to new replies only: a reply is charged at the version it was held at.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.pricing import book as pb
from tokenbank.pricing import repository as repo
from tokenbank.pricing.errors import PriceBookConfigInvalid, PriceBookInvalid
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Attempts to take the next version number when admins write at the same moment.
MAX_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class VersionInfo:
    version: int
    book: Mapping[str, Any]
    created_at: datetime
    created_by: int | None


def configured_book(settings: Settings, default_model: str) -> dict[str, Any]:
    """The book configuration describes (validated: a bad ``PRICE_BOOK`` stops the start)."""
    raw = settings.price_book
    if raw is None:
        raw = pb.from_reply_costs(default_model, settings.reply_cost_tokens, settings.model_costs)
    try:
        pb.parse(raw)
    except pb.BookInvalid as exc:
        raise PriceBookConfigInvalid(f"PRICE_BOOK: {exc}") from exc
    return dict(raw)


def _info(row: Mapping[str, Any]) -> VersionInfo:
    return VersionInfo(int(row["id"]), row["book"], row["created_at"], row["created_by"])


async def newest(session: AsyncSession) -> VersionInfo | None:
    row = await repo.newest(session)
    return None if row is None else _info(row)


async def write_version(
    session: AsyncSession, raw: object, *, created_by: int | None
) -> VersionInfo:
    """Validate ``raw`` and write it as the next version (422 ``price_book_invalid``)."""
    try:
        pb.parse(raw)
    except pb.BookInvalid as exc:
        raise PriceBookInvalid(str(exc)) from exc
    assert isinstance(raw, dict)
    for _ in range(MAX_WRITE_ATTEMPTS):
        current = await repo.newest(session)
        number = 1 if current is None else int(current["id"]) + 1
        row = await repo.insert(session, number, raw, utcnow(), created_by)
        if row is not None:
            return _info(row)
    raise RuntimeError("could not take a price book version number")  # pragma: no cover


async def seed(
    session: AsyncSession, configured: Mapping[str, Any], *, apply_changes: bool = False
) -> VersionInfo:
    """The version in force, first writing the configured book if there is none yet or
    (with ``apply_changes``: a process's first load) if configuration changed it."""
    current = await newest(session)
    if current is not None and not apply_changes:
        return current
    if current is not None and (current.created_by is not None or current.book == configured):
        if current.created_by is not None and current.book != configured:
            log.info(
                "price book v%s was set by an admin; configuration not applied", current.version
            )
        return current
    return await write_version(session, dict(configured), created_by=None)


class PriceBooks:
    """One process's cache of the book in force, for one database."""

    def __init__(self, configured: Mapping[str, Any], check_every_s: float) -> None:
        self._configured = configured
        self._check_every_s = check_every_s
        self._book: pb.Book | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()
        self._seeded = False

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

                if await db.run(newest_id) == book.version:
                    self._checked = time.monotonic()
                    return book
            book = await self._load(db)
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

    async def _load(self, db: Database) -> pb.Book:
        async with db.transaction() as session:
            if self._seeded:
                info = await newest(session)
            else:
                info = await seed(session, self._configured, apply_changes=True)
                self._seeded = True
            assert info is not None
        return pb.parse(info.book, info.version)


_books: weakref.WeakKeyDictionary[Database, PriceBooks] = weakref.WeakKeyDictionary()


def books(db: Database, settings: Settings, default_model: str) -> PriceBooks:
    """The process's cache of the book for ``db`` (made on first use)."""
    found = _books.get(db)
    if found is None:
        found = PriceBooks(configured_book(settings, default_model), settings.price_book_cache_s)
        _books[db] = found
    return found


async def current(db: Database, settings: Settings, default_model: str) -> pb.Book:
    return await books(db, settings, default_model).current(db)
