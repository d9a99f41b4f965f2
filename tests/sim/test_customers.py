"""Customers, saved PaymentMethods, off-session payments and SetupIntents."""

from __future__ import annotations

import pytest
import stripe

from sim.sim_kit import Receiver, event_types, wait_until
from stripe_sim import SimServer


def new_customer(client: stripe.StripeClient, **params: object) -> stripe.Customer:
    body: dict[str, object] = {"email": "ada@example.com", "metadata": {"user_id": "7"}}
    body.update(params)
    return client.v1.customers.create(body)  # type: ignore[arg-type]


def save_card(client: stripe.StripeClient, cus: stripe.Customer, pm: str) -> stripe.PaymentMethod:
    """Save a card the way a page does: a SetupIntent confirmed with it."""
    seti = client.v1.setup_intents.create(
        {"customer": cus.id, "payment_method": pm, "confirm": True, "usage": "off_session"}
    )
    assert seti.status == "succeeded"
    return client.v1.payment_methods.retrieve(str(seti.payment_method))


def charge_off_session(
    client: stripe.StripeClient, cus: stripe.Customer, pm_id: str, amount: int = 999
) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": pm_id,
            "payment_method_types": ["card"],
            "off_session": True,
            "confirm": True,
        }
    )


def test_customer_lifecycle_with_events(client: stripe.StripeClient, sim: SimServer) -> None:
    cus = new_customer(client, name="Ada")
    assert cus.id.startswith("cus_") and cus.email == "ada@example.com"
    assert cus.metadata.to_dict() == {"user_id": "7"} and cus.test_clock is None
    assert cus.invoice_settings.default_payment_method is None

    updated = client.v1.customers.update(
        cus.id, {"email": "ada@lovelace.example", "metadata": {"tier": "pro"}}
    )
    assert updated.email == "ada@lovelace.example"
    assert updated.metadata.to_dict() == {"user_id": "7", "tier": "pro"}
    assert client.v1.customers.retrieve(cus.id).email == "ada@lovelace.example"
    found = client.v1.customers.list({"email": "ada@lovelace.example"}).data
    assert [c.id for c in found] == [cus.id]
    searched = client.v1.customers.search(
        {"query": "metadata['user_id']:'7' AND email:'ada@lovelace.example'"}
    )
    assert [c.id for c in searched.data] == [cus.id]
    assert client.v1.customers.search({"query": "metadata['user_id']:'8'"}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.search({"query": "email~'ada'"})

    deleted = client.v1.customers.delete(cus.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(cus.id).deleted is True
    assert client.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.update(cus.id, {"name": "x"})
    assert missing.value.code == "resource_missing"
    assert event_types(client) == ["customer.created", "customer.updated", "customer.deleted"]
    update_event = client.v1.events.list({"type": "customer.updated"}).data[0]
    assert update_event.data.previous_attributes is not None
    assert update_event.data.previous_attributes["email"] == "ada@example.com"


def test_attach_list_default_and_detach(client: stripe.StripeClient, sim: SimServer) -> None:
    cus = new_customer(client)
    visa = client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    mastercard = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": cus.id})
    assert visa.customer == cus.id and visa.id.startswith("pm_")

    listed = client.v1.customers.payment_methods.list(cus.id, {"type": "card"}).data
    assert {pm.id for pm in listed} == {visa.id, mastercard.id}
    by_filter = client.v1.payment_methods.list({"customer": cus.id, "type": "card"}).data
    assert {pm.id for pm in by_filter} == {visa.id, mastercard.id}
    one = client.v1.customers.payment_methods.retrieve(cus.id, visa.id)
    assert one.card is not None and one.card.last4 == "4242"

    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": visa.id}})
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method == visa.id

    detached = client.v1.payment_methods.detach(visa.id)
    assert detached.customer is None
    # Detaching the default PaymentMethod clears it from the customer.
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None
    assert [pm.id for pm in client.v1.customers.payment_methods.list(cus.id).data] == [
        mastercard.id
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(visa.id)
    other = new_customer(client, email="bob@example.com")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(mastercard.id, {"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(
            other.id, {"invoice_settings": {"default_payment_method": mastercard.id}}
        )
    types = event_types(client)
    assert types.count("payment_method.attached") == 2
    assert types.count("payment_method.detached") == 1


def test_a_declining_card_cannot_be_attached_but_0341_can(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    cus = new_customer(client)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": cus.id})
    assert declined.value.code == "card_declined"
    fails_later = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": cus.id}
    )
    assert fails_later.customer == cus.id and fails_later.card is not None
    assert fails_later.card.last4 == "0341"

    for off_session in (True, False):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.create(
                {
                    "amount": 500,
                    "currency": "usd",
                    "customer": cus.id,
                    "payment_method": fails_later.id,
                    "payment_method_types": ["card"],
                    "off_session": off_session,
                    "confirm": True,
                }
            )
        assert caught.value.code == "card_declined"
        assert caught.value.error is not None
        assert caught.value.error.decline_code == "generic_decline"


def test_setup_future_usage_saves_the_card_to_the_customer(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    cus = new_customer(client)
    pi = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "customer": cus.id,
            "setup_future_usage": "off_session",
            "payment_method_types": ["card"],
        }
    )
    assert pi.customer == cus.id and pi.setup_future_usage == "off_session"
    paid = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert paid.status == "succeeded"
    pm = client.v1.payment_methods.retrieve(str(paid.payment_method))
    assert pm.customer == cus.id
    assert "payment_method.attached" in event_types(client)

    again = charge_off_session(client, cus, pm.id)
    assert again.status == "succeeded" and again.customer == cus.id
    mine = client.v1.payment_intents.list({"customer": cus.id}).data
    assert {p.id for p in mine} == {pi.id, again.id}


def test_without_setup_future_usage_nothing_is_saved(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    cus = new_customer(client)
    pi = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"
    assert client.v1.customers.payment_methods.list(cus.id).data == []


def test_always_authenticate_card_fails_off_session(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    """4000 0027 6000 3184 (``pm_card_authenticationRequired``) needs 3D Secure on every
    payment: off-session it declines with ``authentication_required``."""
    cus = new_customer(client)
    seti = client.v1.setup_intents.create(
        {"customer": cus.id, "payment_method": "pm_card_authenticationRequired", "confirm": True}
    )
    assert seti.status == "requires_action"
    hooked.authenticate(seti.id, "complete")
    pm_id = str(client.v1.setup_intents.retrieve(seti.id).payment_method)

    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(client, cus, pm_id)
    error = caught.value
    assert error.code == "authentication_required"
    assert error.error is not None and error.error.decline_code == "authentication_required"
    assert error.error.payment_intent is not None
    pi = client.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error is not None
    assert pi.last_payment_error.code == "authentication_required"
    assert pi.last_payment_error.payment_method is not None
    assert pi.last_payment_error.payment_method.id == pm_id
    wait_until(
        lambda: "payment_intent.payment_failed" in [e["type"] for e in receiver.delivered()],
        what="payment_intent.payment_failed delivered",
    )
    # Bringing the customer back on-session: confirm again, authenticate, paid.
    retried = client.v1.payment_intents.confirm(pi.id, {"payment_method": pm_id})
    assert retried.status == "requires_action"
    hooked.authenticate(pi.id, "complete")
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_authenticate_unless_set_up_card(client: stripe.StripeClient, sim: SimServer) -> None:
    """4000 0025 0000 3155: off-session needs no 3D Secure once the card was set up (and
    authenticated); merely attached, it declines off-session."""
    cus = new_customer(client)
    attached = client.v1.payment_methods.attach(
        "pm_card_authenticationRequiredOnSetup", {"customer": cus.id}
    )
    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(client, cus, attached.id)
    assert caught.value.code == "authentication_required"

    seti = client.v1.setup_intents.create(
        {
            "customer": cus.id,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
            "confirm": True,
        }
    )
    assert seti.status == "requires_action"
    assert seti.next_action is not None and seti.next_action.type == "use_stripe_sdk"
    sim.authenticate(seti.id, "complete")
    done = client.v1.setup_intents.retrieve(seti.id)
    assert done.status == "succeeded"
    paid = charge_off_session(client, cus, str(done.payment_method))
    assert paid.status == "succeeded"
    # On-session, the same card still asks for 3D Secure.
    on_session = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": str(done.payment_method),
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    assert on_session.status == "requires_action"


def test_already_set_up_card_pays_off_session_but_not_on_session(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    """4000 0038 0000 0446 (``pm_card_authenticationRequiredSetupForOffSession``)."""
    cus = new_customer(client)
    pm = client.v1.payment_methods.attach(
        "pm_card_authenticationRequiredSetupForOffSession", {"customer": cus.id}
    )
    assert charge_off_session(client, cus, pm.id).status == "succeeded"
    on_session = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": pm.id,
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    assert on_session.status == "requires_action"


def test_off_session_needs_confirm(client: stripe.StripeClient, sim: SimServer) -> None:
    cus = new_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(
            {"amount": 500, "currency": "usd", "customer": cus.id, "off_session": True}
        )
    assert caught.value.param == "off_session"


def test_a_saved_card_pays_only_for_its_customer(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    ada = new_customer(client)
    bob = new_customer(client, email="bob@example.com")
    pm = save_card(client, ada, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        charge_off_session(client, bob, pm.id)
    assert caught.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            {
                "amount": 500,
                "currency": "usd",
                "payment_method": pm.id,
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create({"amount": 500, "currency": "usd", "customer": "cus_no"})


def test_setup_intent_lifecycle_and_events(
    client: stripe.StripeClient, browser: stripe.StripeClient, sim: SimServer
) -> None:
    cus = new_customer(client)
    seti = client.v1.setup_intents.create({"customer": cus.id, "payment_method_types": ["card"]})
    assert seti.status == "requires_payment_method" and seti.usage == "off_session"
    assert seti.client_secret is not None
    # The page confirms with the publishable key and the client secret.
    seen = browser.v1.setup_intents.retrieve(seti.id, {"client_secret": seti.client_secret})
    assert seen.id == seti.id
    done = browser.v1.setup_intents.confirm(
        seti.id, {"client_secret": seti.client_secret, "payment_method": "pm_card_visa"}
    )
    assert done.status == "succeeded"
    pm = client.v1.payment_methods.retrieve(str(done.payment_method))
    assert pm.customer == cus.id
    assert event_types(client) == [
        "customer.created",
        "setup_intent.created",
        "payment_method.attached",
        "setup_intent.succeeded",
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.confirm(seti.id, {"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError):
        browser.v1.setup_intents.retrieve(seti.id)

    declined = client.v1.setup_intents.create({"customer": cus.id})
    with pytest.raises(stripe.CardError) as caught:
        client.v1.setup_intents.confirm(declined.id, {"payment_method": "pm_card_chargeDeclined"})
    assert caught.value.code == "card_declined"
    after = client.v1.setup_intents.retrieve(declined.id)
    assert after.status == "requires_payment_method"
    assert after.last_setup_error is not None and after.last_setup_error.code == "card_declined"
    assert event_types(client)[-1] == "setup_intent.setup_failed"
    canceled = client.v1.setup_intents.cancel(declined.id)
    assert canceled.status == "canceled"

    failing_3ds = client.v1.setup_intents.create(
        {"customer": cus.id, "payment_method": "pm_card_authenticationRequired", "confirm": True}
    )
    sim.authenticate(failing_3ds.id, "fail")
    failed = client.v1.setup_intents.retrieve(failing_3ds.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error is not None
    assert failed.last_setup_error.code == "setup_intent_authentication_failure"
    with pytest.raises(Exception, match="no pending 3D Secure authentication"):
        sim.authenticate(failing_3ds.id, "complete")  # answered already: nothing to answer
    assert len(client.v1.customers.payment_methods.list(cus.id).data) == 1


def test_receipt_email_is_kept_on_create_confirm_and_update(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    """``receipt_email``: where Stripe sends the receipt of a live payment."""
    cus = new_customer(client)
    pi = client.v1.payment_intents.create(
        {
            "amount": 500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "receipt_email": "ada@example.com",
        }
    )
    assert (pi.status, pi.receipt_email) == ("succeeded", "ada@example.com")
    assert client.v1.payment_intents.retrieve(pi.id).receipt_email == "ada@example.com"
    other = client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "payment_method_types": ["card"]}
    )
    assert other.receipt_email is None
    updated = client.v1.payment_intents.update(other.id, {"receipt_email": "b@example.com"})
    assert updated.receipt_email == "b@example.com"


def test_a_saved_card_declined_at_creation_answers_402_with_the_intent(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    """4000 0000 0000 0341 attached, then charged off-session at creation: a card error
    whose ``payment_intent`` is the intent, which a replay with the same key repeats."""
    cus = new_customer(client)
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    params = {
        "amount": 500,
        "currency": "usd",
        "customer": cus.id,
        "payment_method": pm.id,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        "off_session": True,
        "confirm": True,
    }
    seen = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": "topup:1"},
            )
        assert caught.value.error is not None and caught.value.error.payment_intent is not None
        seen.append(caught.value.error.payment_intent.id)
    assert seen[0] == seen[1]
    pi = client.v1.payment_intents.retrieve(seen[0])
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error is not None and pi.last_payment_error.code == "card_declined"
