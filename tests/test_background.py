"""The background loop every worker shares (``tokenbank.background``): woken at once,
polling otherwise, surviving a failed round, and stopped without cutting a claim in two."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tokenbank.background import BackgroundLoop, uncut

pytestmark = pytest.mark.anyio


async def test_a_wake_runs_a_round_at_once_rather_than_at_the_next_poll() -> None:
    rounds: list[int] = []
    ran = asyncio.Event()

    async def work() -> None:
        rounds.append(len(rounds))
        ran.set()

    loop = BackgroundLoop("test-loop", 3600, work)
    loop.start()
    try:
        await asyncio.wait_for(ran.wait(), 5)  # the first round runs at start
        ran.clear()
        loop.notify()
        await asyncio.wait_for(ran.wait(), 5)  # long before the hour's poll
        assert len(rounds) == 2
    finally:
        await loop.stop()


async def test_a_failed_round_is_logged_and_the_next_poll_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    recovered = asyncio.Event()

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database is away")
        recovered.set()

    loop = BackgroundLoop("test-loop", 0.01, work, failure="test loop: a round failed")
    with caplog.at_level(logging.ERROR):
        loop.start()
        try:
            await asyncio.wait_for(recovered.wait(), 5)
        finally:
            await loop.stop()
    assert [r.getMessage() for r in caplog.records] == ["test loop: a round failed"]
    assert caplog.records[0].exc_info is not None


async def test_stop_ends_the_task_and_a_second_stop_or_start_is_harmless() -> None:
    waiting = asyncio.Event()

    async def work() -> None:
        waiting.set()
        await asyncio.Event().wait()  # a round that never ends by itself

    loop = BackgroundLoop("test-loop", 1, work)
    loop.start()
    loop.start()  # still one task
    await asyncio.wait_for(waiting.wait(), 5)
    await asyncio.wait_for(loop.stop(), 5)
    await loop.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-loop"]


async def test_a_unit_stopped_midway_ends_whole_and_hands_back_what_it_claimed() -> None:
    inside, may_commit = asyncio.Event(), asyncio.Event()
    handed_back: list[list[str]] = []

    async def claim() -> list[str]:
        inside.set()
        await may_commit.wait()
        return ["row-1", "row-2"]

    async def give_back(rows: list[str]) -> None:
        handed_back.append(rows)

    task = asyncio.create_task(uncut(claim(), give_back))
    await asyncio.wait_for(inside.wait(), 5)
    task.cancel()  # a stop arrives while the claim's transaction ends
    await asyncio.sleep(0)
    assert not task.done()  # it waits for the unit rather than cutting it
    may_commit.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert handed_back == [["row-1", "row-2"]]


async def test_an_uncut_unit_left_alone_answers_and_hands_nothing_back() -> None:
    handed_back: list[int] = []

    async def claim() -> int:
        return 7

    async def give_back(n: int) -> None:
        handed_back.append(n)

    assert await uncut(claim(), give_back) == 7
    assert handed_back == []
