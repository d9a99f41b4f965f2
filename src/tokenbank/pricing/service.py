"""The price book in force: versions, seeding from configuration, and the process's cache.

- The newest ``price_versions`` row is in force; every charge records its number.
- Until an admin writes a version, each process charges its configured book: ``PRICE_BOOK``
  (or, without it, ``REPLY_COST_TOKENS`` and ``MODEL_COSTS``: every model one per-reply
  price), recorded as a version on first use (version 1 on a new database; a changed
  configuration gets a version of its own). Once an admin has written a version
  (``PUT /api/admin/price-book``), the newest admin version is in force in every process
  and configuration no longer applies.
- Each process keeps the book in memory (:class:`tokenbank.pricing.flows.PriceBooks`)
  and checks at most every ``PRICE_BOOK_CACHE_S`` seconds whether a newer version exists
  (one index look-up), so a charged reply costs no extra statement; an admin's change is
  seen at once by the process that wrote it and within that interval by every other.
- A change applies to new replies only: a reply is charged at the version it was held at.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
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
    """The book configuration describes (validated: a bad ``PRICE_BOOK`` stops the start).

    A ``PRICE_BOOK`` without ``models`` (one that only prices metered ``features``) keeps
    the per-reply model prices of ``REPLY_COST_TOKENS``/``MODEL_COSTS``."""
    per_reply = pb.from_reply_costs(default_model, settings.reply_cost_tokens, settings.model_costs)
    raw = settings.price_book
    if raw is None:
        raw = per_reply
    elif "models" not in raw:
        raw = {**raw, "models": per_reply["models"]}
    try:
        pb.parse(raw)
    except pb.BookInvalid as exc:
        raise PriceBookConfigInvalid(f"PRICE_BOOK: {exc}") from exc
    return dict(raw)


def info_of(row: Mapping[str, Any]) -> VersionInfo:
    return VersionInfo(int(row["id"]), row["book"], row["created_at"], row["created_by"])


async def newest(session: AsyncSession) -> VersionInfo | None:
    row = await repo.newest(session)
    return None if row is None else info_of(row)


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
            return info_of(row)
    raise RuntimeError("could not take a price book version number")  # pragma: no cover


async def in_force(session: AsyncSession, configured: Mapping[str, Any]) -> VersionInfo:
    """The version a process with this configuration charges at.

    The newest version if an admin wrote it; otherwise the configured book, as the
    version that records it (written now if no version holds exactly this book). So two
    processes configured differently (as the benchmark's free and paid servers are) each
    charge their own configured prices, until an admin's version applies to all.
    """
    current = await newest(session)
    if current is not None and current.created_by is not None:
        return current
    if current is not None and current.book == configured:
        return current
    for row in await repo.configured_versions(session):
        if row["book"] == configured:
            return info_of(row)
    return await write_version(session, dict(configured), created_by=None)
