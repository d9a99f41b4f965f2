"""PaymentIntents through the official SDK: test cards, 3D Secure, lifecycle, keys."""

from __future__ import annotations

import httpx
import pytest
import stripe

from sim.sim_kit import event_types, new_intent, pay
from stripe_sim import SimServer

SUCCEEDING = ["pm_card_visa", "pm_card_mastercard"]
DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
]


@pytest.mark.parametrize("pm", SUCCEEDING)
def test_succeeding_cards_pay_in_full(client: stripe.StripeClient, pm: str) -> None:
    pi = pay(client, pm, amount=2000)

    assert pi.status == "succeeded"
    assert pi.amount_received == 2000
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert charge.amount_captured == 2000
    assert charge.payment_intent == pi.id
    assert charge.metadata.to_dict() == {"user_id": "7", "tier": "standard"}
    assert charge.outcome is not None and charge.outcome.type == "authorized"
    assert event_types(client) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


@pytest.mark.parametrize(("pm", "code", "decline_code"), DECLINES)
def test_declined_cards_raise_card_error_and_reopen_the_intent(
    client: stripe.StripeClient, pm: str, code: str, decline_code: str
) -> None:
    pi = new_intent(client)

    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": pm})

    err = caught.value
    assert err.http_status == 402
    assert err.code == code
    assert err.error is not None and err.error.decline_code == decline_code
    assert err.user_message
    assert err.error.payment_intent is not None
    assert err.error.payment_intent.id == pi.id
    assert err.error.payment_intent.status == "requires_payment_method"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.payment_method is None
    assert after.last_payment_error is not None
    assert after.last_payment_error.decline_code == decline_code
    failed = client.v1.charges.retrieve(str(after.latest_charge))
    assert (failed.status, failed.paid, failed.failure_code) == ("failed", False, code)
    assert event_types(client) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]


def test_after_a_decline_the_same_intent_can_be_paid_with_another_card(
    client: stripe.StripeClient,
) -> None:
    pi = new_intent(client)
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_chargeDeclined"})

    paid = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})

    assert paid.id == pi.id and paid.status == "succeeded"
    assert paid.last_payment_error is None
    charges = client.v1.charges.list({"payment_intent": pi.id}).data
    assert [c.status for c in charges] == ["succeeded", "failed"]


@pytest.mark.parametrize(
    "pm", ["pm_card_authenticationRequired", "pm_card_authenticationRequiredOnSetup"]
)
def test_three_d_secure_completed_succeeds(
    client: stripe.StripeClient, sim: SimServer, pm: str
) -> None:
    pi = pay(client, pm)
    assert pi.status == "requires_action"
    assert pi.next_action is not None and pi.next_action.type == "use_stripe_sdk"
    assert pi.latest_charge is None

    sim.authenticate(pi.id, "complete")

    done = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    assert done.status == "succeeded"
    assert done.next_action is None
    charge = done.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    three_ds = charge.payment_method_details.card.three_d_secure  # type: ignore[union-attr]
    assert three_ds is not None and three_ds.result == "authenticated"
    assert event_types(client) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_three_d_secure_failed_reopens_with_authentication_failure(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_authenticationRequired")

    sim.authenticate(pi.id, "fail")

    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.code == "payment_intent_authentication_failure"
    assert after.latest_charge is None
    assert event_types(client)[-1] == "payment_intent.payment_failed"
    with pytest.raises(Exception, match="no pending 3D Secure"):
        sim.authenticate(pi.id, "complete")


def test_three_d_secure_with_return_url_redirects_through_the_hosted_page(
    client: stripe.StripeClient,
) -> None:
    pi = new_intent(client)
    pi = client.v1.payment_intents.confirm(
        pi.id,
        {
            "payment_method": "pm_card_authenticationRequired",
            "return_url": "http://localhost:5173/done",
        },
    )
    assert pi.next_action is not None and pi.next_action.type == "redirect_to_url"
    page_url = pi.next_action.redirect_to_url.url  # type: ignore[union-attr]
    assert page_url is not None

    page = httpx.get(page_url)
    assert page.status_code == 200
    assert "Complete" in page.text and "Fail" in page.text and "TEST MODE" in page.text
    answer = httpx.post(
        page_url.split("?")[0],
        data={
            "outcome": "complete",
            "client_secret": pi.client_secret,
            "return_url": "http://localhost:5173/done",
        },
    )

    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("http://localhost:5173/done?payment_intent=" + pi.id)
    assert "redirect_status=succeeded" in location
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_off_session_payment_needing_authentication_is_declined(
    client: stripe.StripeClient,
) -> None:
    pi = new_intent(client)
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.confirm(
            pi.id, {"payment_method": "pm_card_authenticationRequired", "off_session": True}
        )
    assert caught.value.code == "authentication_required"


def test_create_and_confirm_in_one_call(client: stripe.StripeClient) -> None:
    pi = new_intent(client, payment_method="pm_card_visa", confirm=True, description="Starter pack")
    assert pi.status == "succeeded"
    assert pi.description == "Starter pack"


def test_server_side_confirm_with_automatic_methods_needs_return_url_as_on_stripe(
    client: stripe.StripeClient,
) -> None:
    pi = client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "automatic_payment_methods": {"enabled": True}}
    )
    assert pi.automatic_payment_methods is not None and pi.automatic_payment_methods.enabled
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert caught.value.param == "return_url"

    paid = client.v1.payment_intents.confirm(
        pi.id, {"payment_method": "pm_card_visa", "return_url": "http://localhost/ok"}
    )
    assert paid.status == "succeeded"


