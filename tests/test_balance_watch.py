"""The charged reply's check against cached thresholds: work is queued only when needed."""

from __future__ import annotations

import pytest

from tokenbank.balance_watch import BalanceWatch, Thresholds

pytestmark = pytest.mark.anyio


def test_what_makes_the_watch_look() -> None:
    t = Thresholds(topup=50, alerts=(100, 20), fired=frozenset({100}))
    assert not t.wants_look(60)  # below 100 (already fired), above 50 and 20
    assert t.wants_look(49)  # below the top-up threshold
    assert t.wants_look(100)  # back at 100: re-arms the fired alert
    assert t.wants_look(19)  # a new crossing of 20
    assert not Thresholds(topup=None).wants_look(0)


async def test_the_hot_path_queues_only_crossings_and_the_task_sees_the_highest_balance() -> None:
    seen: list[tuple[int, int, int]] = []

    async def handler(user_id: int, available: int, highest: int) -> Thresholds:
        seen.append((user_id, available, highest))
        fired = frozenset({10}) if available < 10 else frozenset()
        return Thresholds(topup=None, alerts=(10,), fired=fired)

    watch = BalanceWatch(handler, ttl_s=60)
    watch.charged(1, 50)  # thresholds unknown here yet: queued
    assert await watch.drain() == 1
    watch.charged(1, 40)  # cached, nothing crossed
    watch.charged(1, 12)
    assert await watch.drain() == 0
    watch.charged(1, 9)  # crossed
    watch.charged(1, 8)
    assert await watch.drain() == 1
    watch.charged(1, 7)  # fired, still below: nothing
    assert await watch.drain() == 0
    watch.charged(1, 30)  # recovered (re-arm) then fell again before the task ran
    watch.charged(1, 5)
    assert await watch.drain() == 1
    assert seen == [(1, 50, 50), (1, 8, 9), (1, 5, 30)]
    watch.forget(1)
    watch.charged(1, 40)  # forgotten: read again
    assert await watch.drain() == 1
