"""Refund this reply: once per reply, only the owner's charged AI reply, capped per day,
written as a `refund` entry; double clicks and concurrent requests included."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chat.harness import Api, MakeApi
from tokenbank.admin import service as admin_service
from tokenbank.chat.models import ReplyRefund
from tokenbank.ledger.models import TokenTransaction
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def _reply(api: Api, user: dict[str, Any], chat_id: int | None = None) -> tuple[int, int]:
    """A charged reply in a chat of ``user``'s: (chat id, the AI message's id)."""
    chat_id = chat_id or await api.chat(user)
    r = await api.generate(user, chat_id)
    assert r.status_code == 200, r.text
    return chat_id, int(r.json()["ai_message"]["id"])


async def _refund(
    api: Api, user: dict[str, Any], chat_id: int, message_id: int, **body: Any
) -> httpx.Response:
    return await api.client.post(
        f"/api/chats/{chat_id}/messages/{message_id}/refund",
        json={"reason": "wrong", **body},
        headers=user["headers"],
    )


async def _refund_entries(api: Api, user: dict[str, Any]) -> list[int]:
    async with api.db.transaction() as s:
        rows = await s.execute(
            select(TokenTransaction.amount).where(
                TokenTransaction.user_id == user["id"],
                TokenTransaction.transaction_type == "refund",
            )
        )
        return [int(a) for (a,) in rows]


async def test_a_reply_is_refunded_once_with_its_reason_note_and_model(api: Api) -> None:
    user = await api.user(tokens=10)
    chat_id, message_id = await _reply(api, user)
    assert (await api.account(user)).balance == 9

    r = await _refund(api, user, chat_id, message_id, reason="incomplete", note="  cut off ")

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refunded"] == 1 and body["balance"] == 10 and body["transaction_id"] > 0
    assert (await api.account(user)).balance == 10
    assert await _refund_entries(api, user) == [1]
    messages = await api.messages(user, chat_id)
    assert [(m["role"], m["refunded"]) for m in messages] == [
        ("user", False), ("assistant", True)
    ]
    async with api.db.transaction() as s:
        row = (await s.execute(select(ReplyRefund))).scalar_one()
    assert (row.message_id, row.reason, row.note, row.model, row.tokens) == (
        message_id, "incomplete", "cut off", "gpt-test", 1
    )
    assert row.transaction_id == body["transaction_id"]

    again = await _refund(api, user, chat_id, message_id, reason="other")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_refunded")
    assert (await api.account(user)).balance == 10
    assert await api.violations() == []


async def test_only_the_owners_charged_ai_reply_can_be_refunded(make_api: MakeApi) -> None:
    api = await make_api()
    owner, intruder = await api.user(), await api.user()
    chat_id, message_id = await _reply(api, owner)
    other_chat, other_message = await _reply(api, owner)
    question_id = message_id - 1
    assert (await api.messages(owner, chat_id))[0]["id"] == question_id

    theirs = await _refund(api, intruder, chat_id, message_id)
    unknown = await _refund(api, intruder, chat_id, 10**12)
    wrong_chat = await _refund(api, owner, other_chat, message_id)  # right message, wrong chat
    question = await _refund(api, owner, chat_id, question_id)

    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "message_not_found")
    assert theirs.json() == unknown.json()  # indistinguishable from no such message
    assert (wrong_chat.status_code, wrong_chat.json()["error"]["code"]) == (
        404, "message_not_found")
    assert (question.status_code, question.json()["error"]["code"]) == (
        409, "reply_not_refundable")
    for body in ({"reason": "because"}, {"reason": "wrong", "note": "n" * 501},
                 {"reason": "wrong", "amount": 100}, {}):
        r = await api.client.post(f"/api/chats/{chat_id}/messages/{message_id}/refund",
                                  json=body, headers=owner["headers"])
        assert r.status_code == 422, body
    assert (await api.account(owner)).balance == 8
    assert await _refund_entries(api, owner) == []
    assert (await _refund(api, owner, other_chat, other_message)).status_code == 200

    free = await make_api(reply_cost_tokens=0)
    user = await free.user()
    chat_id, message_id = await _reply(free, user)
    r = await _refund(free, user, chat_id, message_id)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "reply_not_refundable")


async def test_refunds_are_capped_per_person_per_day(make_api: MakeApi) -> None:
    api = await make_api(reply_refunds_per_day=2)
    user, other = await api.user(), await api.user()
    chat_id = await api.chat(user)
    replies = [(await _reply(api, user, chat_id))[1] for _ in range(3)]

    first, second, third = [await _refund(api, user, chat_id, m) for m in replies]

    assert (first.status_code, second.status_code) == (200, 200)
    assert (third.status_code, third.json()["error"]["code"]) == (429, "refund_limit_reached")
    assert third.json()["error"]["limit"] == 2
    assert await _refund_entries(api, user) == [1, 1]
    assert [m["refunded"] for m in await api.messages(user, chat_id) if m["role"] != "user"] == [
        True, True, False]
    # The cap is per person.
    other_chat, other_message = await _reply(api, other)
    assert (await _refund(api, other, other_chat, other_message)).status_code == 200


async def test_a_double_click_refunds_once(make_api: MakeApi) -> None:
    api = await make_api()
    user = await api.user(tokens=10)
    chat_id, message_id = await _reply(api, user)

    results = await asyncio.gather(*[_refund(api, user, chat_id, message_id) for _ in range(8)])

    codes = sorted(
        "ok" if r.status_code == 200 else r.json()["error"]["code"] for r in results
    )
    assert codes == ["already_refunded"] * 7 + ["ok"], [r.text for r in results]
    assert (await api.account(user)).balance == 10
    assert await _refund_entries(api, user) == [1]
    assert await api.count(ReplyRefund, message_id=message_id) == 1
    assert await api.violations() == []


async def test_concurrent_refunds_of_different_replies_keep_the_daily_cap(
    make_api: MakeApi,
) -> None:
    api = await make_api(reply_refunds_per_day=3)
    user = await api.user(tokens=20)
    chat_id = await api.chat(user)
    replies = [(await _reply(api, user, chat_id))[1] for _ in range(8)]

    results = await asyncio.gather(*[_refund(api, user, chat_id, m) for m in replies])

    codes = sorted(
        "ok" if r.status_code == 200 else r.json()["error"]["code"] for r in results
    )
    assert codes == ["ok"] * 3 + ["refund_limit_reached"] * 5, [r.text for r in results]
    assert (await api.account(user)).balance == 20 - 8 + 3
    assert await api.count(ReplyRefund, user_id=user["id"]) == 3
    assert await api.violations() == []


async def test_the_admin_overview_counts_refunds_by_reason_and_model(make_api: MakeApi) -> None:
    api = await make_api(reply_refunds_per_day=10)
    user = await api.user()
    chat_id = await api.chat(user)
    replies = [(await _reply(api, user, chat_id))[1] for _ in range(3)]
    for message_id, reason in zip(replies, ("wrong", "wrong", "harmful"), strict=True):
        assert (await _refund(api, user, chat_id, message_id, reason=reason)).status_code == 200

    async with api.db.transaction() as s:
        found = await admin_service.refunds_overview(s, utcnow().replace(year=2000))
        none_yet = await admin_service.refunds_overview(s, utcnow())

    assert found.by_reason == [
        {"reason": "wrong", "count": 2, "tokens": 2},
        {"reason": "harmful", "count": 1, "tokens": 1},
    ]
    assert found.by_model == [{"model": "gpt-test", "count": 3, "tokens": 3}]
    assert (none_yet.by_reason, none_yet.by_model) == ([], [])
