"""Priced replies over HTTP: the price book, usage-based charges, caps, quotes, models.

The fake OpenAI server reports usage (JSON, and streams that ask for it), so a usage
price is charged exactly usage x price; the sums below are written out by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from chat.harness import Api, MakeApi
from tokenbank.auth.models import User
from tokenbank.ledger.models import TokenTransaction
from tokenbank.pricing import book as pb

from support import wait_for

pytestmark = pytest.mark.anyio

#: 0.1 token per input token, 1 per output token, 0.01 per cached input token.
USAGE = {"per_1k_input": 100, "per_1k_output": 1000, "per_1k_cached": 10, "minimum": 1}
BOOK: dict[str, Any] = {
    "models": {"gpt-test": USAGE, "gpt-flat": {"per_reply": 3, "name": "Flat"}},
    "features": {"tts_clip": 20},
}
MAX_OUTPUT = 100
QUESTION = "Capital of France?"
#: The prompt's estimate: 3 + (4 + ceil(28 / 3)) for the system prompt + (4 + ceil(18 / 3)).
PROMPT_ESTIMATE = 3 + (4 + 10) + (4 + 6)
#: The hold: the prompt's estimate plus the most output, at the usage price.
HOLD = -(-(PROMPT_ESTIMATE * 100 + MAX_OUTPUT * 1000) // 1000)


async def priced(make_api: MakeApi, **overrides: Any) -> Api:
    return await make_api(
        price_book=BOOK,
        ai_max_output_tokens=MAX_OUTPUT,
        ai_system_prompt="You are a helpful assistant.",
        **overrides,
    )


async def make_admin(api: Api) -> dict[str, Any]:
    admin = await api.user(tokens=0)
    async with api.db.transaction() as session:
        await session.execute(update(User).where(User.id == admin["id"]).values(is_admin=True))
    return admin


async def deductions(api: Api, user: dict[str, Any]) -> list[int]:
    async with api.db.transaction() as session:
        rows = await session.execute(
            select(TokenTransaction.amount, TokenTransaction.description)
            .where(
                TokenTransaction.user_id == user["id"],
                TokenTransaction.transaction_type == "deduction",
            )
            .order_by(TokenTransaction.id)
        )
        return [-amount for amount, _ in rows.all()]


def test_the_hold_in_these_tests_is_what_the_book_arithmetic_says() -> None:
    price = pb.parse(BOOK).models["gpt-test"]
    quote = pb.quote(
        price, ["You are a helpful assistant.", QUESTION], max_output_tokens=MAX_OUTPUT, cap=None
    )
    assert (quote.input_tokens, quote.max) == (PROMPT_ESTIMATE, HOLD) == (27, 103)
    # 20 input and 10 output tokens: 2 + 10 = 12; cached input at its own price.
    assert pb.usage_cost(price, pb.Usage(20, 10)) == 12
    assert pb.usage_cost(price, pb.Usage(20, 10, cached_tokens=10)) == 12  # 1 + 0.1 + 10
    assert pb.usage_cost(price, pb.Usage(0, 0)) == 1  # never below the minimum


async def test_a_usage_priced_reply_is_charged_usage_times_price(make_api: MakeApi) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id, QUESTION)

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["tokens_charged"], body["balance"], body["price_version"]) == (12, 188, 1)
    ai = body["ai_message"]
    assert (ai["cost"], ai["model"], ai["finish_reason"], ai["price_version"]) == (
        12, "gpt-test", "stop", 1,
    )
    assert body["user_message"]["cost"] is None
    assert api.fake.requests[-1]["max_tokens"] == MAX_OUTPUT
    account = await api.account(user)
    assert (account.balance, account.reserved) == (188, 0)
    assert await deductions(api, user) == [12]
    assert await api.violations() == []


async def test_a_streamed_usage_priced_reply_is_charged_from_the_streamed_usage(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)
    api.fake.set(usage=(40, 30))

    r, events = await api.stream(user, chat_id, QUESTION)

    assert r.status_code == 200
    name, done = events[-1]
    assert name == "done", events
    assert done["tokens_charged"] == 34  # 4 + 30
    assert done["ai_message"]["finish_reason"] == "stop"
    assert api.fake.requests[-1]["stream_options"] == {"include_usage": True}
    assert (await api.account(user)).available == 166
    assert await api.violations() == []


async def test_the_charge_is_never_above_the_hold(make_api: MakeApi) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)
    api.fake.set(usage=(20, 50_000))  # a provider reporting far more than it was allowed

    body = (await api.generate(user, chat_id, QUESTION)).json()

    assert body["tokens_charged"] == HOLD
    assert (await api.account(user)).available == 200 - HOLD
    assert await api.violations() == []


async def test_without_usage_the_delivered_text_is_estimated_within_the_hold(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)
    api.fake.set(usage=None)

    body = (await api.generate(user, chat_id, QUESTION)).json()

    text = api.fake.behaviour.text
    expected = -(-(PROMPT_ESTIMATE * 100 + pb.estimate_tokens(text) * 1000) // 1000)
    assert body["tokens_charged"] == expected == 14
    r, events = await api.stream(user, await api.chat(user), QUESTION)
    assert events[-1][0] == "done"
    assert events[-1][1]["tokens_charged"] == 14
    assert await api.violations() == []


async def test_a_chat_cap_fits_max_tokens_and_bounds_the_charge(make_api: MakeApi) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)
    r = await api.client.patch(
        f"/api/chats/{chat_id}", json={"cost_cap": 10}, headers=user["headers"]
    )
    assert r.status_code == 200, r.text
    assert (r.json()["cost_cap"], r.json()["model"]) == (10, None)

    quote = await api.client.post(
        f"/api/chats/{chat_id}/quote", json={"content": QUESTION}, headers=user["headers"]
    )
    assert quote.json() == {"min": 4, "max": 10, "cap": 10, "model": "gpt-test", "price_version": 1}
    body = (await api.generate(user, chat_id, QUESTION)).json()

    # The cap leaves 10 - 2.7 tokens for output: the provider may write 7 tokens.
    assert api.fake.requests[-1]["max_tokens"] == 7
    assert body["tokens_charged"] == 10  # usage said 12; the cap holds
    assert quote.json()["min"] <= body["tokens_charged"] <= quote.json()["max"]

    too_low = await api.client.patch(
        f"/api/chats/{chat_id}", json={"cost_cap": 3}, headers=user["headers"]
    )
    assert too_low.status_code == 200
    refused = await api.generate(user, chat_id, QUESTION)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "cost_cap_too_low")
    assert await api.violations() == []


async def test_402_only_when_the_quotes_minimum_exceeds_the_balance(make_api: MakeApi) -> None:
    api = await priced(make_api)
    poor = await api.user(tokens=3)
    chat_id = await api.chat(poor)

    r = await api.generate(poor, chat_id, QUESTION)

    assert r.status_code == 402
    assert (r.json()["error"]["required"], r.json()["error"]["balance"]) == (4, 3)
    assert api.fake.requests == []

    # Between the minimum and the hold: held at the balance, output fitted to it.
    some = await api.user(tokens=20)
    chat_id = await api.chat(some)
    body = (await api.generate(some, chat_id, QUESTION)).json()
    assert api.fake.requests[-1]["max_tokens"] == 17  # (20 - 2.7) tokens of output
    assert body["tokens_charged"] == 12
    assert (await api.account(some)).available == 8
    assert await api.violations() == []


async def test_a_price_change_mid_flight_charges_the_version_that_was_held(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    admin = await make_admin(api)
    user = await api.user(tokens=500)
    chat_id = await api.chat(user)
    api.fake.set(delay_s=1.0)

    asked = asyncio.create_task(api.generate(user, chat_id, QUESTION))

    async def provider_called() -> bool:
        return len(api.fake.requests) == 1

    await wait_for(provider_called, what="the provider to be asked")
    dearer = {"models": {"gpt-test": {**USAGE, "per_1k_output": 5000}}}
    put = await api.client.put(
        "/api/admin/price-book", json={"book": dearer}, headers=admin["headers"]
    )
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.json()["created_by"]) == (2, admin["id"])
    body = (await asked).json()

    assert (body["tokens_charged"], body["price_version"]) == (12, 1)
    api.fake.set()
    after = (await api.generate(user, chat_id, "And Germany?")).json()
    assert (after["tokens_charged"], after["price_version"]) == (52, 2)  # 2 + 50
    listed = await api.messages(user, chat_id)
    assert [m["price_version"] for m in listed if m["role"] == "assistant"] == [1, 2]
    got = await api.client.get("/api/admin/price-book", headers=admin["headers"])
    assert (got.json()["version"], got.json()["book"]) == (2, dearer)
    assert await api.violations() == []


async def test_an_invalid_price_book_is_refused_and_only_admins_write_it(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    admin = await make_admin(api)
    user = await api.user()
    bad = {"models": {"m": {"per_1k_input": 1}}}
    r = await api.client.put("/api/admin/price-book", json={"book": bad}, headers=admin["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "price_book_invalid")
    r = await api.client.put("/api/admin/price-book", json={"book": BOOK}, headers=user["headers"])
    assert r.status_code == 403
    got = await api.client.get("/api/admin/price-book", headers=admin["headers"])
    assert (got.json()["version"], got.json()["created_by"], got.json()["book"]) == (1, None, BOOK)


async def test_models_list_prices_and_a_model_can_be_chosen(make_api: MakeApi) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)

    r = await api.client.post(
        f"/api/chats/{chat_id}/generate",
        json={"content": QUESTION, "model": "gpt-flat"},
        headers=user["headers"],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["tokens_charged"], r.json()["ai_message"]["model"]) == (3, "gpt-flat")
    assert api.fake.requests[-1]["model"] == "gpt-flat"
    assert "max_tokens" not in api.fake.requests[-1]  # a per-reply price sets no limit

    unknown = await api.client.post(
        f"/api/chats/{chat_id}/generate",
        json={"content": QUESTION, "model": "gpt-nope"},
        headers=user["headers"],
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_model")
    patched = await api.client.patch(
        f"/api/chats/{chat_id}", json={"model": "gpt-nope"}, headers=user["headers"]
    )
    assert (patched.status_code, patched.json()["error"]["code"]) == (422, "unknown_model")
    patched = await api.client.patch(
        f"/api/chats/{chat_id}", json={"model": "gpt-flat", "title": "Flat"},
        headers=user["headers"],
    )
    assert (patched.json()["model"], patched.json()["title"]) == ("gpt-flat", "Flat")
    assert (await api.generate(user, chat_id, QUESTION)).json()["tokens_charged"] == 3

    models = (await api.client.get("/api/models", headers=user["headers"])).json()
    assert models == {
        "default": "gpt-test",
        "price_version": 1,
        "items": [
            {"id": "gpt-test", "name": "gpt-test", "price": {"kind": "usage", **USAGE},
             "recent_average": None},
            {"id": "gpt-flat", "name": "Flat", "price": {"kind": "per_reply", "per_reply": 3},
             "recent_average": 3.0},
        ],
    }
    config = (await api.client.get("/api/chats/config", headers=user["headers"])).json()
    assert (config["model"], config["reply_cost_tokens"]) == ("gpt-test", 1)  # the minimum
    other = await api.client.patch(
        f"/api/chats/{chat_id}", json={"model": "gpt-flat"}, headers=(await api.user())["headers"]
    )
    assert other.status_code == 404


async def test_length_and_content_filter_ends_are_recorded_and_charged_by_usage(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)

    api.fake.set(finish="length")
    body = (await api.generate(user, chat_id, QUESTION)).json()
    assert (body["ai_message"]["finish_reason"], body["tokens_charged"]) == ("length", 12)

    api.fake.set(finish="content_filter", usage=(20, 5))
    r, events = await api.stream(user, chat_id, QUESTION)
    name, done = events[-1]
    assert name == "done", events
    assert done["ai_message"]["finish_reason"] == "content_filter"
    assert done["ai_message"]["interrupted"] is True
    assert done["tokens_charged"] == 7  # 2 + 5: what was delivered, by usage

    api.fake.set(mode="empty")
    empty = await api.generate(user, chat_id, QUESTION)
    assert empty.status_code == 502  # an empty reply is charged nothing
    assert (await api.account(user)).available == 200 - 12 - 7
    assert await api.violations() == []


async def test_without_a_price_book_the_reply_costs_stay_per_reply(make_api: MakeApi) -> None:
    api = await make_api(reply_cost_tokens=2, model_costs={"gpt-cheap": 1})
    user = await api.user(tokens=10)
    chat_id = await api.chat(user)

    body = (await api.generate(user, chat_id, QUESTION)).json()
    assert (body["tokens_charged"], body["price_version"]) == (2, 1)
    models = (await api.client.get("/api/models", headers=user["headers"])).json()
    assert models["default"] == "gpt-test"
    config = (await api.client.get("/api/chats/config", headers=user["headers"])).json()
    assert (config["model"], config["reply_cost_tokens"]) == ("gpt-test", 2)
    assert [(m["id"], m["price"]) for m in models["items"]] == [
        ("gpt-test", {"kind": "per_reply", "per_reply": 2}),
        ("gpt-cheap", {"kind": "per_reply", "per_reply": 1}),
    ]
    assert models["items"][0]["recent_average"] == 2.0


async def test_a_client_leaving_mid_stream_pays_the_estimate_of_what_it_got(
    make_api: MakeApi,
) -> None:
    from chat.test_stream import _leave_after, _settled

    api = await priced(make_api, ai_timeout_s=30)
    user = await api.user(tokens=200)
    chat_id = await api.chat(user)
    full = "word " * 60
    api.fake.set(text=full, chunks=60, delay_s=0.1, usage=(20, 1000))

    received = await _leave_after(api, user, chat_id, deltas=2)

    await _settled(api, user)
    reply = (await api.messages(user, chat_id))[1]
    assert (reply["finish_reason"], reply["interrupted"]) == ("cut", True)
    assert reply["content"].startswith(received)
    # The usage (which said 1000 output tokens) never came: the prompt's estimate for
    # "Tell me a story" and the estimate of the text saved, within the hold.
    prompt = 3 + (4 + 10) + (4 + 5)
    expected = -(-(prompt * 100 + pb.estimate_tokens(reply["content"]) * 1000) // 1000)
    assert reply["cost"] == expected < HOLD
    assert (await api.account(user)).available == 200 - expected
    assert await api.violations() == []


async def test_a_gemini_reply_is_charged_from_its_usage_metadata(make_api: MakeApi) -> None:
    from chat.providers.fake_ai_servers import FakeServer, gemini_app, serve

    gemini = FakeServer(url="")
    with serve(gemini_app(gemini)) as url:
        gemini.url = url
        api = await make_api(
            ai_provider="gemini",
            gemini_base_url=url,
            gemini_api_key="test-key",
            gemini_model="gemini-test",
            price_book={"models": {"gemini-test": {**USAGE, "per_1k_output": 2000}}},
            ai_max_output_tokens=MAX_OUTPUT,
        )
        user = await api.user(tokens=500)
        chat_id = await api.chat(user)

        body = (await api.generate(user, chat_id, QUESTION)).json()
        r, events = await api.stream(user, chat_id, QUESTION)

    # usageMetadata: 7 prompt tokens (3 cached), 4 candidate + 2 thinking tokens:
    # 4 x 0.1 + 3 x 0.01 + 6 x 2 = 12.43 -> 13, streamed (its last chunk) or not.
    assert (body["tokens_charged"], body["ai_message"]["model"]) == (13, "gemini-test")
    assert events[-1][0] == "done" and events[-1][1]["tokens_charged"] == 13
    sent = gemini.requests[0].body["generationConfig"]
    assert sent["maxOutputTokens"] == MAX_OUTPUT
    assert (await api.account(user)).available == 500 - 26
    assert await api.violations() == []


async def test_a_new_chat_is_quoted_before_it_exists_as_its_first_message_is_charged(
    make_api: MakeApi,
) -> None:
    api = await priced(make_api)
    user = await api.user(tokens=200)
    ask = {"content": QUESTION}

    r = await api.client.post("/api/chats/quote", json=ask, headers=user["headers"])
    assert r.status_code == 200, r.text
    assert r.json() == {
        "min": 4, "max": HOLD, "cap": None, "model": "gpt-test", "price_version": 1
    }
    # The same quote as the chat's once it exists (no history either way) ...
    chat_id = await api.chat(user)
    in_chat = await api.client.post(
        f"/api/chats/{chat_id}/quote", json=ask, headers=user["headers"]
    )
    assert in_chat.json() == r.json()
    # ... and with the model and the cap the new chat will have.
    capped = await api.client.post(
        "/api/chats/quote", json=ask | {"cost_cap": 10}, headers=user["headers"]
    )
    assert capped.json() == {
        "min": 4, "max": 10, "cap": 10, "model": "gpt-test", "price_version": 1
    }
    flat = await api.client.post(
        "/api/chats/quote", json=ask | {"model": "gpt-flat"}, headers=user["headers"]
    )
    assert (flat.json()["min"], flat.json()["max"], flat.json()["model"]) == (3, 3, "gpt-flat")

    for body, code in (
        (ask | {"model": "nope"}, "unknown_model"),
        (ask | {"cost_cap": 1}, "cost_cap_too_low"),
    ):
        refused = await api.client.post("/api/chats/quote", json=body, headers=user["headers"])
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code), body
    nobody = await api.client.post("/api/chats/quote", json=ask)
    assert nobody.status_code == 401

    # Nothing was held, charged or created.
    assert (await api.account(user)).available == 200
    chats = await api.client.get("/api/chats", headers=user["headers"])
    assert [c["id"] for c in chats.json()] == [chat_id]
    body = (await api.generate(user, chat_id, QUESTION)).json()
    assert r.json()["min"] <= body["tokens_charged"] <= r.json()["max"]
