"""An email the mailer claimed is sent even if the mailer stops or dies before SMTP: a
stopping mailer hands it back, a dead one's claim runs out and another process sends it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ledger.test_service import new_account
from smtp_kit import SmtpServer, mail_to
from tokenbank.auth.models import User
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.notifications import flows, service
from tokenbank.notifications.models import EmailState, Notification, NotificationKind
from tokenbank.types import utcnow

from conftest import make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def mail_settings(db_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(db_url, **smtp.settings)


async def _verified_person(db: Database) -> tuple[int, str]:
    user_id = await new_account(db)
    async with db.transaction() as s:
        await s.execute(update(User).where(User.id == user_id).values(email_verified_at=utcnow()))
        email = (await s.execute(select(User.email).where(User.id == user_id))).scalar_one()
    return user_id, str(email)


async def _alert(db: Database, user_id: int, tokens: int = 120) -> int:
    async with db.transaction() as s:
        return await service.notify(
            s,
            user_id,
            NotificationKind.LOTS_EXPIRING,
            {"tokens": tokens, "expires_on": "2030-01-01", "page": "/history"},
        )


async def _state(db: Database, notification_id: int) -> str:
    async with db.transaction() as s:
        row = await s.get(Notification, notification_id)
        assert row is not None
        return row.email_state


async def _until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _stop_a_mailer_paused_in(
    db: Database,
    mail_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    *,
    after_it: bool,
    while_paused: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start a mailer and pause it in ``owner.name`` (just after that call returns when
    ``after_it``, else just before the call); check ``while_paused``; ask the mailer to stop
    there, then let it go on and wait for the stop to end. ``owner.name`` is the real one
    again after."""
    paused, gate = asyncio.Event(), asyncio.Event()
    real = getattr(owner, name)

    async def pausing(*args: object) -> object:
        result = await real(*args) if after_it else None
        paused.set()
        await gate.wait()
        return result if after_it else await real(*args)

    monkeypatch.setattr(owner, name, pausing)
    mailer = flows.Mailer(db, mail_settings, interval_s=3600)
    mailer.start()
    await asyncio.wait_for(paused.wait(), 10)
    if while_paused is not None:
        await while_paused()
    task = mailer._task
    assert task is not None
    stopping = asyncio.create_task(mailer.stop())
    await _until(lambda: task.cancelling() > 0)
    gate.set()
    await asyncio.wait_for(stopping, 10)
    monkeypatch.setattr(owner, name, real)


async def test_a_mailer_stopped_between_claim_and_send_hands_the_email_back(
    db: Database, mail_settings: Settings, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, email = await _verified_person(db)
    notification_id = await _alert(db, user_id)

    async def claimed() -> None:
        assert await _state(db, notification_id) == EmailState.SENDING

    # The claim commits, and the stop arrives before the mailer reaches SMTP.
    await _stop_a_mailer_paused_in(
        db, mail_settings, monkeypatch, flows, "_claim", after_it=True, while_paused=claimed
    )

    assert await _state(db, notification_id) == EmailState.PENDING
    assert smtp.messages(email) == []

    # The next mailer (this process restarted, or another one) sends it, once.
    other = flows.Mailer(db, mail_settings, interval_s=3600)
    other.start()
    try:
        (mail,) = await mail_to(smtp, email)
        assert "120" in mail.subject
        await _until(lambda: _is(db, notification_id, EmailState.SENT))
    finally:
        await other.stop()
    assert await flows.send_due(db, mail_settings) == 0
    assert len(smtp.messages(email)) == 1


async def test_a_mailer_stopped_during_smtp_finishes_that_email(
    db: Database, mail_settings: Settings, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, email = await _verified_person(db)
    notification_id = await _alert(db, user_id)

    await _stop_a_mailer_paused_in(
        db, mail_settings, monkeypatch, flows.sender, "send", after_it=False
    )

    # Handed to SMTP: finished and marked, not handed back (it would be sent twice).
    assert await _state(db, notification_id) == EmailState.SENT
    assert len(smtp.messages(email)) == 1
    assert await flows.send_due(db, mail_settings) == 0
    assert len(smtp.messages(email)) == 1


async def _is(db: Database, notification_id: int, state: EmailState) -> bool:
    return await _state(db, notification_id) == state


async def test_an_email_claimed_by_a_dead_process_is_sent_after_its_claim_runs_out(
    db: Database, mail_settings: Settings, smtp: SmtpServer
) -> None:
    user_id, email = await _verified_person(db)
    dead = await _alert(db, user_id, tokens=111)  # claimed long ago, then the process died
    unstamped = await _alert(db, user_id, tokens=222)  # claimed before claims were stamped
    live = await _alert(db, user_id, tokens=333)  # claimed just now by a live process
    lease = flows.claim_lease(mail_settings)
    async with db.transaction() as s:
        for notification_id, stamp in (
            (dead, utcnow() - lease - timedelta(seconds=1)),
            (unstamped, None),
            (live, utcnow()),
        ):
            await s.execute(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(email_state=EmailState.SENDING, emailed_at=stamp)
            )

    assert await flows.send_due(db, mail_settings) == 2
    mails = await mail_to(smtp, email, 2)
    assert sorted(m.subject.split()[0] for m in mails) == ["111", "222"]
    assert await _state(db, dead) == EmailState.SENT
    assert await _state(db, unstamped) == EmailState.SENT
    assert await _state(db, live) == EmailState.SENDING  # its process may still send it

    # Sent once: a later round sends nothing more.
    assert await flows.send_due(db, mail_settings) == 0
    assert len(smtp.messages(email)) == 2


def test_a_claim_outlasts_the_smtp_timeout() -> None:
    settings = make_settings("sqlite+aiosqlite://", notification_mail_claim_lease_s=1)
    assert flows.claim_lease(settings) == timedelta(seconds=settings.smtp_timeout_s + 30)
