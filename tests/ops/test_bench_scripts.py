"""The benchmarks' comparison is only fair if pgbench really runs the ledger's statements.

pgbench reads one SQL command per line, so the statements are folded onto one line each;
a comment left in one once swallowed the rest of its line and the script failed. Here the
script charges for real and the ledger must show exactly those charges.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from bench.common import seed_users
from bench.ledger import pgbench_script, run_pgbench
from sqlalchemy import text

from tokenbank.db import Database
from tokenbank.ledger import service as ledger

from conftest import migrated_postgres_database

FUNDS = 10**6
USERS = 1000  # the script picks among the bench's users, ids 1..1000


def test_the_pgbench_script_is_one_command_per_line_without_comments() -> None:
    lines = pgbench_script().splitlines()
    assert all("--" not in line for line in lines)
    assert sum(line.startswith("WITH ") for line in lines) == 2


def test_pgbench_charges_exactly_what_its_script_says() -> None:
    if shutil.which("pgbench") is None:
        pytest.fail("pgbench not found: it comes with PostgreSQL's client package")
    with migrated_postgres_database("tokenbank_bench_script", "THE PGBENCH SCRIPT") as url:
        asyncio.run(seed_users(url, USERS, FUNDS))
        run_pgbench(url, clients=2, seconds=0, charges=5)

        async def totals() -> tuple[int, int, int, list[object]]:
            db = Database(url, pool_size=1)
            try:
                async with db.transaction() as session:
                    row = (
                        await session.execute(
                            text(
                                "SELECT sum(balance), sum(reserved), "
                                "(SELECT count(*) FROM token_transactions"
                                " WHERE transaction_type = 'deduction') FROM token_accounts"
                            )
                        )
                    ).one()
                    return int(row[0]), int(row[1]), int(row[2]), list(await ledger.check(session))
            finally:
                await db.dispose()

        balance, reserved, deductions, violations = asyncio.run(totals())
    assert (balance, reserved, deductions) == (USERS * FUNDS - 10, 0, 10)
    assert violations == []


def test_the_sqlite_replay_charges_as_the_app_does(tmp_path: object) -> None:
    """sqlite3 replaying a captured charge moves balance, holds and entries as the app
    would: every replayed charge is one committed hold and one deduction of 1 token."""
    import sqlite3
    from pathlib import Path

    from bench import sqlite_raw
    from bench.ledger import run_sqlite

    path = Path(str(tmp_path)) / "bench.db"
    asyncio.run(run_sqlite(path, clients=1, seconds=0.2))
    captured = asyncio.run(sqlite_raw.capture(path, user_id=1))
    assert [s[0] for s in captured.steps].count("commit") == 2  # the hold, then the charge
    sqlite_raw.replay(path, captured, seconds=0.3, warmup_s=0)

    conn = sqlite3.connect(path)
    try:
        replayed = conn.execute(
            "SELECT count(*) FROM token_reservations WHERE idempotency_key LIKE 'raw-%'"
        ).fetchone()[0]
        deductions = conn.execute(
            "SELECT count(*), sum(amount) FROM token_transactions"
            " WHERE transaction_type = 'deduction'"
        ).fetchone()
        account = conn.execute(
            "SELECT balance, reserved,"
            " (SELECT sum(amount) FROM token_transactions WHERE user_id = 1)"
            " FROM token_accounts WHERE user_id = 1"
        ).fetchone()
        pending = conn.execute(
            "SELECT count(*) FROM token_reservations WHERE status = 'pending'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert replayed > 0
    assert deductions[0] == -deductions[1]  # one token each
    assert account[0] == account[2] and account[1] == 0 and pending == 0


def test_a_bench_run_drops_only_the_databases_of_runs_that_ended() -> None:
    """Every run starts by dropping what killed runs left, ``WITH (FORCE)``; a database
    whose run is still going must survive that, or two runs on one machine cut each
    other's connections mid-statement."""
    import subprocess

    import asyncpg
    from bench.common import PG_ADMIN_URL, drop_leftover_databases

    running = subprocess.Popen(["sleep", "60"])
    finished = subprocess.Popen(["true"])
    finished.wait()
    names = {
        "live": f"tokenbank_bench_t_{running.pid}_aaaaaa",
        "dead": f"tokenbank_bench_t_{finished.pid}_bbbbbb",
    }

    async def scenario() -> set[str]:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            for name in names.values():
                await admin.execute(f'CREATE DATABASE "{name}"')
            await drop_leftover_databases()
            rows = await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])",
                list(names.values()),
            )
            return {str(r["datname"]) for r in rows}
        finally:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.close()

    try:
        assert asyncio.run(scenario()) == {names["live"]}
    finally:
        running.kill()
        running.wait()


def test_a_partial_run_keeps_the_other_sections_figures_marked_with_their_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m bench run --only webhooks`` must not erase the ledger's figures."""
    from bench import __main__ as bench_main
    from bench import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    earlier = {"mode": "quick", "commit": "abc1234", "finished_at": "2026-12-01T10:00:00+00:00",
               "ledger": {"median": {"x": 1}}, "webhooks": {"old": True}}
    (tmp_path / "latest-quick.json").write_text(json.dumps({"details": earlier}))
    details: dict[str, Any] = {"mode": "quick", "webhooks": {"new": True}}
    bench_main._keep_sections_not_rerun(details, bench_main.QUICK, ["webhooks"])
    assert details["webhooks"] == {"new": True}
    assert details["ledger"]["median"] == {"x": 1}
    assert details["ledger"]["kept_from_commit"] == "abc1234"
    assert details["ledger"]["kept_from_run"] == "2026-12-01T10:00:00+00:00"
