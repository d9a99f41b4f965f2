"""``async with billing.hold(customer, amount) as hold:`` commits on success and
releases on error, on a real server."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tokenbank_client import AsyncTokenbank, HoldNotPending, InsufficientTokens, Tokenbank

from sdk_kit import TokenbankServer, funded, sdk

pytestmark = pytest.mark.anyio


class ModelFailed(Exception):
    pass


async def test_a_block_that_succeeds_commits_the_hold(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        async with billing.hold(customer, 4) as hold:
            during = await billing.balance(customer)
        after = await billing.balance(customer)
    assert (during.reserved, during.available) == (4, 6)
    assert (after.balance, after.reserved) == (6, 0)
    assert hold.result is not None


async def test_a_smaller_amount_set_on_the_hold_is_what_is_spent(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        async with billing.hold(customer, 5) as hold:
            hold.use(2)
        after = await billing.balance(customer)
    assert (after.balance, after.reserved, after.available) == (8, 0, 8)


async def test_a_block_that_raises_releases_the_hold(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 10)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with pytest.raises(ModelFailed):
            async with billing.hold(customer, 7) as hold:
                raise ModelFailed("the AI call failed")
        after = await billing.balance(customer)
        with pytest.raises(HoldNotPending):  # released: it cannot be committed any more
            await billing.commit_hold(hold.id)
    assert (after.balance, after.reserved, after.available) == (10, 0, 10)


async def test_not_enough_tokens_raises_before_the_block_runs(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 2)
    ran = False
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with pytest.raises(InsufficientTokens) as raised:
            async with billing.hold(customer, 3):
                ran = True
        after = await billing.balance(customer)
    assert not ran
    assert raised.value.status_code == 402 and raised.value.code == "insufficient_tokens"
    assert raised.value.required == 3
    assert (after.balance, after.reserved) == (2, 0)


async def test_a_cancelled_block_releases_the_hold(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 3)
    billing = AsyncTokenbank(tokenbank.key, base_url=tokenbank.url)
    async with billing:
        async with billing.hold(customer, 3) as hold:
            hold.cancel()
        assert (await billing.balance(customer)).available == 3


def test_the_sync_hold_commits_and_releases(tokenbank: TokenbankServer, customer: str) -> None:
    with Tokenbank(tokenbank.key, base_url=tokenbank.url) as billing:
        billing.upsert_customer(customer)
        billing.grant(customer, 5, reason="test funds")
        with billing.hold(customer, 2):
            pass
        with pytest.raises(ModelFailed), billing.hold(customer, 3):
            raise ModelFailed
        after = billing.balance(customer)
    assert (after.balance, after.reserved) == (3, 0)


async def test_a_task_cancelled_inside_the_block_releases_the_hold(
    tokenbank: TokenbankServer, customer: str
) -> None:
    await funded(tokenbank, customer, 6)
    inside = asyncio.Event()
    async with sdk(tokenbank.url, tokenbank.key) as billing:

        async def reply() -> None:
            async with billing.hold(customer, 4):
                inside.set()
                await asyncio.Event().wait()  # the model call the client gave up on

        task = asyncio.create_task(reply())
        await asyncio.wait_for(inside.wait(), 10)
        assert (await billing.balance(customer)).reserved == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await billing.balance(customer)
    assert (after.balance, after.reserved, after.available) == (6, 0, 6)


async def test_a_block_timed_out_by_a_cancel_scope_releases_the_hold(
    tokenbank: TokenbankServer, customer: str
) -> None:
    """anyio's cancellation stays in force inside the scope: without the release shielded,
    its request would be cancelled too and the hold left to expire."""
    await funded(tokenbank, customer, 6)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        with anyio.move_on_after(0.5) as scope:
            async with billing.hold(customer, 5):
                await anyio.sleep_forever()  # a model slower than the deadline
        assert scope.cancelled_caught
        after = await billing.balance(customer)
    assert (after.balance, after.reserved, after.available) == (6, 0, 6)


async def test_using_none_of_the_hold_releases_it(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 3)
    async with sdk(tokenbank.url, tokenbank.key) as billing:
        async with billing.hold(customer, 2) as hold:
            hold.use(0)
        assert (await billing.balance(customer)).available == 3
    assert hold.result is not None and hold.result.hold.status == "released"
