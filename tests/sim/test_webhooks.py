"""Webhooks: Stripe's signature, at-least-once retries, injected faults."""

from __future__ import annotations

import threading

import stripe

from sim.sim_kit import WEBHOOK_SECRET, Receiver, pay, wait_until
from stripe_sim import SimConfig, SimServer


def test_events_are_signed_as_stripe_signs_them(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    pi = pay(client, "pm_card_visa")
    hooked.wait_webhooks_idle(5)

    received = receiver.received
    assert [r.event["type"] for r in received] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    for r in received:
        event = stripe.Webhook.construct_event(
            r.body, r.headers["stripe-signature"], WEBHOOK_SECRET
        )
        assert event.livemode is False
        assert r.headers["content-type"].startswith("application/json")
    succeeded = stripe.Webhook.construct_event(
        received[2].body, received[2].headers["stripe-signature"], WEBHOOK_SECRET
    )
    assert succeeded.type == "payment_intent.succeeded"
    assert succeeded.data.object["id"] == pi.id
    assert succeeded.data.object["metadata"]["user_id"] == "7"
    assert succeeded.request is not None and succeeded.request.idempotency_key
    created = received[0].event
    assert created["data"]["object"]["status"] == "requires_payment_method"  # a snapshot
    assert client.v1.events.retrieve(created["id"]).pending_webhooks == 0


def test_a_wrong_secret_fails_verification(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    pay(client, "pm_card_visa")
    hooked.wait_webhooks_idle(5)
    r = receiver.received[0]
    try:
        stripe.Webhook.construct_event(r.body, r.headers["stripe-signature"], "whsec_other")
    except stripe.SignatureVerificationError:
        pass
    else:
        raise AssertionError("a signature made with another secret verified")


def test_non_2xx_is_retried_with_backoff_until_accepted(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    receiver.respond = lambda event, nth: 500 if nth <= 2 else 200

    client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    hooked.wait_webhooks_idle(5)

    log = hooked.deliveries()
    assert [(d["attempt"], d["status_code"], d["outcome"]) for d in log] == [
        (1, 500, "failed"),
        (2, 500, "failed"),
        (3, 200, "delivered"),
    ]
    gaps = [b["at"] - a["at"] for a, b in zip(log, log[1:], strict=False)]
    assert gaps[0] >= 0.05 * 0.9 and gaps[1] >= 0.1 * 0.9  # base 0.05s, doubling
    assert len(receiver.delivered()) == 1


def test_retries_are_bounded(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    receiver.respond = lambda event, nth: 503

    client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    hooked.wait_webhooks_idle(5)

    log = hooked.deliveries()
    assert [d["attempt"] for d in log] == [1, 2, 3, 4]  # webhook_max_attempts=4
    assert log[-1]["outcome"] == "abandoned"
    assert len(receiver.received) == 4
    event_id = log[0]["event_id"]
    assert client.v1.events.retrieve(event_id).pending_webhooks == 1


def test_a_failing_event_does_not_block_the_others(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    receiver.respond = lambda event, nth: 500 if event["type"] == "charge.succeeded" else 200

    pay(client, "pm_card_visa")
    wait_until(lambda: len(receiver.delivered()) == 2, what="the two healthy events")

    assert [e["type"] for e in receiver.delivered()] == [
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    hooked.wait_webhooks_idle(5)


def test_a_timeout_counts_as_failure_and_is_retried(receiver: Receiver) -> None:
    receiver.clear()
    slow_once = threading.Event()

    def respond(event: dict[str, object], nth: int) -> int:
        if nth == 1:
            slow_once.wait(1.0)  # longer than the simulator waits
        return 200

    receiver.respond = respond
    config = SimConfig(
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_timeout_s=0.2,
        webhook_backoff_base_s=0.05,
    )
    with SimServer(config) as sim:
        client = stripe.StripeClient("sk_test_t", base_addresses={"api": sim.url})
        client.v1.payment_intents.create(
            {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
        )
        sim.wait_webhooks_idle(5)
        log = sim.deliveries()
    slow_once.set()
    assert [(d["outcome"], d["error"]) for d in log] == [
        ("failed", "timeout"),
        ("delivered", None),
    ]


def test_unreachable_endpoint_counts_as_failure(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    sim.set_webhook("http://127.0.0.1:9/nothing-listens-here", WEBHOOK_SECRET)
    client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    sim.wait_webhooks_idle(5)
    log = sim.deliveries()
    assert len(log) == 4
    assert all(d["status_code"] is None and d["error"] for d in log)


def test_fault_duplicates(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    hooked.set_faults(duplicates=3)

    pay(client, "pm_card_visa")
    hooked.wait_webhooks_idle(5)

    ids = [e["id"] for e in receiver.delivered()]
    assert len(ids) == 9
    assert all(ids.count(i) == 3 for i in ids)


def test_fault_random_duplicates_are_reproducible_with_a_seed(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    counts = []
    for _ in range(2):
        receiver.clear()
        hooked.set_faults(duplicates=4, duplicates_random=True, seed=7)
        for _ in range(6):
            client.v1.payment_intents.create(
                {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
            )
        hooked.wait_webhooks_idle(5)
        ids = [e["id"] for e in receiver.delivered()]
        per_event = [ids.count(i) for i in dict.fromkeys(ids)]
        counts.append(per_event)
    assert counts[0] == counts[1]
    assert all(1 <= c <= 4 for c in counts[0])
    assert len(set(counts[0])) > 1


def test_fault_shuffle_reorders_but_loses_nothing(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    hooked.set_faults(shuffle=True, shuffle_window=12, shuffle_hold_s=5, seed=3)

    created = [
        client.v1.payment_intents.create(
            {"amount": 500 + i, "currency": "usd", "payment_method_types": ["card"]}
        ).id
        for i in range(12)
    ]
    hooked.wait_webhooks_idle(5)

    arrived = [e["data"]["object"]["id"] for e in receiver.delivered()]
    assert sorted(arrived) == sorted(created)
    assert arrived != created


def test_fault_fail_first_n_then_delivered(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    hooked.set_faults(fail_first_n=2)

    client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    hooked.wait_webhooks_idle(5)

    assert [d["outcome"] for d in hooked.deliveries()] == [
        "fault_dropped",
        "fault_dropped",
        "delivered",
    ]
    assert len(receiver.received) == 1  # the dropped attempts never left the simulator


def test_fault_drop_all_then_resend(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    hooked.set_faults(drop_all=True)
    pi = pay(client, "pm_card_visa")
    hooked.wait_webhooks_idle(5)
    assert receiver.received == []
    assert {d["outcome"] for d in hooked.deliveries()} == {"dropped"}

    hooked.set_faults()
    succeeded = client.v1.events.list({"type": "payment_intent.succeeded"}).data[0]
    assert hooked.resend_event(succeeded.id) is True
    hooked.wait_webhooks_idle(5)

    delivered = receiver.delivered()
    assert [e["id"] for e in delivered] == [succeeded.id]
    assert delivered[0]["data"]["object"]["id"] == pi.id


def test_fault_delay_holds_back_the_first_attempt(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    hooked.set_faults(delay_s=0.3)
    client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    assert receiver.received == []
    hooked.wait_webhooks_idle(5)
    assert len(receiver.delivered()) == 1


def test_no_endpoint_means_no_deliveries_but_events_still_exist(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pay(client, "pm_card_visa")
    sim.wait_webhooks_idle(1)
    assert sim.deliveries() == []
    assert len(client.v1.events.list().data) == 3
    assert client.v1.events.list().data[0].pending_webhooks == 0
