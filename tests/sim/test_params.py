"""Stripe's nested form parameters, decoded as Stripe decodes them."""

from __future__ import annotations

import pytest

from stripe_sim.errors import ParameterUnknown
from stripe_sim.params import MalformedParameters, Params, decode_form


def test_nested_keys_lists_and_metadata() -> None:
    raw = (
        "amount=2000&metadata[user_id]=1&metadata[42]=answer"
        "&automatic_payment_methods[enabled]=true&expand[]=latest_charge&expand[]=customer"
        "&payment_method_types[0]=card&card[number]=4242&empty="
    )
    assert decode_form(raw) == {
        "amount": "2000",
        "metadata": {"user_id": "1", "42": "answer"},
        "automatic_payment_methods": {"enabled": "true"},
        "expand": ["latest_charge", "customer"],
        "payment_method_types": ["card"],
        "card": {"number": "4242"},
        "empty": "",
    }


def test_indexed_lists_keep_their_order() -> None:
    assert decode_form("a[1]=y&a[0]=x&a[10]=z") == {"a": ["x", "y", "z"]}


@pytest.mark.parametrize("raw", ["a=1&a[b]=2", "a[b]=2&a=1", "[x]=1", "a[b=1"])
def test_conflicting_or_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(MalformedParameters):
        decode_form(raw)


def test_unread_parameters_are_reported_with_their_full_name() -> None:
    params = Params(decode_form("amount=1&card[number]=4242&card[colour]=red"))
    params.integer("amount")
    card = params.nested("card")
    assert card is not None
    card.text("number")
    with pytest.raises(ParameterUnknown) as caught:
        params.finish()
    assert caught.value.param == "card[colour]"
