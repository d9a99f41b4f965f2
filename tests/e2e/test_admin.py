"""The admin dashboard in a real browser: corrections people can see, charts fed by real
purchases and replies, and the door closed to everyone else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Stack
from e2e.flows import choose_tier, expect_balance, fill_card, pay, send_message, sign_in, sign_up

SIGNUP_BONUS = 10
STARTER_TOKENS = 100


def make_admin(stack: Stack) -> dict[str, Any]:
    """Register someone, then promote them the way an operator would: with the CLI."""
    admin = stack.register()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tokenbank.cli",
            "users",
            "promote",
            str(admin["user"]["id"]),
            "--yes",
        ],
        env=os.environ | {"DATABASE_URL": stack.db_url},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return admin


def tokens_sold(stack: Stack, admin: dict[str, Any]) -> int:
    """What the dashboard should report as sold in 30 days, asked of the API directly."""
    with stack.api() as c:
        token = c.post(
            "/api/auth/login",
            json={"username": admin["user"]["username"], "password": admin["password"]},
        ).json()["access_token"]
        stats = c.get(
            "/api/admin/stats",
            params={"days": 30},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert stats.status_code == 200, stats.text
    return sum(int(d["tokens_sold"]) for d in stats.json()["daily"])


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text))


@pytest.fixture
def admin_page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A second browser (its own storage), so a customer and an admin can be signed in at once."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_grant_with_a_reason_reaches_the_users_history(
    page: Page, admin_page: Page, stack: Stack
) -> None:
    admin = make_admin(stack)
    customer = stack.register()
    name = customer["user"]["username"]

    sign_in(admin_page, admin["user"]["username"], admin["password"])
    admin_page.get_by_test_id("nav-admin").click()
    admin_page.get_by_test_id("admin-tab-users").click()
    admin_page.get_by_label("Search users").fill(name)
    rows = admin_page.get_by_test_id("admin-user-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(name)
    rows.get_by_role("link", name=name).click()
    expect(admin_page).to_have_url(re.compile(rf"/admin/users/{customer['user']['id']}$"))
    expect(admin_page.get_by_test_id("admin-user-available")).to_have_text(str(SIGNUP_BONUS))

    admin_page.get_by_test_id("admin-grant-amount").fill("25")
    admin_page.get_by_test_id("admin-grant-submit").click()
    expect(admin_page.get_by_text("A reason is required.")).to_be_visible()
    admin_page.get_by_test_id("admin-grant-reason").fill("support ticket 42")
    admin_page.get_by_test_id("admin-grant-submit").click()
    dialog = admin_page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Grant 25 tokens to {name}?")
    expect(dialog).to_contain_text("support ticket 42")
    dialog.get_by_role("button", name=re.compile(r"^Yes")).click()
    expect(admin_page.get_by_test_id("admin-grant-success")).to_be_visible()
    expect(admin_page.get_by_test_id("admin-user-available")).to_have_text(str(SIGNUP_BONUS + 25))
    expect(admin_page.get_by_test_id("admin-ledger-row").first).to_contain_text("support ticket 42")

    sign_in(page, name, customer["password"])
    expect_balance(page, SIGNUP_BONUS + 25)
    page.get_by_test_id("nav-history").click()
    grant = page.get_by_test_id("transaction-row").filter(has_text="support ticket 42")
    expect(grant).to_have_count(1)
    expect(grant).to_contain_text("+25")


def test_overview_charts_a_real_purchase_and_reply(
    page: Page, admin_page: Page, stack: Stack
) -> None:
    admin = make_admin(stack)
    sold_before = tokens_sold(stack, admin)

    buyer = sign_up(page, stack)
    choose_tier(page, "starter")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("payment-success")).to_be_visible()
    page.get_by_test_id("nav-chat").first.click()
    send_message(page, "Hello from the admin test")
    expect(page.get_by_test_id("ai-message").last).to_be_visible()
    expect_balance(page, SIGNUP_BONUS + STARTER_TOKENS - 1)

    sign_in(admin_page, admin["user"]["username"], admin["password"])
    admin_page.goto("/admin")
    sold = admin_page.get_by_test_id("admin-stat-tokens-sold")
    expect(sold).to_be_visible()
    assert digits(sold.inner_text()) == sold_before + STARTER_TOKENS
    assert digits(admin_page.get_by_test_id("admin-stat-tokens-used").inner_text()) >= 1
    assert digits(admin_page.get_by_test_id("admin-stat-revenue").inner_text()) >= 500

    daily = admin_page.get_by_test_id("admin-chart-daily")
    expect(daily.locator("svg.recharts-surface").first).to_be_visible()
    expect(daily.locator(".recharts-bar-rectangle path").first).to_be_visible()
    revenue = admin_page.get_by_test_id("admin-chart-revenue")
    expect(revenue.locator(".recharts-bar-rectangle path").first).to_be_visible()
    spenders = admin_page.get_by_test_id("admin-chart-top-spenders")
    expect(spenders.locator(".recharts-bar-rectangle path").first).to_be_visible()
    expect(spenders.get_by_test_id("chart-empty")).to_have_count(0)

    # The purchase is on the payments tab too, with its user.
    admin_page.get_by_test_id("admin-tab-payments").click()
    payments = admin_page.get_by_test_id("admin-payments")
    expect(
        payments.get_by_test_id("admin-payment-row").filter(has_text=buyer).first
    ).to_contain_text("Succeeded")
    admin_page.get_by_test_id("admin-tab-webhooks").click()
    expect_eventually_listed(admin_page, "payment_intent.succeeded")


def expect_eventually_listed(page: Page, event_type: str, within_s: float = 20) -> None:
    """Stripe's webhook may land after the page loaded: refresh the inbox until it shows."""
    deadline = time.monotonic() + within_s
    inbox = page.get_by_test_id("admin-webhooks")
    while True:
        try:
            expect(inbox).to_contain_text(event_type, timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.get_by_role("button", name="Refresh").click()


def test_the_dashboard_is_closed_to_everyone_else(page: Page, stack: Stack) -> None:
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/login$"))

    sign_up(page)
    page.goto("/admin/users")
    expect(page.get_by_test_id("admin-forbidden")).to_be_visible()
    expect(page.get_by_test_id("admin-forbidden")).to_contain_text("admins only")
    expect(page.get_by_test_id("nav-admin")).to_have_count(0)
    expect(page.get_by_test_id("admin-users")).to_have_count(0)
