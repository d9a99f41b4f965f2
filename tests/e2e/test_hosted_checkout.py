"""Another app's customer pays on tokenbank's hosted page in a real browser: the service
API starts the purchase, the page takes a test card through the local Stripe server, says
"success" only once the tokens are in, and sends the person back to the host."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import Stack
from e2e.flows import fill_card, pay


def _key(db_url: str) -> str:
    """A key made as an operator makes one (Playwright's loop rules out asyncio.run here)."""
    made = subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "api-keys", "create", "--name", "e2e host",
         "--scope", "read,charge,checkout", "--quiet"],
        env=os.environ | {"DATABASE_URL": db_url, "APP_ENV": "development"},
        capture_output=True, text=True, timeout=120, check=True,
    )
    return made.stdout.strip()


def test_a_hosted_purchase_in_the_browser(page: Page, stack: Stack) -> None:
    key = {"Authorization": f"Bearer {_key(stack.db_url)}"}
    return_url = f"{stack.url}/login?from=host"
    with httpx.Client(base_url=stack.url, timeout=30) as api:
        assert api.put("/api/v1/customers/host-user-1", headers=key).status_code == 200
        r = api.post("/api/v1/customers/host-user-1/purchases", headers=key,
                     json={"tier": "starter", "idempotency_key": "e2e-buy",
                           "return_url": return_url})
        assert r.status_code == 200, r.text
        hosted_url = r.json()["hosted_url"]
        assert hosted_url.startswith(f"{stack.url}/checkout#token=")

        page.goto(hosted_url)
        expect(page.get_by_test_id("checkout-pack")).to_contain_text("100 tokens")
        fill_card(page, "4242424242424242")
        pay(page)
        expect(page.get_by_test_id("payment-success")).to_contain_text("100 tokens were added")
        balance = api.get("/api/v1/customers/host-user-1/balance", headers=key).json()
        assert balance["balance"] == 100
        page.wait_for_url(return_url)
