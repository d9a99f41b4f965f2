"""A response is sent only after the request's transaction has committed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from tokenbank.auth.models import User
from tokenbank.deps import SessionDep

pytestmark = pytest.mark.anyio


async def test_a_failed_commit_is_never_a_success(client: httpx.AsyncClient) -> None:
    app = client.app  # type: ignore[attr-defined]

    @app.post("/test-only/commit-fails")
    async def commit_fails(session: SessionDep) -> dict[str, str]:
        session.add(User(username="ghost", email="ghost@example.com", password_hash="-"))

        @event.listens_for(session.sync_session, "before_commit")
        def _refuse(*_: Any) -> None:
            raise RuntimeError("disk full")

        return {"status": "ok"}

    # Routes added after start-up sit behind the SPA catch-all; move this one in front.
    app.router.routes.insert(0, app.router.routes.pop())
    r = await client.post("/test-only/commit-fails")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    async with app.state.db.transaction() as session:
        count = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    assert count == 0
