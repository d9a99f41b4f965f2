"""What a person does in the app, as reusable browser steps."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from e2e.conftest import Stack


def sign_up(page: Page, stack: Stack | None = None, username: str | None = None) -> str:
    """Sign up in the browser; with ``stack``, also follow the emailed verification link
    (which grants the welcome bonus) and come back to the chat."""
    name = username or f"e{uuid.uuid4().hex[:10]}"
    page.goto("/register")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Email").fill(f"{name}@example.com")
    page.get_by_label("Password").fill("e2e-pass-123")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/chat"))
    if stack is not None:
        confirm_email(page, stack, f"{name}@example.com")
    return name


def confirm_email(page: Page, stack: Stack, email: str) -> None:
    page.goto(stack.verification_link(email))
    expect(page.get_by_test_id("verify-email-success")).to_be_visible()
    page.get_by_role("link", name="Continue to the chat").click()
    expect(page).to_have_url(re.compile(r"/chat"))


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat"))


def balance(page: Page) -> int:
    text = page.get_by_test_id("token-balance").first.inner_text()
    return int(re.sub(r"[^\d-]", "", text))


def expect_balance(page: Page, value: int) -> None:
    expect(page.get_by_test_id("token-balance").first).to_have_text(
        re.compile(rf"^\D*{value}\D*$"), timeout=20_000
    )


def choose_tier(page: Page, tier: str) -> None:
    page.get_by_test_id("nav-payment").first.click()
    page.get_by_test_id(f"tier-{tier}").click()
    expect(page.locator("input[name=cardnumber]")).to_be_visible()


def fill_card(
    page: Page, number: str, exp: str = "12 / 34", cvc: str = "123", postal: str = "10001"
) -> None:
    page.locator("input[name=cardnumber]").fill(number)
    page.locator("input[name=exp-date]").fill(exp)
    page.locator("input[name=cvc]").fill(cvc)
    postal_input = page.locator("input[name=postal]")
    if postal_input.count():
        postal_input.fill(postal)


def pay(page: Page) -> None:
    page.get_by_test_id("pay-button").click()


def send_message(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("send-button").click()
