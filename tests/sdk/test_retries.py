"""Retries keep the idempotency key: a write whose answer was lost is sent again and the
server applies it once.

The proxy lets the request reach the server, waits for the server's answer (sent only
after the write committed), then drops it and the connection: the SDK sees a broken
connection, exactly as when a load balancer restarts mid-response.
"""

from __future__ import annotations

import time

import pytest

from tokenbank_client import APIConnectionError, ServiceUnavailable, Tokenbank

from sdk_kit import FaultyProxy, TokenbankServer, funded, sdk

pytestmark = pytest.mark.anyio


async def test_a_charge_whose_answer_was_cut_is_charged_once(
    tokenbank: TokenbankServer, proxy: FaultyProxy, customer: str
) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(proxy.url, tokenbank.key) as billing:
        proxy.cut_next_response()
        entry = await billing.charge(customer, 3)
        balance = await billing.balance(customer)
        page = await billing.transactions(customer)

    assert proxy.cut_count == 1
    charges = [r for r in proxy.requests if r.endswith("/charges")]
    assert len(charges) == 2, proxy.requests  # the cut attempt and its retry
    assert entry.balance.balance == 7 and entry.transaction.amount == -3
    assert balance.balance == 7 and balance.available == 7
    spent = [t for t in page.items if t.amount < 0]
    assert [t.amount for t in spent] == [-3], page.raw


async def test_a_hold_and_its_commit_survive_cut_answers(
    tokenbank: TokenbankServer, proxy: FaultyProxy, customer: str
) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(proxy.url, tokenbank.key) as billing:
        proxy.cut_next_response()
        hold = await billing.create_hold(customer, 4)
        held = await billing.balance(customer)
        proxy.cut_next_response()
        committed = await billing.commit_hold(hold.id, 2)
        after = await billing.balance(customer)

    assert proxy.cut_count == 2
    assert hold.amount == 4 and hold.status == "pending"
    assert (committed.charged, committed.released, committed.replayed) == (2, 2, True)
    assert (held.balance, held.reserved, held.available) == (10, 4, 6)  # held once, not twice
    assert (after.balance, after.reserved, after.available) == (8, 0, 8)


async def test_the_same_key_given_by_the_caller_charges_once(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        first = await billing.charge(customer, 2, idempotency_key=f"order-{customer}")
        again = await billing.charge(customer, 2, idempotency_key=f"order-{customer}")
        assert first.transaction.id == again.transaction.id
        assert (first.replayed, again.replayed) == (False, True)
        assert (await billing.balance(customer)).balance == 8


async def test_a_503_and_a_429_in_front_of_the_server_are_retried(
    tokenbank: TokenbankServer, proxy: FaultyProxy, customer: str
) -> None:
    await funded(tokenbank, customer, 5)
    proxy.answer_next(503, "Service Unavailable")
    proxy.answer_next(429, "Too Many Requests", {"Retry-After": "0.05"})
    async with sdk(proxy.url, tokenbank.key) as billing:
        await billing.charge(customer, 1)
        assert (await billing.balance(customer)).balance == 4
    assert len([r for r in proxy.requests if r.endswith("/charges")]) == 3


async def test_retries_end_with_a_typed_error(tokenbank: TokenbankServer, proxy: FaultyProxy) -> None:
    for _ in range(3):
        proxy.answer_next(503, "Service Unavailable")
    async with sdk(proxy.url, tokenbank.key, max_retries=2) as billing:
        with pytest.raises(ServiceUnavailable) as raised:
            await billing.balance("anyone")
    assert raised.value.status_code == 503
    assert len(proxy.requests) == 3


def test_nobody_listening_is_a_connection_error_after_the_retries(tokenbank: TokenbankServer) -> None:
    proxy = FaultyProxy(tokenbank.port)  # bound, never accepting, then closed: refused
    url = proxy.url
    proxy.stop()
    started = time.monotonic()
    with Tokenbank(tokenbank.key, base_url=url, max_retries=2, backoff_base_s=0.01) as billing:
        with pytest.raises(APIConnectionError):
            billing.balance("anyone")
    assert time.monotonic() - started < 5


def test_the_sync_client_retries_a_cut_charge_once(
    tokenbank: TokenbankServer, proxy: FaultyProxy, customer: str
) -> None:
    with Tokenbank(tokenbank.key, base_url=proxy.url, backoff_base_s=0.01) as billing:
        billing.upsert_customer(customer)
        billing.grant(customer, 6, reason="test funds")
        proxy.cut_next_response()
        billing.charge(customer, 5)
        assert billing.balance(customer).balance == 1
    assert proxy.cut_count == 1
