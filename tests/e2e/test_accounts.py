"""Accounts in the browser: the welcome bonus arrives by following the emailed link, and
"sign out everywhere" in one browser signs the other one out."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Stack
from e2e.flows import expect_balance, sign_in, sign_up

SIGNUP_BONUS = 10


def test_sign_up_receive_the_mail_follow_the_link_and_get_the_bonus(
    page: Page, stack: Stack
) -> None:
    name = sign_up(page)
    expect_balance(page, 0)  # nothing before the address is confirmed
    expect(page.get_by_test_id("verify-email-banner")).to_be_visible()

    [mail] = stack.smtp.wait_for(f"{name}@example.com")
    assert mail.subject == "Confirm your email for tokenbank"
    link = mail.link("/verify-email")
    assert link.startswith(f"{stack.url}/verify-email?token=")

    page.goto(link)
    expect(page.get_by_test_id("verify-email-success")).to_contain_text(f"{SIGNUP_BONUS} tokens")
    expect(page).not_to_have_url(re.compile("token="))  # the token leaves the address bar
    page.get_by_role("link", name="Continue to the chat").click()
    expect_balance(page, SIGNUP_BONUS)
    expect(page.get_by_test_id("verify-email-banner")).to_have_count(0)

    # The same link again grants nothing more.
    page.goto(link)
    expect(page.get_by_test_id("verify-email-error")).to_be_visible()
    page.goto("/chat")
    expect_balance(page, SIGNUP_BONUS)


def test_sign_out_everywhere_from_a_second_browser_signs_out_the_first(
    browser: Browser, stack: Stack
) -> None:
    user = stack.register()
    contexts = [
        browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860})
        for _ in range(2)
    ]
    try:
        first, second = (context.new_page() for context in contexts)
        for page in (first, second):
            page.set_default_timeout(20_000)
            sign_in(page, user["user"]["username"], user["password"])
            expect_balance(page, SIGNUP_BONUS)

        second.get_by_test_id("nav-settings").click()
        expect(second).to_have_url(re.compile(r"/settings"))
        second.get_by_test_id("logout-everywhere").click()
        expect(second).to_have_url(re.compile(r"/login"))

        # The first browser's next request finds its session ended; renewing it fails
        # too (its refresh cookie belongs to the ended session), so it is signed out.
        first.get_by_test_id("nav-history").first.click()
        expect(first).to_have_url(re.compile(r"/login"))
        first.goto("/chat")
        expect(first).to_have_url(re.compile(r"/login"))  # no way back without signing in
    finally:
        for context in contexts:
            context.close()


def test_an_expired_access_token_is_renewed_without_signing_out(page: Page, stack: Stack) -> None:
    user = stack.register()
    sign_in(page, user["user"]["username"], user["password"])
    expect_balance(page, SIGNUP_BONUS)
    # The stored access token stops working (as after its 15 minutes); the refresh
    # cookie is still good, so the next request renews it and carries on.
    page.evaluate("window.localStorage.setItem('tokenbank.token', 'expired.access.token')")
    page.reload()
    expect_balance(page, SIGNUP_BONUS)
    expect(page).to_have_url(re.compile(r"/chat"))
    token = page.evaluate("window.localStorage.getItem('tokenbank.token')")
    assert token and token != "expired.access.token"
