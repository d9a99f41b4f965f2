"""Metering the host app's other features: reserve -> commit/release, and one-shot
charges, with the ledger's guarantees (both databases, over HTTP to a served app)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from chat.harness import Api, MakeApi
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenReservation, TokenTransaction
from tokenbank.meter.models import MeterHold
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio

BOOK = {"features": {"tts_clip": 20, "image": 7}}


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api(price_book=BOOK)


async def _post(
    api: Api, user: dict[str, Any], feature: str, step: str, **body: Any
) -> httpx.Response:
    return await api.client.post(f"/api/meter/{feature}/{step}", json=body,
                                 headers=user["headers"])


def _code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_reserve_then_commit_charges_the_hold(api: Api) -> None:
    user = await api.user(tokens=100)

    held = await _post(api, user, "tts_clip", "reserve", idempotency_key="clip-1", quantity=2)

    assert held.status_code == 200, held.text
    h = held.json()
    assert (h["feature"], h["quantity"], h["unit_price"], h["amount"], h["status"]) == (
        "tts_clip", 2, 20, 40, "pending")
    assert not h["replayed"]
    b = await api.account(user)
    assert (b.balance, b.reserved) == (100, 40)

    done = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"])

    assert done.status_code == 200, done.text
    c = done.json()
    assert (c["amount"], c["released"], c["balance"], c["replayed"]) == (40, 0, 60, False)
    b = await api.account(user)
    assert (b.balance, b.reserved) == (60, 0)
    again = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"])
    assert again.json()["transaction_id"] == c["transaction_id"] and again.json()["replayed"]
    assert (await api.account(user)).balance == 60
    assert await api.violations() == []


async def test_a_partial_commit_charges_the_units_used_and_releases_the_rest(api: Api) -> None:
    user = await api.user(tokens=100)
    h = (await _post(api, user, "tts_clip", "reserve", idempotency_key="k", quantity=3)).json()

    done = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"], quantity=1)

    assert done.status_code == 200, done.text
    assert (done.json()["amount"], done.json()["released"], done.json()["balance"]) == (
        20, 40, 80)
    more = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"], quantity=2)
    assert _code(more) == (409, "idempotency_key_reused")
    same = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"], quantity=1)
    assert same.json()["replayed"] and same.json()["amount"] == 20
    second = (await _post(api, user, "tts_clip", "reserve", idempotency_key="k2",
                          quantity=2)).json()
    over = await _post(api, user, "tts_clip", "commit", reservation_id=second["id"], quantity=3)
    assert _code(over) == (422, "invalid_amount")
    b = await api.account(user)
    assert (b.balance, b.reserved) == (80, 40)  # the refused commit left the hold pending
    assert await api.violations() == []


async def test_a_price_change_mid_flight_charges_the_price_held(make_api: MakeApi) -> None:
    before = await make_api(price_book={"features": {"tts_clip": 20}})
    after = await make_api(price_book={"features": {"tts_clip": 50}})  # same database
    user = await before.user(tokens=100)
    h = (await _post(before, user, "tts_clip", "reserve", idempotency_key="p",
                     quantity=2)).json()

    done = await _post(after, user, "tts_clip", "commit", reservation_id=h["id"], quantity=1)

    assert (done.json()["amount"], done.json()["released"]) == (20, 20)
    charged = await _post(after, user, "tts_clip", "charge", idempotency_key="c")
    assert charged.json()["amount"] == 50  # a new charge pays today's price
    assert (await before.account(user)).balance == 30


async def test_release_gives_the_hold_back_once_and_a_commit_after_it_is_refused(
    api: Api,
) -> None:
    user = await api.user(tokens=100)
    h = (await _post(api, user, "image", "reserve", idempotency_key="r", quantity=4)).json()
    assert (await api.account(user)).reserved == 28

    first = await _post(api, user, "image", "release", reservation_id=h["id"])
    second = await _post(api, user, "image", "release", reservation_id=h["id"])
    commit = await _post(api, user, "image", "commit", reservation_id=h["id"])

    assert first.json() == {"reservation_id": h["id"], "released": True}
    assert second.json() == {"reservation_id": h["id"], "released": False}
    assert _code(commit) == (409, "reservation_not_pending")
    b = await api.account(user)
    assert (b.balance, b.reserved) == (100, 0)
    committed = (await _post(api, user, "image", "reserve", idempotency_key="r2")).json()
    await _post(api, user, "image", "commit", reservation_id=committed["id"])
    late = await _post(api, user, "image", "release", reservation_id=committed["id"])
    assert _code(late) == (409, "reservation_not_pending")
    assert (await api.account(user)).balance == 93


async def test_an_expired_hold_is_released_by_the_sweeper_and_cannot_be_committed(
    api: Api,
) -> None:
    user = await api.user(tokens=100)
    h = (await _post(api, user, "tts_clip", "reserve", idempotency_key="e", ttl_s=1)).json()

    async with api.db.transaction() as s:
        assert await ledger.expire_reservations(s, now=utcnow() + timedelta(seconds=5)) == 1
    late = await _post(api, user, "tts_clip", "commit", reservation_id=h["id"])

    assert _code(late) == (409, "reservation_expired")
    b = await api.account(user)
    assert (b.balance, b.reserved) == (100, 0)
    assert await api.violations() == []


async def test_the_same_idempotency_key_returns_the_first_hold_or_charge(api: Api) -> None:
    user = await api.user(tokens=100)

    a = await _post(api, user, "tts_clip", "reserve", idempotency_key="same", quantity=2)
    b = await _post(api, user, "tts_clip", "reserve", idempotency_key="same", quantity=2)
    other = await _post(api, user, "tts_clip", "reserve", idempotency_key="same", quantity=3)
    # The same key for another feature is another request.
    image = await _post(api, user, "image", "reserve", idempotency_key="same", quantity=2)

    assert b.json()["id"] == a.json()["id"] and b.json()["replayed"]
    assert _code(other) == (409, "idempotency_key_reused")
    assert image.status_code == 200 and image.json()["id"] != a.json()["id"]
    assert await api.count(TokenReservation, user_id=user["id"]) == 2
    assert await api.count(MeterHold, user_id=user["id"]) == 2

    c1 = await _post(api, user, "tts_clip", "charge", idempotency_key="once", quantity=1)
    c2 = await _post(api, user, "tts_clip", "charge", idempotency_key="once", quantity=1)
    c3 = await _post(api, user, "tts_clip", "charge", idempotency_key="once", quantity=2)

    assert c1.status_code == 200, c1.text
    assert (c1.json()["amount"], c1.json()["balance"], c1.json()["replayed"]) == (20, 26, False)
    assert c2.json()["transaction_id"] == c1.json()["transaction_id"] and c2.json()["replayed"]
    assert _code(c3) == (409, "idempotency_key_reused")
    b_ = await api.account(user)
    assert (b_.balance, b_.reserved) == (80, 54)
    assert await api.violations() == []


async def test_not_enough_tokens_is_402_and_nothing_is_held_or_charged(api: Api) -> None:
    user = await api.user(tokens=30)

    reserve = await _post(api, user, "tts_clip", "reserve", idempotency_key="a", quantity=2)
    charge = await _post(api, user, "tts_clip", "charge", idempotency_key="b", quantity=2)

    assert _code(reserve) == (402, "insufficient_tokens")
    assert (reserve.json()["error"]["required"], reserve.json()["error"]["balance"]) == (40, 30)
    assert _code(charge) == (402, "insufficient_tokens")
    b = await api.account(user)
    assert (b.balance, b.reserved) == (30, 0)
    assert await api.count(MeterHold) == 0


async def test_unknown_features_and_hostile_input_are_refused(api: Api) -> None:
    user = await api.user(tokens=100)
    for step in ("reserve", "charge"):
        r = await _post(api, user, "video", step, idempotency_key="x")
        assert _code(r) == (404, "unknown_feature"), r.text
    refused = [
        ("TTS_CLIP", {"idempotency_key": "x"}),  # not a feature name
        ("tts:clip", {"idempotency_key": "x"}),
        ("tts_clip", {}),  # no idempotency key
        ("tts_clip", {"idempotency_key": ""}),
        ("tts_clip", {"idempotency_key": "x", "quantity": -1}),
        ("tts_clip", {"idempotency_key": "x", "quantity": 0}),
        ("tts_clip", {"idempotency_key": "x", "quantity": 10**12}),
        ("tts_clip", {"idempotency_key": "x", "quantity": 1.5}),
        ("tts_clip", {"idempotency_key": "x", "quantity": "3"}),
        ("tts_clip", {"idempotency_key": "x", "amount": 1}),  # a price is not the caller's
        ("tts_clip", {"idempotency_key": "x", "ttl_s": 10**6}),
    ]
    for feature, body in refused:
        for step in ("reserve", "charge"):
            if step == "charge" and "ttl_s" in body:
                continue
            r = await _post(api, user, feature, step, **body)
            assert r.status_code == 422, (feature, step, body, r.text)
    # A quantity the request allows whose price is past the ledger's limit.
    huge = await _post(api, user, "tts_clip", "charge", idempotency_key="h", quantity=10**6)
    assert huge.status_code == 402  # 20 million tokens: refused by the balance, not overflow
    for body in ({"reservation_id": -1}, {"reservation_id": 2**63}, {"reservation_id": "1"},
                 {"reservation_id": 1, "quantity": 0}):
        r = await _post(api, user, "tts_clip", "commit", **body)
        assert r.status_code == 422, (body, r.text)
    b = await api.account(user)
    assert (b.balance, b.reserved) == (100, 0)
    assert await api.count(TokenTransaction, user_id=user["id"]) == 1  # its grant alone


async def test_an_amount_past_the_ledgers_limit_is_422(make_api: MakeApi) -> None:
    api = await make_api(price_book={"features": {"render": 5000}})
    user = await api.user(tokens=10)

    r = await _post(api, user, "render", "reserve", idempotency_key="big", quantity=10**6)

    assert _code(r) == (422, "invalid_amount")


async def test_another_users_reservation_is_404_and_stays_pending(api: Api) -> None:
    owner, intruder = await api.user(tokens=100), await api.user(tokens=100)
    h = (await _post(api, owner, "tts_clip", "reserve", idempotency_key="o")).json()

    attempts = [
        await _post(api, intruder, "tts_clip", "commit", reservation_id=h["id"]),
        await _post(api, intruder, "tts_clip", "release", reservation_id=h["id"]),
        # The owner, through another feature, does not reach it either.
        await _post(api, owner, "image", "commit", reservation_id=h["id"]),
        await _post(api, owner, "image", "release", reservation_id=h["id"]),
    ]
    unknown = await _post(api, intruder, "tts_clip", "commit", reservation_id=10**12)

    for r in attempts:
        assert _code(r) == (404, "reservation_not_found"), r.text
        assert r.json() == unknown.json()
    async with api.db.transaction() as s:
        assert (await ledger.get_reservation(s, h["id"])).status == "pending"
    # A hold that is not a metered one (a chat reply's, a host's) is not reachable here.
    chat_id = await api.chat(owner)
    assert (await api.generate(owner, chat_id)).status_code == 200
    async with api.db.transaction() as s:
        reply_hold = max(r.id for r in (await s.execute(
            TokenReservation.__table__.select().where(
                TokenReservation.user_id == owner["id"])
        )).all())
    r = await _post(api, owner, "tts_clip", "release", reservation_id=reply_hold)
    assert _code(r) == (404, "reservation_not_found")
    b = await api.account(owner)
    assert (b.balance, b.reserved) == (99, 20)


async def test_concurrent_charges_and_holds_never_overdraw(api: Api) -> None:
    user = await api.user(tokens=100)  # five clips' worth

    charges = await asyncio.gather(*[
        _post(api, user, "tts_clip", "charge", idempotency_key=f"c{i}") for i in range(16)
    ])

    codes = sorted(r.status_code for r in charges)
    assert codes == [200] * 5 + [402] * 11, [r.text for r in charges]
    assert (await api.account(user)).balance == 0

    other = await api.user(tokens=100)
    holds = await asyncio.gather(*[
        _post(api, other, "tts_clip", "reserve", idempotency_key=f"h{i}") for i in range(16)
    ])
    assert sorted(r.status_code for r in holds) == [200] * 5 + [402] * 11
    b = await api.account(other)
    assert (b.balance, b.reserved) == (100, 100)
    ids = [r.json()["id"] for r in holds if r.status_code == 200]
    commits = await asyncio.gather(*[
        _post(api, other, "tts_clip", "commit", reservation_id=i) for i in ids for _ in (1, 2)
    ])
    assert all(r.status_code == 200 for r in commits)
    assert sum(not r.json()["replayed"] for r in commits) == 5
    b = await api.account(other)
    assert (b.balance, b.reserved) == (0, 0)
    assert await api.violations() == []


async def test_metered_calls_are_rate_limited(make_api: MakeApi) -> None:
    api = await make_api(price_book=BOOK, rate_limit_enabled=True, rate_limit_meter_per_min=3)
    user = await api.user(tokens=100)

    answers = [
        await _post(api, user, "image", "charge", idempotency_key=f"r{i}") for i in range(4)
    ]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert (await api.account(user)).balance == 79


async def test_a_commit_and_a_release_racing_resolve_the_hold_once(api: Api) -> None:
    user = await api.user(tokens=200)
    holds = [
        (await _post(api, user, "tts_clip", "reserve", idempotency_key=f"race{i}")).json()["id"]
        for i in range(5)
    ]

    answers = await asyncio.gather(*[
        _post(api, user, "tts_clip", step, reservation_id=h)
        for h in holds for step in ("commit", "release", "commit", "release")
    ])

    committed = 0
    for i, h in enumerate(holds):
        mine = answers[4 * i: 4 * i + 4]
        commits = [r for r in mine[0::2] if r.status_code == 200]
        releases = [r for r in mine[1::2] if r.status_code == 200 and r.json()["released"]]
        # Either it was committed (both commits agree, no release took it back) or released.
        assert (len({r.json()["transaction_id"] for r in commits}), len(releases)) in (
            (1, 0), (0, 1)), [r.text for r in mine]
        committed += bool(commits)
        async with api.db.transaction() as s:
            status = (await ledger.get_reservation(s, h)).status
        assert status == ("committed" if commits else "released")
    b = await api.account(user)
    assert (b.balance, b.reserved) == (200 - 20 * committed, 0)
    assert await api.violations() == []


async def test_metered_spending_below_an_alert_threshold_alerts_once(api: Api) -> None:
    """The meter's charges and commits reach the balance watch as a reply's do."""
    from support import wait_for

    user = await api.user(tokens=100)
    r = await api.client.put(
        "/api/notifications/settings",
        json={"low_balance_thresholds": [50], "email_alerts": False},
        headers=user["headers"],
    )
    assert r.status_code == 200, r.text
    charged = await _post(api, user, "image", "charge", idempotency_key="i-1", quantity=4)
    assert charged.json()["balance"] == 72  # above 50: nothing
    held = await _post(api, user, "tts_clip", "reserve", idempotency_key="c-1", quantity=2)
    done = await _post(api, user, "tts_clip", "commit", reservation_id=held.json()["id"])
    assert done.json()["balance"] == 32  # the commit crossed 50

    async def alerts() -> list[dict[str, Any]]:
        got = await api.client.get("/api/notifications", headers=user["headers"])
        return [n for n in got.json()["items"] if n["kind"] == "balance_low"]

    async def alerted() -> bool:
        return len(await alerts()) >= 1

    await wait_for(alerted, what="the low-balance alert")
    again = await _post(api, user, "image", "charge", idempotency_key="i-2", quantity=1)
    assert again.json()["balance"] == 25
    assert len(await alerts()) == 1
    assert await api.violations() == []
