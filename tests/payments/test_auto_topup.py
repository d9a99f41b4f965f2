"""Saved cards, one-click packs, auto top-up and the alerts they send (issue 17).

Against the local Stripe server and a real SMTP server, on both databases.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from payments.kit import PayEnv, payment_settings
from smtp_kit import Received, SmtpServer
from stripe_sim import SimServer
from tokenbank.config import Settings
from tokenbank.ledger.models import TokenTransaction
from tokenbank.notifications.models import Notification
from tokenbank.payments.flows import ensure_customer, run_auto_topup
from tokenbank.payments.models import AutoTopup, Payment
from tokenbank.payments.stripe_client import StripeGateway

from support import wait_for

pytestmark = pytest.mark.anyio

ORIGIN = "http://app.example.test"


@pytest.fixture
def pay_settings(db_url: str, sim: SimServer, smtp: SmtpServer) -> Settings:
    return payment_settings(
        db_url,
        sim,
        **smtp.settings,
        app_origin=ORIGIN,
        notification_mail_interval_s=0.1,
        signup_bonus_tokens=100,
    )


@pytest.fixture
async def gateway(env: PayEnv) -> AsyncIterator[StripeGateway]:
    g = StripeGateway(env.settings)
    yield g
    await g.aclose()


# --- helpers ---------------------------------------------------------------------------


def uid(user: dict[str, Any]) -> int:
    return int(user["user"]["id"])


def email(user: dict[str, Any]) -> str:
    return str(user["user"]["email"])


async def buy_saving_card(env: PayEnv, user: dict[str, Any], pm: str = "pm_card_visa") -> str:
    r = await env.http.post(
        "/api/payment/create-payment-intent",
        json={"tier": "starter", "save_card": True},
        headers=user["headers"],
    )
    assert r.status_code == 200, r.text
    pi = await env.pay(r.json(), pm)
    assert pi.status == "succeeded"
    return str(r.json()["payment_intent_id"])


async def saved_cards(env: PayEnv, user: dict[str, Any]) -> list[dict[str, Any]]:
    r = await env.http.get("/api/payment/saved-payment-methods", headers=user["headers"])
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def attach_card(
    env: PayEnv, gateway: StripeGateway, user: dict[str, Any], test_pm: str
) -> str:
    """A card saved on the person's Customer without a purchase (as a SetupIntent would)."""
    customer = await ensure_customer(env.db, gateway, env.settings, uid(user))
    pm = await env.server.v1.payment_methods.attach_async(
        test_pm, {"customer": customer.customer_id}
    )
    return str(pm.id)


async def set_topup(env: PayEnv, user: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "enabled": True,
        "threshold": 80,
        "tier": "starter",
        "monthly_max_count": 5,
        "monthly_max_amount": 5000,
    } | overrides
    r = await env.http.put("/api/payment/auto-topup", json=body, headers=user["headers"])
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def topup(env: PayEnv, user: dict[str, Any]) -> dict[str, Any]:
    r = await env.http.get("/api/payment/auto-topup", headers=user["headers"])
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def attempts(env: PayEnv, user: dict[str, Any]) -> list[AutoTopup]:
    async with env.db.transaction() as s:
        rows = await s.execute(
            select(AutoTopup).where(AutoTopup.user_id == uid(user)).order_by(AutoTopup.id)
        )
        return list(rows.scalars())


async def notifications(env: PayEnv, user: dict[str, Any]) -> dict[str, Any]:
    r = await env.http.get("/api/notifications", headers=user["headers"])
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def kinds(env: PayEnv, user: dict[str, Any]) -> list[str]:
    return [n["kind"] for n in reversed((await notifications(env, user))["items"])]


async def chat(env: PayEnv, user: dict[str, Any]) -> int:
    r = await env.http.post("/api/chats", json={}, headers=user["headers"])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def spend(env: PayEnv, user: dict[str, Any], chat_id: int, n: int = 1) -> list[int]:
    async def one(i: int) -> int:
        r = await env.http.post(
            f"/api/chats/{chat_id}/generate", json={"content": f"q{i}"}, headers=user["headers"]
        )
        return r.status_code

    return list(await asyncio.gather(*(one(i) for i in range(n))))


