"""Tokens about to expire are announced once per lot, a week ahead, in the app and by email."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from ledger.lots_kit import allot
from ledger.test_service import new_account
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.notifications import flows
from tokenbank.notifications.models import Notification
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def _alerts(db: Database, user_id: int) -> list[dict[str, object]]:
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(Notification.kind, Notification.data).where(Notification.user_id == user_id)
            )
        ).all()
    return [{"kind": k, **d} for k, d in rows]


async def test_a_lot_expiring_within_a_week_is_announced_once(db: Database) -> None:
    user_id = await new_account(db)
    now = utcnow()
    await allot(db, user_id, 120, now + timedelta(days=3), "in_soon")
    await allot(db, user_id, 300, now + timedelta(days=20), "in_later")

    # Several processes' jobs at once, then again: one announcement for the lot.
    await asyncio.gather(*(flows.alert_expiring_lots(db) for _ in range(4)))
    await flows.alert_expiring_lots(db)

    alerts = await _alerts(db, user_id)
    assert len(alerts) == 1
    assert alerts[0]["kind"] == "lots_expiring" and alerts[0]["tokens"] == 120
    assert alerts[0]["expires_on"] == (now + timedelta(days=3)).date().isoformat()


async def test_a_spent_or_never_expiring_lot_is_not_announced(db: Database) -> None:
    user_id = await new_account(db, 10)  # the sign-up grant never expires by default
    await allot(db, user_id, 5, utcnow() + timedelta(days=2), "in_spent")
    async with db.transaction() as s:
        await ledger.spend(s, user_id, 5, "spent", idempotency_key="spend-all-of-it")
    await flows.alert_expiring_lots(db)
    assert await _alerts(db, user_id) == []
