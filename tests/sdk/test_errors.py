"""The server's error codes arrive as typed exceptions."""

from __future__ import annotations

import pytest

from tokenbank_client import (
    APIError,
    AuthenticationError,
    CustomerNotFound,
    HoldNotPending,
    IdempotencyKeyReused,
    InsufficientScope,
    InsufficientTokens,
    ReturnUrlNotAllowed,
    UnknownTier,
    ValidationError,
)

from sdk_kit import HOST_ORIGIN, TokenbankServer, funded, sdk

pytestmark = pytest.mark.anyio


async def test_a_charge_beyond_the_balance_is_insufficient_tokens(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 1)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with pytest.raises(InsufficientTokens) as raised:
            await billing.charge(customer, 2)
        assert (await billing.balance(customer)).balance == 1
    assert raised.value.balance == 1 and raised.value.required == 2


async def test_a_key_without_the_scope_is_refused(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 5)
    async with sdk(tokenbank.url, tokenbank.key_with("read")) as reader:
        assert (await reader.balance(customer)).balance == 5
        with pytest.raises(InsufficientScope) as raised:
            await reader.charge(customer, 1)
    assert raised.value.status_code == 403 and raised.value.code == "insufficient_scope"


async def test_an_unknown_key_is_an_authentication_error(tokenbank: TokenbankServer) -> None:
    async with sdk(tokenbank.url, "tbk_not_a_real_key") as billing:
        with pytest.raises(AuthenticationError) as raised:
            await billing.balance("anyone")
    assert raised.value.status_code == 401


async def test_a_key_reused_for_another_request_is_refused(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        await billing.charge(customer, 1, idempotency_key=f"k-{customer}")
        with pytest.raises(IdempotencyKeyReused):
            await billing.charge(customer, 2, idempotency_key=f"k-{customer}")
        assert (await billing.balance(customer)).balance == 9


async def test_a_hold_resolves_once(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 4)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        hold = await billing.create_hold(customer, 2)
        await billing.release_hold(hold.id)
        with pytest.raises(HoldNotPending):
            await billing.commit_hold(hold.id)


async def test_bad_input_is_a_validation_error(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 4)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with pytest.raises(ValidationError) as raised:
            await billing.charge(customer, -5)
        assert raised.value.status_code == 422
        with pytest.raises(UnknownTier):
            await billing.purchase(customer, "gold", return_url=f"{HOST_ORIGIN}/back")
        with pytest.raises(ReturnUrlNotAllowed):
            await billing.purchase(customer, "starter", return_url="https://evil.example/")
        assert (await billing.balance(customer)).balance == 4


async def test_every_error_carries_the_servers_body(tokenbank: TokenbankServer, customer: str) -> None:
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        await billing.upsert_customer(customer)
        with pytest.raises(APIError) as raised:
            await billing.charge(customer, 1)
    assert raised.value.body["error"]["code"] == raised.value.code == "insufficient_tokens"


async def test_a_customer_never_made_is_customer_not_found(tokenbank: TokenbankServer) -> None:
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with pytest.raises(CustomerNotFound) as raised:
            await billing.balance("nobody-made-me")
    assert raised.value.status_code == 404


async def test_a_purchase_gives_a_hosted_payment_link(
    tokenbank: TokenbankServer, customer: str
) -> None:
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        await billing.upsert_customer(customer)
        bought = await billing.purchase(customer, "starter", return_url=f"{HOST_ORIGIN}/back",
                                        idempotency_key=f"buy-{customer}")
        again = await billing.purchase(customer, "starter", return_url=f"{HOST_ORIGIN}/back",
                                       idempotency_key=f"buy-{customer}")
    assert bought.payment_intent_id.startswith("pi_") and bought.client_secret
    assert bought.hosted_url.startswith(tokenbank.url)
    assert (bought.tier, bought.tokens, bought.amount) == ("starter", 100, 500)
    assert again.payment_intent_id == bought.payment_intent_id
