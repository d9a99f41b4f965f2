"""The hourly purge forgets ended sessions, spent links and idle counters, nothing live."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tokenbank.auth import email_links, sessions, throttle
from tokenbank.auth.maintenance import purge
from tokenbank.auth.models import AuthSession, AuthThrottle, EmailToken, RefreshToken, User
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def _count(db: Database, table: type) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_purge_keeps_live_sessions_and_links(db: Database) -> None:
    settings = Settings(_env_file=None, app_env="test", jwt_secret="x" * 40)  # type: ignore[call-arg]
    now = utcnow()
    long_ago = now - timedelta(days=8)
    async with db.transaction() as session:
        user = User(username="keeper", email="keeper@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        live = await sessions.start(session, user.id, settings, now)
        ended = await sessions.start(session, user.id, settings, long_ago)
        expired = await sessions.start(session, user.id, settings, long_ago)
        await sessions.revoke(session, ended.session_id, "logout", long_ago)
        await session.execute(update(AuthSession).where(AuthSession.id == expired.session_id)
                              .values(expires_at=long_ago))
        await email_links.issue(session, user.id, email_links.RESET_PASSWORD, 1800, now)
        await email_links.issue(session, user.id, email_links.VERIFY_EMAIL, 60, long_ago)
        await throttle.admit_login(session, "login:name:old", settings, long_ago - timedelta(days=1))
        await throttle.admit_login(session, "login:name:new", settings, now)
    async with db.transaction() as session:
        await purge(session, now)
    async with db.transaction() as session:
        left = (await session.execute(select(AuthSession.id))).scalars().all()
        keys = (await session.execute(select(AuthThrottle.key))).scalars().all()
    assert left == [live.session_id]
    assert await _count(db, RefreshToken) == 1  # the ended sessions' tokens went with them
    assert await _count(db, EmailToken) == 1
    assert keys == ["login:name:new"]
