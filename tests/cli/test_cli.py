"""The operator CLI against a real database, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from tokenbank.db import Database

pytestmark = pytest.mark.anyio


def tokenbank(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": db_url, "APP_ENV": "development"}
    return subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", *args], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )


async def test_admin_tokens_and_ledger_check(db_url: str, db: Database) -> None:
    r = tokenbank(db_url, "users", "create-admin", "--username", "root1",
                  "--email", "root@example.com", "--password", "sup3rsecret")
    assert r.returncode == 0, r.stderr
    assert "created admin root1" in r.stdout
    assert tokenbank(db_url, "tokens", "grant", "root1", "40", "-r", "seed").returncode == 0
    r = tokenbank(db_url, "tokens", "adjust", "root@example.com", "-5", "-r", "oops")
    assert r.returncode == 0, r.stderr
    r = tokenbank(db_url, "tokens", "balance", "root1")
    assert '"balance": 45' in r.stdout and '"available": 45' in r.stdout
    r = tokenbank(db_url, "tokens", "adjust", "root1", "-500", "-r", "too much")
    assert r.returncode == 2 and "insufficient_tokens" in r.stderr
    r = tokenbank(db_url, "tokens", "grant", "root1", "0")
    assert r.returncode == 2 and "invalid_amount" in r.stderr
    r = tokenbank(db_url, "tokens", "balance", "nobody")
    assert r.returncode == 2 and "user_not_found" in r.stderr

    r = tokenbank(db_url, "ledger", "check")
    assert r.returncode == 0 and "0 violations" in r.stdout
    async with db.transaction() as session:
        await session.execute(text("UPDATE token_accounts SET balance = balance + 3"))
    r = tokenbank(db_url, "ledger", "check")
    assert r.returncode == 1
    assert "balance_equals_sum" in r.stdout and "balance 48 but transactions sum to 45" in r.stdout
