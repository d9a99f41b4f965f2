"""A new user's journeys through the real app in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.conftest import Stack
from e2e.flows import (
    balance,
    choose_tier,
    expect_balance,
    fill_card,
    pay,
    send_message,
    sign_in,
    sign_up,
)

SIGNUP_BONUS = 10


def test_sign_up_buy_starter_and_chat(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    expect_balance(page, SIGNUP_BONUS)
    choose_tier(page, "starter")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("payment-success")).to_be_visible()
    expect(page.get_by_test_id("payment-success")).to_contain_text("100")
    expect_balance(page, SIGNUP_BONUS + 100)

    page.get_by_test_id("nav-chat").first.click()
    send_message(page, "What is 2 + 2?")
    expect(page.get_by_test_id("ai-message").last).to_contain_text("offline model")
    expect_balance(page, SIGNUP_BONUS + 100 - 1)


def test_declined_card_shows_the_reason_and_adds_nothing(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    expect_balance(page, SIGNUP_BONUS)
    choose_tier(page, "standard")
    fill_card(page, "4000 0000 0000 0002")
    pay(page)
    expect(page.get_by_test_id("payment-error")).to_be_visible()
    expect(page.get_by_test_id("payment-error")).to_contain_text(re.compile("declined", re.I))
    expect(page.get_by_test_id("payment-success")).to_have_count(0)
    page.reload()
    expect_balance(page, SIGNUP_BONUS)


def test_3d_secure_completed_is_credited(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    choose_tier(page, "starter")
    fill_card(page, "4000 0027 6000 3184")
    pay(page)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Complete").click()
    expect(page.get_by_test_id("payment-success")).to_be_visible()
    expect_balance(page, SIGNUP_BONUS + 100)


def test_3d_secure_failed_is_not_credited(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    choose_tier(page, "starter")
    fill_card(page, "4000 0027 6000 3184")
    pay(page)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Fail").click()
    expect(page.get_by_test_id("payment-error")).to_be_visible()
    expect(page.get_by_test_id("payment-success")).to_have_count(0)
    page.reload()
    expect_balance(page, SIGNUP_BONUS)


def test_running_out_leads_to_payment_and_back_with_the_draft(page: Page, stack: Stack) -> None:
    user = stack.register()
    sign_in(page, user["user"]["username"], user["password"])
    for i in range(SIGNUP_BONUS):
        send_message(page, f"message {i}")
        expect(page.get_by_test_id("ai-message")).to_have_count(i + 1)
    expect_balance(page, 0)
    draft = "one more question, please"
    send_message(page, draft)
    prompt = page.get_by_test_id("insufficient-tokens")
    expect(prompt).to_be_visible()
    expect(page.get_by_test_id("ai-message")).to_have_count(SIGNUP_BONUS)
    prompt.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/payment"))
    page.get_by_test_id("tier-starter").click()
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("payment-success")).to_be_visible()
    expect_balance(page, 100)
    page.get_by_role("link", name=re.compile("back to chat", re.I)).or_(
        page.get_by_role("button", name=re.compile("back to chat", re.I))
    ).first.click()
    expect(page).to_have_url(re.compile(r"/chat/\d+"))
    expect(page.get_by_test_id("chat-input")).to_have_value(draft)
    page.get_by_test_id("send-button").click()
    expect(page.get_by_test_id("ai-message")).to_have_count(SIGNUP_BONUS + 1)
    expect_balance(page, 99)


def test_language_toggle_switches_and_is_remembered(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    nav = page.get_by_test_id("nav-payment").first
    expect(nav).to_contain_text(re.compile("[A-Za-z]"))
    page.get_by_test_id("language-toggle").first.click()
    expect(nav).to_contain_text(re.compile("[\u4e00-\u9fff]"))
    page.reload()
    expect(page.get_by_test_id("nav-payment").first).to_contain_text(re.compile("[\u4e00-\u9fff]"))
    assert balance(page) == SIGNUP_BONUS


def test_refund_this_reply_works_once(page: Page, stack: Stack) -> None:
    sign_up(page, stack)
    expect_balance(page, SIGNUP_BONUS)
    page.get_by_test_id("nav-chat").first.click()
    send_message(page, "What is 2 + 2?")
    expect(page.get_by_test_id("ai-message").last).to_contain_text("offline model")
    expect_balance(page, SIGNUP_BONUS - 1)

    page.get_by_test_id("refund-reply").click()
    page.get_by_label("Incomplete").check()
    page.get_by_label("Anything to add? (optional)").fill("It stopped mid-sentence")
    page.get_by_test_id("refund-submit").dblclick()

    expect(page.get_by_test_id("reply-refunded")).to_contain_text("Refunded")
    expect_balance(page, SIGNUP_BONUS)
    expect(page.get_by_test_id("refund-reply")).to_have_count(0)
    page.reload()  # the server remembers: refunded, and not offered again
    expect(page.get_by_test_id("reply-refunded")).to_have_text("Refunded")
    expect(page.get_by_test_id("refund-reply")).to_have_count(0)
    expect_balance(page, SIGNUP_BONUS)
