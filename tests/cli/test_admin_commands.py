"""Making administrators: `create-admin` only creates, `promote` names the account it
promotes and asks first; `serve` and `dev` refuse settings unsafe outside production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tokenbank.auth.models import User
from tokenbank.db import Database

from conftest import make_settings
from support import register_user

pytestmark = pytest.mark.anyio


def tokenbank(
    db_url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = os.environ | {"DATABASE_URL": db_url, "APP_ENV": "development"} | (env or {})
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "JWT_SECRET"):
        if name not in (env or {}):
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _admin_flags(db: Database) -> dict[str, bool]:
    async with db.transaction() as session:
        rows = (await session.execute(select(User.username, User.is_admin))).all()
    return {str(name): bool(flag) for name, flag in rows}


async def _attacker(db_url: str, username: str = "admin") -> dict[str, object]:
    from tokenbank.app import create_app

    app = create_app(make_settings(db_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await register_user(c, username)


async def test_create_admin_refuses_a_username_someone_already_registered(
    db_url: str, db: Database
) -> None:
    await _attacker(db_url, "admin")
    r = tokenbank(
        db_url, "users", "create-admin", "--username", "admin",
        "--email", "ops@example.org", "--password", "operator-pass-1",
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "username_taken" in r.stderr
    assert await _admin_flags(db) == {"admin": False}


async def test_create_admin_refuses_an_email_someone_already_registered(
    db_url: str, db: Database
) -> None:
    await _attacker(db_url, "squatter")  # registered squatter@example.com
    r = tokenbank(
        db_url, "users", "create-admin", "--username", "root2",
        "--email", "squatter@example.com", "--password", "operator-pass-1",
    )
    assert r.returncode == 2 and "email_taken" in r.stderr, r.stdout + r.stderr
    assert await _admin_flags(db) == {"squatter": False}


async def test_promote_shows_the_email_and_asks_first(db_url: str, db: Database) -> None:
    user = await _attacker(db_url, "colleague")
    user_id = str(user["user"]["id"])  # type: ignore[index]

    declined = tokenbank(db_url, "users", "promote", user_id, stdin="n\n")
    assert "colleague@example.com" in declined.stdout
    assert declined.returncode == 1
    assert await _admin_flags(db) == {"colleague": False}

    accepted = tokenbank(db_url, "users", "promote", user_id, stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "colleague@example.com" in accepted.stdout
    assert await _admin_flags(db) == {"colleague": True}


async def test_promote_with_yes_for_scripts_and_unknown_ids(db_url: str, db: Database) -> None:
    user = await _attacker(db_url, "scripted")
    r = tokenbank(db_url, "users", "promote", str(user["user"]["id"]), "--yes")  # type: ignore[index]
    assert r.returncode == 0 and "scripted@example.com" in r.stdout, r.stderr
    assert await _admin_flags(db) == {"scripted": True}
    missing = tokenbank(db_url, "users", "promote", "999999", "--yes")
    assert missing.returncode == 2 and "user_not_found" in missing.stderr


# --- starting up: refusals outside production ------------------------------------------


LIVE_KEYS = {
    "STRIPE_SECRET_KEY": "sk_live_" + "A1b2C3d4" * 4,
    "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "A1b2C3d4" * 4,
}


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_live_keys_outside_production_refuse_to_start(command: str, tmp_path: Path) -> None:
    r = tokenbank(f"sqlite:///{tmp_path}/x.db", command, "--port", "1", env=LIVE_KEYS)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "STRIPE_SECRET_KEY" in r.stderr and "live" in r.stderr


@pytest.mark.parametrize("command", ["serve", "dev"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_a_network_bind_outside_production_refuses_to_start(
    command: str, host: str, tmp_path: Path
) -> None:
    r = tokenbank(f"sqlite:///{tmp_path}/x.db", command, "--host", host, "--port", "1")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refusing to listen" in r.stderr and "APP_ENV=production" in r.stderr


def test_dev_refuses_production(tmp_path: Path) -> None:
    r = tokenbank(f"sqlite:///{tmp_path}/x.db", "dev", "--port", "1",
                  env={"APP_ENV": "production"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "APP_ENV=production" in r.stderr
