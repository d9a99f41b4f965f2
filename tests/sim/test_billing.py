"""Products, prices, subscriptions, invoices and test clocks, driven by the SDK."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from sim.sim_kit import Receiver, event_types, wait_until
from stripe_sim import SimServer

# 1 Jan 2030 00:00 UTC: months of 31, 28, 31 and 30 days follow.
START = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
DAY = 86400


def month(n: int) -> int:
    """The start of the n-th month after START."""
    year, mon = divmod(n, 12)
    return calendar.timegm((2030 + year, mon + 1, 1, 0, 0, 0))


def plan(client: stripe.StripeClient, key: str, cents: int) -> stripe.Price:
    return client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": cents,
            "recurring": {"interval": "month"},
            "lookup_key": key,
            "product_data": {"name": key.title()},
            "metadata": {"tokens": str(cents // 10)},
        }
    )


def clocked_customer(
    client: stripe.StripeClient, pm: str = "pm_card_visa"
) -> tuple[stripe.test_helpers.TestClock, stripe.Customer, str]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START, "name": "t"})
    cus = client.v1.customers.create({"email": "ada@example.com", "test_clock": clock.id})
    pm_id = client.v1.payment_methods.attach(pm, {"customer": cus.id}).id
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm_id}})
    return clock, cus, pm_id


def subscribe(client: stripe.StripeClient, cus: stripe.Customer, price: stripe.Price) -> Any:
    return client.v1.subscriptions.create(
        {"customer": cus.id, "items": [{"price": price.id}]}
    )


def advance(client: stripe.StripeClient, sim: SimServer, clock_id: str, to: int) -> None:
    clock = client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": to})
    assert clock.status == "advancing"
    wait_until(
        lambda: client.v1.test_helpers.test_clocks.retrieve(clock_id).status == "ready",
        timeout_s=10,
        what="the test clock to be ready",
    )
    assert client.v1.test_helpers.test_clocks.retrieve(clock_id).frozen_time == to


def invoices_of(client: stripe.StripeClient, sub_id: str) -> list[stripe.Invoice]:
    listed = client.v1.invoices.list({"subscription": sub_id, "limit": 100}).data
    return list(reversed(listed))  # oldest first


def test_catalog_is_synced_idempotently_by_lookup_key(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    product = client.v1.products.create({"name": "Basic", "metadata": {"plan": "basic"}})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 499,
            "recurring": {"interval": "month"},
            "lookup_key": "basic_monthly",
            "metadata": {"tokens": "300"},
        }
    )
    assert price.type == "recurring" and price.recurring is not None
    assert price.recurring.interval == "month" and str(price.unit_amount_decimal) == "499"

    found = client.v1.prices.list({"lookup_keys": ["basic_monthly"], "expand": ["data.product"]})
    assert [p.id for p in found.data] == [price.id]
    assert isinstance(found.data[0].product, stripe.Product)
    searched = client.v1.prices.search({"query": "lookup_key:'basic_monthly' AND active:'true'"})
    assert [p.id for p in searched.data] == [price.id]
    assert client.v1.prices.search({"query": "metadata['tokens']:'300'"}).data[0].id == price.id
    assert client.v1.products.search({"query": "metadata['plan']:'basic'"}).data[0].id == product.id

    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.prices.create(
            {
                "product": product.id,
                "currency": "usd",
                "unit_amount": 599,
                "recurring": {"interval": "month"},
                "lookup_key": "basic_monthly",
            }
        )
    assert taken.value.param == "lookup_key"
    moved = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 599,
            "recurring": {"interval": "month"},
            "lookup_key": "basic_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert client.v1.prices.retrieve(price.id).lookup_key is None
    assert client.v1.prices.list({"lookup_keys": ["basic_monthly"]}).data[0].id == moved.id
    archived = client.v1.prices.update(price.id, {"active": False})
    assert archived.active is False
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.delete(product.id)
    assert event_types(client, type="price.*") == ["price.created", "price.created", "price.updated"]


def test_default_incomplete_then_the_page_pays_the_first_invoice(
    client: stripe.StripeClient, browser: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    cus = client.v1.customers.create({"email": "ada@example.com"})
    sub = client.v1.subscriptions.create(
        {
            "customer": cus.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "payment_settings": {"save_default_payment_method": "on_subscription"},
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.status == "open" and invoice.billing_reason == "subscription_create"
    assert invoice.amount_due == 499 and invoice.lines.data[0].amount == 499
    assert invoice.confirmation_secret is not None
    secret = invoice.confirmation_secret.client_secret
    assert invoice.confirmation_secret.type == "payment_intent"
    # Not expanded, the includable field is absent, as on Stripe.
    assert "confirmation_secret" not in client.v1.invoices.retrieve(invoice.id).to_dict()

    pi_id = secret.split("_secret_")[0]
    paid = browser.v1.payment_intents.confirm(
        pi_id, {"client_secret": secret, "payment_method": "pm_card_visa"}
    )
    assert paid.status == "succeeded" and paid.amount == 499

    after = client.v1.subscriptions.retrieve(sub.id)
    assert after.status == "active"
    assert after.default_payment_method == paid.payment_method
    inv = client.v1.invoices.retrieve(invoice.id, {"expand": ["payments"]})
    assert inv.status == "paid" and inv.amount_paid == 499 and inv.amount_remaining == 0
    assert inv.payments is not None
    payment = inv.payments.data[0]
    assert payment.payment.payment_intent == pi_id and payment.status == "paid"
    by_intent = client.v1.invoice_payments.list({"payment": {"type": "payment_intent",
                                                             "payment_intent": pi_id}})
    assert by_intent.data[0].invoice == invoice.id
    types = event_types(client)
    for expected in ("customer.subscription.created", "invoice.created", "invoice.finalized",
                     "invoice.paid", "invoice.payment_succeeded",
                     "customer.subscription.updated"):
        assert expected in types
    assert types.index("invoice.finalized") < types.index("invoice.paid")
    assert types.index("invoice.paid") < len(types) - 1 - types[::-1].index(
        "customer.subscription.updated"
    )


def test_first_invoice_needing_3d_secure(client: stripe.StripeClient, sim: SimServer) -> None:
    price = plan(client, "basic", 499)
    cus = client.v1.customers.create({})
    sub = client.v1.subscriptions.create(
        {
            "customer": cus.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    secret = sub.latest_invoice.confirmation_secret.client_secret  # type: ignore[union-attr]
    pi_id = secret.split("_secret_")[0]
    pending = client.v1.payment_intents.confirm(
        pi_id, {"payment_method": "pm_card_authenticationRequired"}
    )
    assert pending.status == "requires_action"
    assert "invoice.payment_action_required" in event_types(client)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    sim.authenticate(pi_id, "complete")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_three_renewals_each_with_its_invoice_and_events(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, pm_id = clocked_customer(client)
    sub = subscribe(client, cus, price)
    assert sub.status == "active" and sub.test_clock == clock.id
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (START, month(1))
    assert client.v1.subscription_items.list({"subscription": sub.id}).data[0].id == item.id
    found = client.v1.subscriptions.search({"query": f"customer:'{cus.id}' AND status:'active'"})
    assert [s.id for s in found.data] == [sub.id]

    advance(client, hooked, clock.id, month(2))  # two intervals at most in one advance
    advance(client, hooked, clock.id, month(3))

    invoices = invoices_of(client, sub.id)
    assert [i.billing_reason for i in invoices] == [
        "subscription_create",
        "subscription_cycle",
        "subscription_cycle",
        "subscription_cycle",
    ]
    assert [i.status for i in invoices] == ["paid"] * 4
    assert [i.period_start for i in invoices[1:]] == [month(1), month(2), month(3)]
    assert [i.created for i in invoices] == [START, month(1), month(2), month(3)]
    assert all(i.amount_paid == 499 for i in invoices)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (month(3), month(4))
    assert renewed.latest_invoice == invoices[-1].id

    def paid_invoices() -> list[str]:
        return [e["data"]["object"]["id"] for e in receiver.delivered()
                if e["type"] == "invoice.paid"]

    wait_until(lambda: len(paid_invoices()) == 4, what="four invoice.paid webhooks")
    assert paid_invoices() == [i.id for i in invoices]
    clock_events = event_types(client, type="test_helpers.test_clock.*")
    assert clock_events == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ]
    # Each renewal's charge is an ordinary charge: refunds work as for any payment.
    last_pi = client.v1.invoice_payments.list({"invoice": invoices[-1].id}).data[0]
    refund = client.v1.refunds.create(
        {"payment_intent": str(last_pi.payment.payment_intent)}
    )
    assert refund.status == "succeeded" and refund.amount == 499


def test_the_clock_advances_two_intervals_at_most_and_only_forward(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, _ = clocked_customer(client)
    subscribe(client, cus, price)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": month(3)})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START - 1})
    client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": month(1)})
    with pytest.raises(stripe.InvalidRequestError):  # still advancing
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": month(2)})
    assert sim.run_later() >= 1
    assert client.v1.test_helpers.test_clocks.retrieve(clock.id).status == "ready"


def test_a_failed_renewal_then_the_card_fixed(client: stripe.StripeClient, sim: SimServer) -> None:
    price = plan(client, "basic", 499)
    clock, cus, good_pm = clocked_customer(client)
    sub = subscribe(client, cus, price)
    # The card on file now declines every charge (Stripe's 4000 0000 0000 0341).
    bad_pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.customers.update(
        cus.id, {"invoice_settings": {"default_payment_method": bad_pm.id}}
    )
    advance(client, sim, clock.id, month(1) + DAY)

    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.status == "open" and renewal.attempt_count == 1
    assert renewal.amount_paid == 0 and renewal.amount_remaining == 499
    assert "invoice.payment_failed" in event_types(client)
    updates = client.v1.events.list({"type": "customer.subscription.updated"}).data
    assert any(
        e.data.previous_attributes is not None
        and e.data.previous_attributes.to_dict().get("status") == "active"
        and e.data.object["status"] == "past_due"
        for e in updates
    )

    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(renewal.id)
    paid = client.v1.invoices.pay(renewal.id, {"payment_method": good_pm})
    assert paid.status == "paid" and paid.amount_paid == 499
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(renewal.id).attempt_count == 3
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(renewal.id)


def test_renewal_needing_authentication_makes_it_past_due(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, price)
    seti = client.v1.setup_intents.create(
        {"customer": cus.id, "payment_method": "pm_card_authenticationRequired", "confirm": True}
    )
    sim.authenticate(seti.id, "complete")
    client.v1.subscriptions.update(
        sub.id, {"default_payment_method": str(client.v1.setup_intents.retrieve(seti.id)
                                               .payment_method)}
    )
    advance(client, sim, clock.id, month(1))
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    renewal = invoices_of(client, sub.id)[-1]
    pi_id = client.v1.invoice_payments.list({"invoice": renewal.id}).data[0].payment.payment_intent
    assert client.v1.payment_intents.retrieve(str(pi_id)).status == "requires_action"
    assert "invoice.payment_action_required" in event_types(client)
    sim.authenticate(str(pi_id), "complete")
    assert client.v1.invoices.retrieve(renewal.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_upgrade_mid_period_invoices_the_prorated_difference(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    basic, pro = plan(client, "basic", 499), plan(client, "pro", 999)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, basic)
    advance(client, sim, clock.id, START + 15 * DAY)  # 16 of January's 31 days remain

    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": item.id, "price": pro.id}], "proration_behavior": "always_invoice"},
    )
    assert updated["items"].data[0].price.id == pro.id
    upgrade = client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert upgrade.billing_reason == "subscription_update" and upgrade.status == "paid"
    credit, charge = (line.amount for line in upgrade.lines.data)
    assert credit == -round(499 * 16 / 31) and charge == round(999 * 16 / 31)
    assert upgrade.amount_paid == charge + credit
    assert all(line.parent.subscription_item_details.proration for line in upgrade.lines.data)  # type: ignore[union-attr]
    # The next renewal bills the new price in full.
    advance(client, sim, clock.id, month(1))
    assert invoices_of(client, sub.id)[-1].amount_paid == 999


def test_create_prorations_waits_for_the_next_invoice(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    basic, pro = plan(client, "basic", 499), plan(client, "pro", 999)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, pro)
    advance(client, sim, clock.id, START + 15 * DAY)
    item = sub["items"].data[0]
    client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": basic.id}]})
    assert len(invoices_of(client, sub.id)) == 1  # nothing invoiced yet
    advance(client, sim, clock.id, month(1))
    renewal = invoices_of(client, sub.id)[-1]
    difference = round(499 * 16 / 31) - round(999 * 16 / 31)
    assert renewal.total == 499 + difference
    assert len(renewal.lines.data) == 3


def test_downgrade_credit_goes_to_the_customer_balance(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    basic, pro = plan(client, "basic", 499), plan(client, "pro", 999)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, pro)
    item = sub["items"].data[0]
    client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": item.id, "price": basic.id}], "proration_behavior": "always_invoice"},
    )
    credit_invoice = invoices_of(client, sub.id)[-1]
    assert credit_invoice.total == 499 - 999 and credit_invoice.amount_due == 0
    assert credit_invoice.status == "paid"
    assert client.v1.customers.retrieve(cus.id).balance == 499 - 999
    advance(client, sim, clock.id, month(1))
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.starting_balance == 499 - 999 and renewal.amount_due == 0
    assert renewal.status == "paid"
    assert client.v1.customers.retrieve(cus.id).balance == 499 - 999 + 499


def test_cancel_at_period_end_and_cancel_now(client: stripe.StripeClient, sim: SimServer) -> None:
    price = plan(client, "basic", 499)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, price)
    later = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert later.cancel_at_period_end is True and later.cancel_at == month(1)
    assert later.status == "active"
    advance(client, sim, clock.id, month(1) + DAY)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == month(1)
    assert len(invoices_of(client, sub.id)) == 1  # no renewal
    assert "customer.subscription.deleted" in event_types(client)
    assert client.v1.subscriptions.list({"customer": cus.id}).data == []
    assert len(client.v1.subscriptions.list({"customer": cus.id, "status": "all"}).data) == 1

    other = subscribe(client, cus, price)
    canceled = client.v1.subscriptions.cancel(other.id)
    assert canceled.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(other.id)


def test_an_unpaid_first_invoice_expires_after_23_hours(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START})
    cus = client.v1.customers.create({"test_clock": clock.id})
    sub = client.v1.subscriptions.create(
        {"customer": cus.id, "items": [{"price": price.id}], "payment_behavior": "default_incomplete"}
    )
    advance(client, sim, clock.id, START + 22 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    advance(client, sim, clock.id, START + DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete_expired"
    assert client.v1.invoices.retrieve(str(sub.latest_invoice)).status == "void"


def test_allow_incomplete_with_a_declining_card_stays_incomplete(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    _, cus, _ = clocked_customer(client, pm="pm_card_chargeCustomerFail")
    sub = subscribe(client, cus, price)
    assert sub.status == "incomplete"
    inv = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert inv.status == "open" and inv.attempt_count == 1
    voided = client.v1.invoices.void_invoice(inv.id)
    assert voided.status == "void"


def test_deleting_a_clock_deletes_its_customers(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, _ = clocked_customer(client)
    sub = subscribe(client, cus, price)
    assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [clock.id]
    deleted = client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(cus.id).deleted is True
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert client.v1.test_helpers.test_clocks.list().data == []


def test_paying_an_invoice_with_a_card_needing_3d_secure_says_so(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, _ = clocked_customer(client, pm="pm_card_chargeCustomerFail")
    sub = subscribe(client, cus, price)
    invoice_id = str(sub.latest_invoice)
    needs_3ds = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", {"customer": cus.id}
    )
    with pytest.raises(stripe.CardError) as caught:
        client.v1.invoices.pay(invoice_id, {"payment_method": needs_3ds.id})
    assert caught.value.code == "invoice_payment_intent_requires_action"
    pi = client.v1.payment_intents.retrieve(
        str(client.v1.invoice_payments.list({"invoice": invoice_id}).data[0].payment.payment_intent)
    )
    assert pi.status == "requires_action"
    assert pi.next_action is not None and pi.next_action.use_stripe_sdk is not None
    assert str(pi.next_action.use_stripe_sdk["stripe_js"]).startswith(sim.url)
    sim.authenticate(pi.id, "complete")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_paying_an_older_invoice_leaves_past_due_while_the_latest_is_unpaid(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, good_pm = clocked_customer(client)
    sub = subscribe(client, cus, price)
    bad_pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.customers.update(
        cus.id, {"invoice_settings": {"default_payment_method": bad_pm.id}}
    )
    advance(client, sim, clock.id, month(2))
    first_failed, second_failed = invoices_of(client, sub.id)[1:]
    assert (first_failed.status, second_failed.status) == ("open", "open")
    client.v1.invoices.pay(first_failed.id, {"payment_method": good_pm})
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    client.v1.invoices.pay(second_failed.id, {"payment_method": good_pm})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_pending_if_incomplete_upgrade_applies_only_when_paid(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    basic, pro = plan(client, "basic", 499), plan(client, "pro", 999)
    clock, cus, good_pm = clocked_customer(client)
    sub = subscribe(client, cus, basic)
    bad_pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.subscriptions.update(sub.id, {"default_payment_method": bad_pm.id})
    item = sub["items"].data[0]
    change = {
        "items": [{"id": item.id, "price": pro.id}],
        "proration_behavior": "always_invoice",
        "payment_behavior": "pending_if_incomplete",
    }

    pending = client.v1.subscriptions.update(sub.id, change)  # type: ignore[arg-type]
    assert pending.status == "active"  # not past_due: nothing changed yet
    assert pending["items"].data[0].price.id == basic.id
    assert pending.pending_update is not None
    assert pending.pending_update.subscription_items[0].price.id == pro.id
    assert pending.pending_update.expires_at == START + 23 * 3600
    invoice = client.v1.invoices.retrieve(str(pending.latest_invoice))
    assert invoice.status == "open" and invoice.billing_reason == "subscription_update"

    client.v1.invoices.pay(invoice.id, {"payment_method": good_pm})
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied.pending_update is None
    assert applied["items"].data[0].price.id == pro.id
    assert "customer.subscription.pending_update_applied" in event_types(client)

    # A second pending change never paid expires after 23 hours; its invoice is voided.
    again = client.v1.subscriptions.update(
        sub.id, {**change, "items": [{"id": item.id, "price": basic.id}]}  # type: ignore[arg-type]
    )
    assert again.pending_update is None  # a downgrade's credit needs no payment: applied
    assert again["items"].data[0].price.id == basic.id
    # (its credit, 500, now sits on the customer's balance and pays part of the next one)
    premium = plan(client, "premium", 1999)
    third = client.v1.subscriptions.update(
        sub.id, {**change, "items": [{"id": item.id, "price": premium.id}]}  # type: ignore[arg-type]
    )
    assert third.pending_update is not None
    assert client.v1.invoices.retrieve(str(third.latest_invoice)).amount_due == 1999 - 499 - 500
    advance(client, sim, clock.id, START + DAY)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.pending_update is None and expired.status == "active"
    assert expired["items"].data[0].price.id == basic.id
    assert client.v1.invoices.retrieve(str(third.latest_invoice)).status == "void"
    assert "customer.subscription.pending_update_expired" in event_types(client)
    assert client.v1.customers.retrieve(cus.id).balance == -500  # the voided invoice's credit


def test_a_sepa_debit_renewal_is_processing_then_pays_the_invoice(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 499,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Basic"},
        }
    )
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START})
    cus = client.v1.customers.create({"test_clock": clock.id})
    sepa = client.v1.payment_methods.attach("pm_success_de", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": sepa.id}})
    sub = subscribe(client, cus, price)
    assert sub.status == "incomplete"  # the first debit is processing
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.status == "open"
    assert "payment_intent.processing" in event_types(client)
    sim.run_later()
    assert client.v1.invoices.retrieve(first.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