# --- saved cards and one click ---------------------------------------------------------


async def test_a_saved_card_buys_again_in_one_click_and_only_its_owner_sees_it(
    env: PayEnv,
) -> None:
    alice, bob = await env.user(), await env.user()
    first = await buy_saving_card(env, alice)
    await env.wait_balance(alice, 200)
    cards = await saved_cards(env, alice)
    assert [(c["brand"], c["last4"], c["is_default"]) for c in cards] == [("visa", "4242", True)]
    assert await saved_cards(env, bob) == []
    # The receipt goes to the verified address (real Stripe emails it).
    pi = await env.server.v1.payment_intents.retrieve_async(first)
    assert pi.receipt_email == email(alice)

    r = await env.http.post(
        "/api/payment/create-payment-intent",
        json={"tier": "starter", "payment_method_id": cards[0]["id"]},
        headers=alice["headers"] | {"Idempotency-Key": "one-click-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    again = await env.http.post(
        "/api/payment/create-payment-intent",
        json={"tier": "starter", "payment_method_id": cards[0]["id"]},
        headers=alice["headers"] | {"Idempotency-Key": "one-click-1"},
    )
    assert again.json()["payment_intent_id"] == r.json()["payment_intent_id"]
    await env.wait_balance(alice, 300)  # one pack, however many times the click arrives

    # Bob cannot pay with, or remove, Alice's card: it does not exist for him.
    stolen = await env.http.post(
        "/api/payment/create-payment-intent",
        json={"tier": "starter", "payment_method_id": cards[0]["id"]},
        headers=bob["headers"],
    )
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "payment_method_not_found"
    gone = await env.http.delete(
        f"/api/payment/saved-payment-methods/{cards[0]['id']}", headers=bob["headers"]
    )
    assert gone.status_code == 404
    assert len(await saved_cards(env, alice)) == 1

    removed = await env.http.delete(
        f"/api/payment/saved-payment-methods/{cards[0]['id']}", headers=alice["headers"]
    )
    assert removed.status_code == 204
    assert await saved_cards(env, alice) == []


async def test_a_saved_card_that_needs_3d_secure_hands_the_page_its_client_secret(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_authenticationRequired")
    r = await env.http.post(
        "/api/payment/create-payment-intent",
        json={"tier": "starter", "payment_method_id": pm},
        headers=user["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requires_action"
    assert r.json()["client_secret"].startswith(r.json()["payment_intent_id"])


# --- auto top-up -----------------------------------------------------------------------


async def test_fifty_concurrent_charges_crossing_the_threshold_buy_exactly_one_pack(
    env: PayEnv, smtp: SmtpServer
) -> None:
    user = await env.user()
    await buy_saving_card(env, user)
    await env.wait_balance(user, 200)
    await set_topup(env, user, threshold=170)
    chat_id = await chat(env, user)

    statuses = await spend(env, user, chat_id, 50)
    assert statuses == [200] * 50

    await env.wait_balance(user, 200 - 50 + 100, "one top-up credited")
    env.settle()
    found = await attempts(env, user)
    assert [a.state for a in found] == ["succeeded"]
    view = await topup(env, user)
    assert view["this_month"] == {"count": 1, "amount": 500}
    assert view["state"] == "active"
    async with env.db.transaction() as s:
        paid = await s.scalar(
            select(func.count()).select_from(Payment).where(Payment.user_id == uid(user))
        )
    assert paid == 2  # the pack bought by hand, and one top-up
    await wait_for(
        lambda: _has(env, user, "topup_succeeded"), what="the success notification"
    )
    (mail,) = await alert_mail(smtp, user, 1)
    assert "100 tokens added" in mail.subject


async def test_racing_triggers_start_one_attempt_the_database_decides(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_visa")
    await set_topup(env, user, threshold=150, payment_method_id=pm)  # 100 now; 200 after one
    started = await asyncio.gather(
        *(run_auto_topup(env.db, gateway, env.settings, uid(user)) for _ in range(20))
    )
    assert len([pi for pi in started if pi]) == 1
    await env.wait_balance(user, 200)
    assert [a.state for a in await attempts(env, user)] == ["succeeded"]


async def test_the_monthly_caps_hold(env: PayEnv, gateway: StripeGateway) -> None:
    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_visa")
    await set_topup(env, user, threshold=10_000, monthly_max_count=2, payment_method_id=pm)
    for _ in range(4):
        await run_auto_topup(env.db, gateway, env.settings, uid(user))
    await env.wait_balance(user, 300)
    assert (await topup(env, user))["this_month"] == {"count": 2, "amount": 1000}
    assert len(await attempts(env, user)) == 2

    # The amount cap: a pack of 500 cents does not fit under 900 once 500 are spent.
    other = await env.user()
    pm2 = await attach_card(env, gateway, other, "pm_card_visa")
    await set_topup(
        env, other, threshold=10_000, monthly_max_amount=900, payment_method_id=pm2
    )
    for _ in range(3):
        await run_auto_topup(env.db, gateway, env.settings, uid(other))
    await env.wait_balance(other, 200)
    assert (await topup(env, other))["this_month"] == {"count": 1, "amount": 500}


async def test_a_card_needing_authentication_pauses_it_and_the_email_links_to_finish(
    env: PayEnv, gateway: StripeGateway, smtp: SmtpServer
) -> None:
    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_authenticationRequired")
    await set_topup(env, user, threshold=1000, payment_method_id=pm)
    pi_id = await run_auto_topup(env.db, gateway, env.settings, uid(user))
    assert pi_id

    view = await topup(env, user)
    assert (view["state"], view["paused_reason"]) == ("paused", "authentication_required")
    assert f"payment_intent={pi_id}" in view["action_url"]
    assert [a.state for a in await attempts(env, user)] == ["action_required"]
    # Paused: nothing more is tried.
    assert await run_auto_topup(env.db, gateway, env.settings, uid(user)) is None

    (mail,) = await alert_mail(smtp, user, 1)
    assert "confirm" in mail.subject
    assert f"{ORIGIN}/payment?payment_intent={pi_id}" in mail.text
    assert "payment_intent_client_secret=" in mail.text
    env.settle()
    assert await kinds(env, user) == ["topup_paused"]
    assert len(_alerts(smtp, user)) == 1


async def test_three_declines_in_a_row_turn_it_off(
    env: PayEnv, gateway: StripeGateway, smtp: SmtpServer
) -> None:
    user = await env.user()
    # Attaches fine, then declines every charge (Stripe's 4000 0000 0000 0341).
    pm = await attach_card(env, gateway, user, "pm_card_chargeCustomerFail")
    await set_topup(env, user, threshold=1000, payment_method_id=pm)
    for round_ in (1, 2, 3):
        assert await run_auto_topup(env.db, gateway, env.settings, uid(user))
        view = await topup(env, user)
        assert view["consecutive_failures"] == round_
        if round_ < 3:
            assert (view["state"], view["paused_reason"]) == ("paused", "generic_decline")
            await set_topup(env, user, threshold=1000, payment_method_id=pm)  # try again
    assert (view["state"], view["enabled"]) == ("off", False)
    assert await run_auto_topup(env.db, gateway, env.settings, uid(user)) is None
    env.settle()
    assert await kinds(env, user) == ["topup_failed", "topup_failed", "topup_disabled"]
    mails = await alert_mail(smtp, user, 3)
    assert "turned off" in mails[-1].subject
    assert await env.balance(user) == 100  # nothing credited


async def test_duplicated_and_shuffled_webhooks_credit_a_top_up_once(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_visa")
    await set_topup(env, user, threshold=1000, payment_method_id=pm)
    pi_id = await run_auto_topup(env.db, gateway, env.settings, uid(user))
    assert pi_id
    env.settle()
    events = await env.events(pi_id)
    assert events
    replayed = events * 3
    random.Random(17).shuffle(replayed)
    for event in replayed:
        r = await env.post_event(event)
        assert r.status_code == 200, r.text
    env.settle()
    await env.wait_inbox_done()
    assert await env.balance(user) == 200
    async with env.db.transaction() as s:
        credits = await s.scalar(
            select(func.count())
            .select_from(TokenTransaction)
            .where(TokenTransaction.stripe_payment_intent_id == pi_id)
        )
        told = await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == uid(user), Notification.kind == "topup_succeeded")
        )
    assert (credits, told) == (1, 1)
    assert [a.state for a in await attempts(env, user)] == ["succeeded"]


# --- low-balance alerts ----------------------------------------------------------------


async def test_each_low_balance_alert_is_emailed_once_per_crossing(
    env: PayEnv, smtp: SmtpServer
) -> None:
    user = await env.user()
    r = await env.http.put(
        "/api/notifications/settings",
        json={"low_balance_thresholds": [95, 90], "email_alerts": True},
        headers=user["headers"],
    )
    assert r.status_code == 200, r.text
    chat_id = await chat(env, user)

    for _ in range(12):  # 100 -> 88: below 95, then below 90; each once
        assert await spend(env, user, chat_id) == [200]
    await alert_mail(smtp, user, 2)
    await wait_for(lambda: _count(env, user, "balance_low", 2), what="two alerts")

    await env.buy(user, "starter")  # 188: both re-armed by the next charge
    await env.wait_balance(user, 188)
    assert await spend(env, user, chat_id) == [200]  # 187, above both: re-armed
    for _ in range(93):  # 187 -> 94: below 95 again (once)
        assert await spend(env, user, chat_id) == [200]
    mails = await alert_mail(smtp, user, 3)
    await wait_for(lambda: _count(env, user, "balance_low", 3), what="the third alert")
    subjects = sorted(m.subject for m in mails)
    assert subjects == sorted(
        [
            "Your tokenbank balance is below 95 tokens",
            "Your tokenbank balance is below 90 tokens",
            "Your tokenbank balance is below 95 tokens",
        ]
    )
    listing = await notifications(env, user)
    assert listing["unread"] == 3
    r = await env.http.post("/api/notifications/read", json={}, headers=user["headers"])
    assert r.json() == {"unread": 0}
    assert len(_alerts(smtp, user)) == 3


async def alert_mail(smtp: SmtpServer, user: dict[str, Any], count: int) -> list[Received]:
    """The alerts emailed to the person (not the sign-up's verification email), once
    ``count`` have arrived."""

    async def arrived() -> bool:
        return len(_alerts(smtp, user)) >= count

    await wait_for(arrived, what=f"{count} alert emails")
    return _alerts(smtp, user)


def _alerts(smtp: SmtpServer, user: dict[str, Any]) -> list[Received]:
    return [m for m in smtp.messages(email(user)) if "Confirm your email" not in m.subject]


async def _has(env: PayEnv, user: dict[str, Any], kind: str) -> bool:
    return kind in await kinds(env, user)


async def _count(env: PayEnv, user: dict[str, Any], kind: str, n: int) -> bool:
    found = (await kinds(env, user)).count(kind)
    assert found <= n, f"{found} {kind} notifications, expected {n}"
    return found == n



async def test_alert_settings_are_checked_and_email_alerts_can_be_turned_off(
    env: PayEnv,
) -> None:
    user = await env.user()
    too_many = await env.http.put(
        "/api/notifications/settings",
        json={"low_balance_thresholds": [1, 2, 3, 4], "email_alerts": True},
        headers=user["headers"],
    )
    assert too_many.status_code == 422
    r = await env.http.put(
        "/api/notifications/settings",
        json={"low_balance_thresholds": [99], "email_alerts": False},
        headers=user["headers"],
    )
    assert r.json() == {"low_balance_thresholds": [99], "email_alerts": False}
    chat_id = await chat(env, user)
    assert await spend(env, user, chat_id, 2) == [200, 200]
    await wait_for(lambda: _count(env, user, "balance_low", 1), what="the alert")
    async with env.db.transaction() as s:
        states = list(
            (
                await s.execute(
                    select(Notification.email_state).where(Notification.user_id == uid(user))
                )
            ).scalars()
        )
    assert states == ["skipped"]  # listed in the app, never emailed
    note = (await notifications(env, user))["items"][0]
    assert note["data"] == {"threshold": 99, "available": note["data"]["available"]}
    assert note["data"]["available"] < 99 and "below 99" in note["title"]


async def test_an_attempt_stranded_before_its_intent_is_driven_again_with_the_same_key(
    env: PayEnv, gateway: StripeGateway
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from tokenbank.payments import autotopup
    from tokenbank.types import utcnow

    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_visa")
    await set_topup(env, user, threshold=150, payment_method_id=pm)
    # A process committed the attempt, then stopped before asking Stripe.
    async with env.db.transaction() as s:
        started = await autotopup.start_attempt(s, env.settings, uid(user), 100)
    assert started is not None
    assert await run_auto_topup(env.db, gateway, env.settings, uid(user)) is None  # in flight
    async with env.db.transaction() as s:
        await s.execute(
            update(AutoTopup)
            .where(AutoTopup.id == started.attempt_id)
            .values(created_at=utcnow() - timedelta(minutes=5))
        )
    pi_id = await run_auto_topup(env.db, gateway, env.settings, uid(user))
    assert pi_id is not None
    await env.wait_balance(user, 200)
    found = await attempts(env, user)
    assert [(a.id, a.state, a.payment_intent_id) for a in found] == [
        (started.attempt_id, "succeeded", pi_id)
    ]
    at_stripe = await env.server.v1.payment_intents.retrieve_async(pi_id)
    assert at_stripe.metadata["auto_topup_id"] == str(started.attempt_id)


async def test_finishing_the_paused_top_up_on_the_page_credits_it_and_resumes(
    env: PayEnv, gateway: StripeGateway
) -> None:
    from urllib.parse import parse_qs, urlsplit

    user = await env.user()
    pm = await attach_card(env, gateway, user, "pm_card_authenticationRequired")
    await set_topup(env, user, threshold=150, payment_method_id=pm)
    pi_id = await run_auto_topup(env.db, gateway, env.settings, uid(user))
    assert pi_id
    paused = await topup(env, user)
    assert paused["state"] == "paused"

    # The page, opened from the link: the person confirms with the saved card and
    # passes 3D Secure (Stripe.js with the publishable key and the intent's secret).
    query = parse_qs(urlsplit(paused["action_url"]).query)
    assert query["payment_intent"] == [pi_id]
    pi = await env.browser.v1.payment_intents.confirm_async(
        pi_id,
        {
            "payment_method": pm,
            "client_secret": query["payment_intent_client_secret"][0],
            "return_url": f"{ORIGIN}/payment",
        },
    )
    assert pi.status == "requires_action"
    env.sim.authenticate(pi_id, "complete")

    await env.wait_balance(user, 200)
    env.settle()
    resumed = await topup(env, user)
    assert (resumed["state"], resumed["consecutive_failures"], resumed["action_url"]) == (
        "active", 0, None
    )
    assert resumed["this_month"] == {"count": 1, "amount": 500}
    assert [a.state for a in await attempts(env, user)] == ["succeeded"]
    assert await kinds(env, user) == ["topup_paused", "topup_succeeded"]


async def test_the_database_refuses_a_second_attempt_in_flight(env: PayEnv) -> None:
    from sqlalchemy.exc import IntegrityError

    user = await env.user()

    def attempt(state: str) -> AutoTopup:
        return AutoTopup(user_id=uid(user), state=state, tier="starter", amount_cents=500)

    async with env.db.transaction() as s:
        s.add_all([attempt("succeeded"), attempt("failed"), attempt("pending")])
    with pytest.raises(IntegrityError):
        async with env.db.transaction() as s:
            s.add(attempt("pending"))
    async with env.db.transaction() as s:
        s.add(attempt("succeeded"))  # finished ones are not limited


# --- the service API's spends are watched too ------------------------------------------


async def v1_customer(env: PayEnv, tokens: int) -> tuple[dict[str, str], str, int]:
    """An API key, and a new customer of the service API granted ``tokens`` (its external
    id and user id)."""
    from tokenbank.apikeys import service as apikeys
    from tokenbank.v1 import service as v1

    async with env.db.transaction() as s:
        made = await apikeys.create_key(s, "host", ("read", "charge", "grant"))
    key = {"Authorization": f"Bearer {made.secret}"}
    external_id = f"host-user-{random.getrandbits(48):x}"
    r = await env.http.put(f"/api/v1/customers/{external_id}", json={}, headers=key)
    assert r.status_code == 200, r.text
    r = await env.http.post(
        f"/api/v1/customers/{external_id}/grants",
        json={"amount": tokens, "idempotency_key": f"seed-{external_id}", "reason": "seed"},
        headers=key,
    )
    assert r.status_code == 200, r.text
    async with env.db.transaction() as s:
        user_id = (await v1.get_customer(s, external_id)).user_id
    return key, external_id, user_id


async def v1_available(env: PayEnv, key: dict[str, str], external_id: str) -> int:
    r = await env.http.get(f"/api/v1/customers/{external_id}/balance", headers=key)
    assert r.status_code == 200, r.text
    return int(r.json()["available"])


async def v1_spend(env: PayEnv, key: dict[str, str], external_id: str, i: int) -> int:
    """One token: a charge at once (even ``i``) or a hold then its commit (odd ``i``)."""
    base = f"/api/v1/customers/{external_id}"
    if i % 2 == 0:
        r = await env.http.post(
            f"{base}/charges",
            json={"amount": 1, "idempotency_key": f"c{i}", "description": "work"},
            headers=key,
        )
        return r.status_code
    r = await env.http.post(
        f"{base}/holds", json={"amount": 1, "idempotency_key": f"h{i}"}, headers=key
    )
    if r.status_code != 200:
        return r.status_code
    r = await env.http.post(f"/api/v1/holds/{r.json()['id']}/commit", json={}, headers=key)
    return r.status_code


async def test_service_api_charges_below_the_threshold_top_up_exactly_once(
    env: PayEnv, gateway: StripeGateway
) -> None:
    from tokenbank.payments.autotopup import AutoTopupChoice
    from tokenbank.payments.flows import choose_auto_topup

    key, external_id, user_id = await v1_customer(env, 200)
    customer = await ensure_customer(env.db, gateway, env.settings, user_id)
    pm = await env.server.v1.payment_methods.attach_async(
        "pm_card_visa", {"customer": customer.customer_id}
    )
    await choose_auto_topup(
        env.db,
        gateway,
        env.settings,
        user_id,
        AutoTopupChoice(
            enabled=True,
            threshold=170,
            tier="starter",
            monthly_max_count=5,
            monthly_max_amount=5000,
            payment_method_id=str(pm.id),
        ),
    )

    statuses = await asyncio.gather(*(v1_spend(env, key, external_id, i) for i in range(50)))
    assert list(statuses) == [200] * 50

    async def topped_up() -> bool:
        return await v1_available(env, key, external_id) == 200 - 50 + 100

    await wait_for(topped_up, what="one top-up credited to the customer")
    env.settle()
    async with env.db.transaction() as s:
        found = list(
            (await s.execute(select(AutoTopup).where(AutoTopup.user_id == user_id))).scalars()
        )
    assert [a.state for a in found] == ["succeeded"]
    assert await v1_available(env, key, external_id) == 250


async def test_service_api_charges_below_an_alert_threshold_alert_once(env: PayEnv) -> None:
    from tokenbank.notifications import service as notifications_service

    key, external_id, user_id = await v1_customer(env, 100)
    async with env.db.transaction() as s:
        await notifications_service.set_alert_settings(
            s, user_id, thresholds=[90], email_alerts=False
        )

    statuses = await asyncio.gather(*(v1_spend(env, key, external_id, i) for i in range(20)))
    assert list(statuses) == [200] * 20  # 100 -> 80: below 90 once

    async def alerts() -> int:
        async with env.db.transaction() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.user_id == user_id, Notification.kind == "balance_low")
                )
                or 0
            )

    async def one_alert() -> bool:
        return await alerts() >= 1

    await wait_for(one_alert, what="the low-balance alert")
    # More spending below the threshold does not alert again.
    assert await v1_spend(env, key, external_id, 100) == 200
    assert await v1_spend(env, key, external_id, 101) == 200

    async def watched_again() -> bool:  # the watch has looked at the last spend (78 left)
        return await v1_available(env, key, external_id) == 78

    await wait_for(watched_again, what="the last spends")
    env.settle()
    assert await alerts() == 1
