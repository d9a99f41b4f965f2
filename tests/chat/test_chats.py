"""Chats and their messages: creating, listing, ownership, and what a message may be."""

from __future__ import annotations

import pytest

from chat.harness import Api, MakeApi

pytestmark = pytest.mark.anyio


async def test_a_chat_gets_a_stripped_title_or_the_default(api: Api) -> None:
    user = await api.user()

    named = await api.client.post("/api/chats", json={"title": "  Trip ideas "},
                                  headers=user["headers"])
    blank = await api.client.post("/api/chats", json={"title": "   "}, headers=user["headers"])
    untitled = await api.client.post("/api/chats", json={}, headers=user["headers"])

    assert named.status_code == 201
    assert set(named.json()) >= {"id", "title", "created_at"}
    assert [r.json()["title"] for r in (named, blank, untitled)] == [
        "Trip ideas", "New chat", "New chat"
    ]


async def test_a_title_over_200_characters_is_422(api: Api) -> None:
    user = await api.user()

    r = await api.client.post("/api/chats", json={"title": "t" * 201}, headers=user["headers"])

    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert "200" in r.json()["error"]["message"]


async def test_chats_are_listed_most_recently_active_first_with_a_preview(api: Api) -> None:
    user, other = await api.user(), await api.user()
    older = await api.chat(user, "older")
    newer = await api.chat(user, "newer")
    await api.chat(other, "someone else's")
    api.fake.set(text="A reply in the older chat.")
    assert (await api.generate(user, older)).status_code == 200

    listed = (await api.client.get("/api/chats", headers=user["headers"])).json()

    assert [(c["id"], c["title"]) for c in listed] == [(older, "older"), (newer, "newer")]
    assert listed[0]["last_message_preview"] == "A reply in the older chat."
    assert listed[1]["last_message_preview"] is None
    assert listed[0]["updated_at"] > listed[1]["updated_at"]


async def test_someone_elses_chat_is_404_on_every_route(api: Api) -> None:
    owner, intruder = await api.user(), await api.user()
    chat_id = await api.chat(owner)
    assert (await api.generate(owner, chat_id)).status_code == 200
    h = intruder["headers"]

    responses = [
        await api.client.get(f"/api/chats/{chat_id}/messages", headers=h),
        await api.generate(intruder, chat_id),
        (await api.stream(intruder, chat_id))[0],
        await api.client.get("/api/chats/999999/messages", headers=h),
        await api.generate(intruder, 999999),
    ]

    assert [(r.status_code, r.json()["error"]["code"]) for r in responses] == [
        (404, "chat_not_found")
    ] * 5
    listed = (await api.client.get("/api/chats", headers=h)).json()
    assert listed == []
    assert (await api.account(intruder)).balance == 10
    assert len(api.fake.requests) == 1  # only the owner's reply reached the provider
    assert len(await api.messages(owner, chat_id)) == 2


async def test_chat_routes_need_a_signed_in_user(api: Api) -> None:
    owner = await api.user()
    chat_id = await api.chat(owner)

    responses = [
        await api.client.post("/api/chats", json={}),
        await api.client.get("/api/chats"),
        await api.client.get("/api/chats/config"),
        await api.client.get(f"/api/chats/{chat_id}/messages"),
        await api.client.post(f"/api/chats/{chat_id}/generate", json={"content": "hi"}),
        await api.client.post(f"/api/chats/{chat_id}/generate/stream", json={"content": "hi"}),
    ]

    assert [r.status_code for r in responses] == [401] * 6
    assert api.fake.requests == []


@pytest.mark.parametrize("content", ["", "   \n\t "])
async def test_an_empty_message_is_422_and_costs_nothing(api: Api, content: str) -> None:
    user = await api.user()
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id, content)

    assert r.status_code == 422
    error = r.json()["error"]
    assert (error["code"], error["field"], error["max_chars"]) == ("validation_error", "content", 4000)
    assert "4000" in error["message"]
    assert api.fake.requests == []
    assert (await api.account(user)).balance == 10


async def test_an_oversized_message_is_422_stating_the_limit(make_api: MakeApi) -> None:
    api = await make_api(max_message_chars=50)
    user = await api.user()
    chat_id = await api.chat(user)

    at_limit = await api.generate(user, chat_id, "x" * 50)
    over = await api.generate(user, chat_id, "x" * 51)

    assert at_limit.status_code == 200
    assert over.status_code == 422
    error = over.json()["error"]
    assert (error["code"], error["max_chars"]) == ("validation_error", 50)
    assert "50" in error["message"]
    assert len(api.fake.requests) == 1
    assert (await api.account(user)).balance == 9


async def test_old_history_beyond_the_budget_is_not_sent(make_api: MakeApi) -> None:
    api = await make_api(ai_history_budget_chars=30, ai_system_prompt="")
    user = await api.user()
    chat_id = await api.chat(user)
    for question, answer in [("first question " * 3, "first answer"), ("second?", "second!")]:
        api.fake.set(text=answer)
        assert (await api.generate(user, chat_id, question)).status_code == 200

    assert (await api.generate(user, chat_id, "third?")).status_code == 200

    assert api.fake.requests[-1]["messages"] == [
        {"role": "user", "content": "second?"},
        {"role": "assistant", "content": "second!"},
        {"role": "user", "content": "third?"},
    ]
