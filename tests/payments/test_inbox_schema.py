"""The inbox table refuses what its worker could never handle (migration 0007)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from tokenbank.db import Database
from tokenbank.payments import repository as repo
from tokenbank.payments.models import EventStatus, WebhookEvent
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def test_a_status_outside_the_enum_or_negative_attempts_are_refused(db: Database) -> None:
    for values in ({"status": "done"}, {"attempts": -1}):
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                session.add(WebhookEvent(
                    id="evt_bad", type="payment_intent.succeeded", payload={},
                    received_at=utcnow(), **({"status": "received", "attempts": 0} | values),
                ))


async def test_every_status_of_the_enum_is_accepted(db: Database) -> None:
    async with db.transaction() as session:
        for status in EventStatus:
            await repo.record_event(
                session, event_id=f"evt_{status}", event_type="charge.refunded",
                payment_intent_id="pi_1", charge_id=None, payload={"id": f"evt_{status}"},
                status=status, now=utcnow(),
            )
    async with db.transaction() as session:
        assert {str(s) for s in EventStatus} == {
            await repo.event_status(session, f"evt_{s}") for s in EventStatus}
