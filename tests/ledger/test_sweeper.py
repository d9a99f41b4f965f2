"""The in-app sweeper releases holds that outlive their expiry."""

from __future__ import annotations

import pytest

from tokenbank.app import create_app
from tokenbank.auth.models import User
from tokenbank.ledger import service as ledger

from conftest import make_settings
from support import wait_for

pytestmark = pytest.mark.anyio


async def test_running_app_releases_expired_holds(db_url: str) -> None:
    settings = make_settings(db_url, background_jobs=True, sweeper_interval_s=0.05)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db = app.state.db
        async with db.transaction() as session:
            user = User(username="sleepy", email="s@example.com", password_hash="-")
            session.add(user)
            await session.flush()
            await ledger.open_account(session, user.id)
            await ledger.grant(session, user.id, 2, "funds")
            held = await ledger.reserve(session, user.id, 2, idempotency_key="k", ttl_s=0.2)

        async def released() -> bool:
            async with db.transaction() as session:
                return (await ledger.get_reservation(session, held.id)).status == "expired"

        await wait_for(released, timeout_s=10, what="the sweeper to expire the hold")
        async with db.transaction() as session:
            b = await ledger.balance(session, user.id)
            assert (b.balance, b.reserved, b.available) == (2, 0, 2)
            assert await ledger.check(session) == []
