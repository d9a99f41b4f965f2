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
        [sys.executable, "-m", "tokenbank.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_admin_tokens_and_ledger_check(db_url: str, db: Database) -> None:
    r = tokenbank(
        db_url,
        "users",
        "create-admin",
        "--username",
        "root1",
        "--email",
        "root@example.com",
        "--password",
        "sup3rsecret",
    )
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


async def test_users_list_and_export_transactions(db_url: str, tmp_path: object) -> None:
    import csv
    import io
    import json

    assert (
        tokenbank(
            db_url,
            "users",
            "create-admin",
            "--username",
            "ops1",
            "--email",
            "ops1@example.com",
            "--password",
            "sup3rsecret",
        ).returncode
        == 0
    )
    assert tokenbank(db_url, "tokens", "grant", "ops1", "7", "-r", "promo").returncode == 0
    listed = tokenbank(db_url, "users", "list", "--query", "ops")
    assert listed.returncode == 0 and "ops1" in listed.stdout and "1 user(s)" in listed.stdout

    as_csv = tokenbank(db_url, "export", "transactions", "--since", "1d", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["transaction_type"], r["amount"], r["description"]) for r in rows] == [
        ("grant", "10", "Welcome bonus"),
        ("grant", "7", "promo"),
    ]
    assert "exported 2 transaction(s)" in as_csv.stderr

    as_jsonl = tokenbank(db_url, "export", "transactions", "--format", "jsonl")
    records = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert [r["amount"] for r in records] == [10, 7]
    assert records[1]["balance_after"] == 17

    future = tokenbank(db_url, "export", "transactions", "--since", "2999-01-01")
    assert future.stdout.strip().splitlines() == [
        ",".join(
            [
                "id",
                "user_id",
                "transaction_type",
                "amount",
                "balance_after",
                "description",
                "stripe_payment_intent_id",
                "actor_user_id",
                "created_at",
            ]
        )
    ]
    bad = tokenbank(db_url, "export", "transactions", "--format", "xml")
    assert bad.returncode == 2


async def test_ledger_expire_lots_writes_expired_lots_off_once(db_url: str, db: Database) -> None:
    from datetime import timedelta

    from ledger.test_service import new_account
    from tokenbank.ledger import keys
    from tokenbank.ledger import service as ledger
    from tokenbank.types import utcnow

    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        await ledger.credit_allotment(
            session,
            user_id,
            30,
            idempotency_key=keys.allotment("in_cli"),
            expires_at=utcnow() - timedelta(seconds=1),
            description="monthly tokens",
        )
    r = tokenbank(db_url, "ledger", "expire-lots")
    assert r.returncode == 0, r.stderr
    assert "1 expired lot(s) written off" in r.stdout
    r = tokenbank(db_url, "ledger", "expire-lots")
    assert "0 expired lot(s) written off" in r.stdout
    async with db.transaction() as session:
        assert (await ledger.balance(session, user_id)).balance == 5
    r = tokenbank(db_url, "ledger", "check")
    assert r.returncode == 0 and "0 violations" in r.stdout