def test_intent_lifecycle_update_then_cancel(client: stripe.StripeClient) -> None:
    pi = new_intent(client)
    assert pi.client_secret is not None and pi.client_secret.startswith(f"{pi.id}_secret_")

    updated = client.v1.payment_intents.update(
        pi.id, {"amount": 5000, "metadata": {"tier": "premium", "user_id": ""}, "description": "x"}
    )
    assert updated.amount == 5000
    assert updated.metadata.to_dict() == {"tier": "premium"}
    assert updated.description == "x"

    canceled = client.v1.payment_intents.cancel(
        pi.id, {"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at is not None
    assert event_types(client) == ["payment_intent.created", "payment_intent.canceled"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert caught.value.code == "payment_intent_unexpected_state"


def test_succeeded_intent_keeps_its_amount_and_cannot_be_canceled(
    client: stripe.StripeClient,
) -> None:
    pi = pay(client, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.update(pi.id, {"amount": 100})
    assert caught.value.code == "payment_intent_unexpected_state"
    noted = client.v1.payment_intents.update(pi.id, {"metadata": {"credited": "yes"}})
    assert noted.metadata["credited"] == "yes"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(pi.id)


def test_invalid_requests_are_refused_with_stripe_codes(client: stripe.StripeClient) -> None:
    cases = [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": 10, "currency": "usd"}, "amount_too_small", "amount"),
        ({"amount": 500, "currency": "usd", "colour": "red"}, "parameter_unknown", "colour"),
        ({"amount": "lots", "currency": "usd"}, "parameter_invalid_integer", "amount"),
    ]
    for params, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.payment_intents.create(params)  # type: ignore[arg-type]
        assert (caught.value.code, caught.value.param, caught.value.http_status) == (
            code,
            param,
            400,
        )


def test_unknown_ids_are_404_resource_missing(client: stripe.StripeClient) -> None:
    for call in (
        lambda: client.v1.payment_intents.retrieve("pi_nope"),
        lambda: client.v1.charges.retrieve("ch_nope"),
        lambda: client.v1.refunds.retrieve("re_nope"),
        lambda: client.v1.disputes.retrieve("dp_nope"),
        lambda: client.v1.events.retrieve("evt_nope"),
        lambda: pay(client, "pm_nope"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.http_status == 404
        assert caught.value.code == "resource_missing"


def test_card_typed_in_browser_decides_the_outcome(
    client: stripe.StripeClient, browser: stripe.StripeClient
) -> None:
    pm = browser.v1.payment_methods.create(
        {
            "type": "card",
            "card": {
                "number": "4000 0000 0000 9995",
                "exp_month": 12,
                "exp_year": 2099,
                "cvc": "123",
            },
            "billing_details": {"address": {"postal_code": "94103"}},
        }
    )
    assert pm.id.startswith("pm_") and pm.card is not None and pm.card.last4 == "9995"
    pi = new_intent(client)
    with pytest.raises(stripe.CardError) as caught:
        browser.v1.payment_intents.confirm(
            pi.id, {"payment_method": pm.id, "client_secret": pi.client_secret}
        )
    assert caught.value.error is not None
    assert caught.value.error.decline_code == "insufficient_funds"


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ({"number": "4242424242424241", "exp_month": 12, "exp_year": 2099}, "incorrect_number"),
        ({"number": "42", "exp_month": 12, "exp_year": 2099}, "invalid_number"),
        ({"number": "4242424242424242", "exp_month": 13, "exp_year": 2099}, "invalid_expiry_month"),
        ({"number": "4242424242424242", "exp_month": 1, "exp_year": 2001}, "invalid_expiry_year"),
        (
            {"number": "4242424242424242", "exp_month": 1, "exp_year": 2099, "cvc": "1"},
            "invalid_cvc",
        ),
    ],
)
def test_bad_card_details_are_card_errors(
    browser: stripe.StripeClient, card: dict[str, object], code: str
) -> None:
    with pytest.raises(stripe.CardError) as caught:
        browser.v1.payment_methods.create({"type": "card", "card": card})  # type: ignore[typeddict-item]
    assert caught.value.code == code


def test_publishable_key_needs_the_client_secret_and_nothing_more(
    client: stripe.StripeClient, browser: stripe.StripeClient
) -> None:
    pi = new_intent(client)
    seen = browser.v1.payment_intents.retrieve(pi.id, {"client_secret": pi.client_secret})
    assert seen.id == pi.id
    with pytest.raises(stripe.InvalidRequestError):
        browser.v1.payment_intents.retrieve(pi.id, {"client_secret": pi.id + "_secret_wrong"})
    with pytest.raises(stripe.InvalidRequestError):
        browser.v1.payment_intents.retrieve(pi.id)
    with pytest.raises(stripe.AuthenticationError):
        browser.v1.payment_intents.create({"amount": 500, "currency": "usd"})
    with pytest.raises(stripe.AuthenticationError):
        browser.v1.refunds.list()


def test_keys_are_checked(sim: SimServer) -> None:
    missing = httpx.get(f"{sim.url}/v1/payment_intents")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    live = stripe.StripeClient("sk_live_nope", base_addresses={"api": sim.url})
    with pytest.raises(stripe.AuthenticationError):
        live.v1.payment_intents.list()
    basic = httpx.get(f"{sim.url}/v1/payment_intents", auth=("sk_test_basic", ""))
    assert basic.status_code == 200 and basic.json()["object"] == "list"
    unknown = httpx.get(f"{sim.url}/v1/checkout/sessions", headers={"Authorization": "Bearer sk_test_x"})
    assert unknown.status_code == 404 and "Unrecognized request URL" in unknown.text


def test_configured_api_key_is_the_only_one_accepted() -> None:
    from stripe_sim import SimConfig

    with SimServer(SimConfig(api_key="sk_test_only")) as sim:
        good = stripe.StripeClient("sk_test_only", base_addresses={"api": sim.url})
        assert good.v1.payment_intents.list().data == []
        other = stripe.StripeClient("sk_test_other", base_addresses={"api": sim.url})
        with pytest.raises(stripe.AuthenticationError):
            other.v1.payment_intents.list()


def test_legacy_global_api_base_style(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", "sk_test_global")
    monkeypatch.setattr(stripe, "api_base", sim.url)
    pi = stripe.PaymentIntent.create(
        amount=700, currency="usd", payment_method_types=["card"], metadata={"user_id": "1"}
    )
    pi = stripe.PaymentIntent.confirm(pi.id, payment_method="pm_card_visa")
    assert pi.status == "succeeded"
    refund = stripe.Refund.create(payment_intent=pi.id, amount=200)
    assert refund.status == "succeeded"
    assert stripe.Charge.retrieve(str(pi.latest_charge)).amount_refunded == 200
    with pytest.raises(stripe.CardError):
        stripe.PaymentIntent.create(
            amount=700,
            currency="usd",
            payment_method_types=["card"],
            payment_method="pm_card_chargeDeclined",
            confirm=True,
        )
