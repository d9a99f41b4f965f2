"""``tokenbank stripe sync-catalog``: each plan's Product and Price, found by lookup key,
created once; a changed price gets a new Price that takes the key over."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from payments.kit import SECRET_KEY, sim_config
from stripe_sim import SimServer


def sync_catalog(sim: SimServer, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "stripe", "sync-catalog"],
        env=os.environ | {
            "APP_ENV": "development",
            "DATABASE_URL": "sqlite:///:memory:",
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_API_BASE": sim.url,
        } | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sync_catalog_is_idempotent_and_follows_price_changes() -> None:
    with SimServer(sim_config()) as sim:
        first = sync_catalog(sim)
        assert first.returncode == 0, first.stderr
        lines = first.stdout.splitlines()
        assert [line.split(":")[0] for line in lines] == ["basic", "pro", "premium"]
        assert all(line.endswith("(created)") for line in lines)

        again = sync_catalog(sim)
        assert again.returncode == 0, again.stderr
        assert again.stdout.replace("exists", "created") == first.stdout

        plans = {
            "basic": {"name": "Basic", "price": 599, "monthly_tokens": 300},
            "pro": {"name": "Pro", "price": 999, "monthly_tokens": 1000},
        }
        changed = sync_catalog(sim, SUBSCRIPTION_PLANS=json.dumps(plans))
        assert changed.returncode == 0, changed.stderr
        basic, pro = changed.stdout.splitlines()
        assert basic.startswith("basic:") and basic.endswith("(created)")
        assert basic.split()[1] != lines[0].split()[1]
        assert pro == lines[1].replace("created", "exists")
