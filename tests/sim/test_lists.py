"""Lists: newest first, cursors, created filters, auto-paging, expand."""

from __future__ import annotations

import time

import pytest
import stripe

from sim.sim_kit import new_intent, pay
from stripe_sim import SimServer


def test_lists_are_newest_first_and_page_with_cursors(client: stripe.StripeClient) -> None:
    ids = [new_intent(client, amount=1000 + i).id for i in range(7)]
    newest_first = list(reversed(ids))

    first = client.v1.payment_intents.list({"limit": 3})
    assert [pi.id for pi in first.data] == newest_first[:3]
    assert first.has_more is True
    assert first.url == "/v1/payment_intents"
    second = client.v1.payment_intents.list({"limit": 3, "starting_after": first.data[-1].id})
    assert [pi.id for pi in second.data] == newest_first[3:6]
    back = client.v1.payment_intents.list({"limit": 2, "ending_before": second.data[0].id})
    assert [pi.id for pi in back.data] == newest_first[1:3]
    assert back.has_more is True
    last = client.v1.payment_intents.list({"limit": 3, "starting_after": newest_first[5]})
    assert [pi.id for pi in last.data] == newest_first[6:]
    assert last.has_more is False


def test_auto_paging_iter_walks_every_page(client: stripe.StripeClient) -> None:
    ids = [new_intent(client).id for _ in range(12)]

    walked = [pi.id for pi in client.v1.payment_intents.list({"limit": 5}).auto_paging_iter()]

    assert walked == list(reversed(ids))


def test_auto_paging_iter_backwards_from_ending_before(client: stripe.StripeClient) -> None:
    ids = [new_intent(client).id for _ in range(6)]

    page = client.v1.payment_intents.list({"limit": 2, "ending_before": ids[0]})
    walked = [pi.id for pi in page.auto_paging_iter()]

    assert walked == ids[1:]  # oldest to newest, as the SDK walks backwards


def test_created_filters(client: stripe.StripeClient) -> None:
    pi = new_intent(client)
    now = int(time.time())

    assert [p.id for p in client.v1.payment_intents.list({"created": {"gte": now - 60}}).data] == [
        pi.id
    ]
    assert client.v1.payment_intents.list({"created": {"gt": now + 60}}).data == []
    assert client.v1.payment_intents.list({"created": {"lte": now - 60}}).data == []
    assert len(client.v1.events.list({"created": {"lte": now + 60}}).data) == 1


def test_event_type_filters(client: stripe.StripeClient) -> None:
    pay(client, "pm_card_visa")
    assert [e.type for e in client.v1.events.list({"type": "charge.succeeded"}).data] == [
        "charge.succeeded"
    ]
    assert {e.type for e in client.v1.events.list({"type": "payment_intent.*"}).data} == {
        "payment_intent.created",
        "payment_intent.succeeded",
    }
    both = client.v1.events.list({"types": ["charge.succeeded", "payment_intent.created"]})
    assert len(both.data) == 2


def test_bad_list_parameters(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.list({"limit": 101})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.list({"starting_after": "pi_missing"})
    assert caught.value.http_status == 404


def test_expand_latest_charge_and_payment_intent(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa")
    assert isinstance(pi.latest_charge, str)

    expanded = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert expanded.latest_charge.id == pi.latest_charge

    charge = client.v1.charges.retrieve(
        pi.latest_charge, {"expand": ["payment_intent", "balance_transaction"]}
    )
    assert isinstance(charge.payment_intent, stripe.PaymentIntent)
    assert charge.payment_intent.id == pi.id
    assert isinstance(charge.balance_transaction, stripe.BalanceTransaction)
    assert charge.balance_transaction.amount == 2000

    listed = client.v1.payment_intents.list({"expand": ["data.latest_charge"]})
    assert isinstance(listed.data[0].latest_charge, stripe.Charge)
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.payment_intents.retrieve(pi.id, {"expand": ["amount"]})


def test_events_filters_and_30_day_retention(client: stripe.StripeClient, sim: SimServer) -> None:
    sim.set_clock_offset(-60 * 86400)  # a purchase made 60 days ago
    try:
        old = pay(client, "pm_card_visa", amount=1500)
        # Seen from then, its events are there.
        [succeeded] = client.v1.events.list({"type": "payment_intent.succeeded"}).data
    finally:
        sim.set_clock_offset(0)
    assert client.v1.payment_intents.retrieve(old.id).created < time.time() - 59 * 86400
    refund = client.v1.refunds.create({"payment_intent": old.id})

    # Today the purchase's events are past Stripe's 30 days; the refund's are there.
    kept = client.v1.events.list({"limit": 100}).data
    assert [e.type for e in reversed(kept)] == ["refund.created", "charge.refunded"]
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.events.retrieve(succeeded.id)
    assert gone.value.code == "resource_missing"
    since = int(time.time()) - 60
    by_types = client.v1.events.list({"types": ["refund.created"], "created": {"gte": since}})
    assert [e.data.object["id"] for e in by_types.data] == [refund.id]
    assert client.v1.events.list({"type": "charge.*"}).data[0].type == "charge.refunded"
    # Lists go by creation time: the 60-day-old intent comes after a newer one.
    newer = new_intent(client)
    assert [pi.id for pi in client.v1.payment_intents.list().data] == [newer.id, old.id]
