"""Streamed replies: charged once text was sent (saved as interrupted if cut), never when
no text was sent — whether the provider failed or the client left."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.harness import HANG_DEADLINE_S, Api, MakeApi

from support import wait_for

pytestmark = pytest.mark.anyio


async def test_a_completed_stream_is_charged_once_and_saved_whole(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(text="Paris is the capital of France, on the Seine.", chunks=4)

    r, events = await api.stream(user, chat_id)

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names == ["delta"] * 4 + ["done"]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert streamed == "Paris is the capital of France, on the Seine."
    done = events[-1][1]
    assert (done["tokens_charged"], done["balance"]) == (1, 9)
    assert done["ai_message"]["content"] == streamed
    stored = await api.messages(user, chat_id)
    assert [(m["id"], m["content"]) for m in stored] == [
        (done["user_message"]["id"], "Capital of France?"),
        (done["ai_message"]["id"], streamed),
    ]
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.deductions(user) == 1
    assert await api.violations() == []


@pytest.mark.parametrize(
    ("mode", "reason", "deltas"),
    [("error", "unavailable", 0), ("hang", "timeout", 0), ("empty", "empty_reply", 0)],
)
async def test_a_failed_stream_ends_in_an_error_event_and_charges_nothing(
    make_api: MakeApi, mode: str, reason: str, deltas: int
) -> None:
    api = await make_api(ai_timeout_s=HANG_DEADLINE_S)
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(mode=mode)

    r, events = await api.stream(user, chat_id)

    assert r.status_code == 200
    assert [name for name, _ in events] == ["delta"] * deltas + ["error"]
    error = events[-1][1]
    assert (error["code"], error["reason"]) == ("ai_unavailable", reason)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.stored_messages() == 0
    assert await api.violations() == []


async def test_a_reply_the_provider_cuts_after_text_was_sent_is_charged_as_interrupted(
    api: Api,
) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(mode="break", text="Paris is the capital of France.", chunks=3)

    r, events = await api.stream(user, chat_id)

    assert r.status_code == 200
    assert [name for name, _ in events] == ["delta", "done"]
    sent = events[0][1]["text"]
    done = events[-1][1]
    assert done["ai_message"]["content"] == sent
    assert done["ai_message"]["interrupted"] is True
    assert (done["tokens_charged"], done["balance"]) == (1, 9)
    stored = await api.messages(user, chat_id)
    assert [(m["content"], m["interrupted"]) for m in stored] == [
        ("Capital of France?", False), (sent, True),
    ]
    assert await api.deductions(user) == 1
    assert await api.violations() == []


async def _leave_after(api: Api, user: dict[str, Any], chat_id: int, deltas: int,
                       key: str | None = None) -> str:
    """Stream a reply and close the connection once ``deltas`` deltas arrived (0: as
    soon as the stream starts); the text received."""
    headers = dict(user["headers"])
    if key is not None:
        headers["Idempotency-Key"] = key
    received: list[str] = []
    async with api.client.stream(
        "POST", f"/api/chats/{chat_id}/generate/stream",
        json={"content": "Tell me a story"}, headers=headers,
    ) as r:
        assert r.status_code == 200
        # Held in a name: a dropped line iterator could be finalised, closing the stream early.
        lines = r.aiter_lines()
        async for line in lines:
            if len(received) >= deltas:
                break
            if line.startswith("data: "):
                received.append(line)
    # Leaving the `stream` block closes the connection.
    return "".join(json.loads(d.removeprefix("data: "))["text"] for d in received)


async def _settled(api: Api, user: dict[str, Any]) -> None:
    async def no_hold() -> bool:
        return (await api.account(user)).reserved == 0

    await wait_for(no_hold, timeout_s=10, what="the hold to be settled or released")


async def test_a_client_that_leaves_mid_stream_is_charged_for_the_interrupted_reply(
    make_api: MakeApi,
) -> None:
    # A long, slow reply and a generous deadline: only the disconnect can end it early.
    api = await make_api(ai_timeout_s=30)
    user = await api.user()
    chat_id = await api.chat(user)
    full = "word " * 60
    api.fake.set(text=full, chunks=60, delay_s=0.1)

    received = await _leave_after(api, user, chat_id, deltas=2, key="leave-1")

    await _settled(api, user)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.deductions(user) == 1
    stored = await api.messages(user, chat_id)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    reply = stored[1]
    assert reply["interrupted"] is True
    assert reply["tokens_charged"] == 1
    # Saved as far as it was sent: at least what the client read, never the whole reply.
    assert reply["content"].startswith(received) and len(received) == 10
    assert full.startswith(reply["content"]) and reply["content"] != full
    assert await api.violations() == []

    async def upstream_closed() -> bool:
        return api.fake.abandoned_streams == 1

    await wait_for(upstream_closed, timeout_s=5, what="the provider stream to be closed")

    # The same key again: the interrupted reply, replayed, charged once.
    replay = await api.generate(user, chat_id, content="Tell me a story", key="leave-1")
    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert body["replayed"] is True
    assert (body["ai_message"]["content"], body["ai_message"]["interrupted"]) == (
        reply["content"], True,
    )
    assert (await api.account(user)).balance == 9


async def test_a_client_that_leaves_before_any_text_is_not_charged(make_api: MakeApi) -> None:
    api = await make_api(ai_timeout_s=30)
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(text="A reply that comes too late.", chunks=3, first_delay_s=2)

    await _leave_after(api, user, chat_id, deltas=0)

    await _settled(api, user)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.stored_messages() == 0
    assert await api.deductions(user) == 0
    assert await api.violations() == []


async def test_a_client_that_leaves_after_the_last_delta_before_done_is_charged(
    make_api: MakeApi,
) -> None:
    api = await make_api(ai_timeout_s=30)
    user = await api.user()
    chat_id = await api.chat(user)
    full = "Paris is the capital of France."
    api.fake.set(text=full, chunks=3, finish_delay_s=2)

    received = await _leave_after(api, user, chat_id, deltas=3)

    assert received == full
    await _settled(api, user)
    assert (await api.account(user)).balance == 9
    assert await api.deductions(user) == 1
    stored = await api.messages(user, chat_id)
    # The whole text was sent, but the reply never finished: saved whole, as interrupted.
    assert (stored[1]["content"], stored[1]["interrupted"]) == (full, True)
    assert await api.violations() == []


async def test_errors_before_the_stream_are_plain_json(api: Api) -> None:
    owner, other, broke = await api.user(), await api.user(), await api.user(tokens=0)
    chat_id = await api.chat(owner)
    broke_chat = await api.chat(broke)

    not_found, _ = await api.stream(other, chat_id)
    poor, _ = await api.stream(broke, broke_chat)
    empty, _ = await api.stream(owner, chat_id, content="   ")

    assert (not_found.status_code, not_found.json()["error"]["code"]) == (404, "chat_not_found")
    assert (poor.status_code, poor.json()["error"]["code"]) == (402, "insufficient_tokens")
    assert (poor.json()["error"]["balance"], poor.json()["error"]["required"]) == (0, 1)
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "validation_error")
    assert api.fake.requests == []
    assert await api.stored_messages() == 0


async def test_a_streamed_retry_with_the_same_key_replays_the_reply(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    first = await api.generate(user, chat_id, key="s-1")

    async with api.client.stream(
        "POST", f"/api/chats/{chat_id}/generate/stream", json={"content": "Capital of France?"},
        headers={**user["headers"], "Idempotency-Key": "s-1"},
    ) as r:
        body = (await r.aread()).decode()

    assert "event: done" in body
    assert f'"id":{first.json()["ai_message"]["id"]}' in body
    assert '"replayed":true' in body
    assert (await api.account(user)).balance == 9
    assert len(api.fake.requests) == 1


async def test_a_stream_of_only_whitespace_is_no_reply_and_costs_nothing(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(text="   \n  ", chunks=2)

    _, events = await api.stream(user, chat_id)

    assert events[-1][0] == "error"
    assert (events[-1][1]["code"], events[-1][1]["reason"]) == ("ai_unavailable", "empty_reply")
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.stored_messages() == 0
