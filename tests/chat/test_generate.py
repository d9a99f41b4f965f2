"""Charged AI replies over HTTP: what is charged, when, and what is saved."""

from __future__ import annotations

import asyncio

import pytest

from chat.harness import HANG_DEADLINE_S, Api, MakeApi
from tokenbank.ledger.models import TokenTransaction
from tokenbank.observability import INSUFFICIENT, UNITS_OF_WORK

from support import wait_for

pytestmark = pytest.mark.anyio


async def test_a_reply_costs_one_token_and_is_saved_with_its_question(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id, "Capital of France?")

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ai_message"]["content"] == api.fake.behaviour.text
    assert body["user_message"]["content"] == "Capital of France?"
    assert body["tokens_charged"] == 1
    assert body["balance"] == 9
    assert body["ai_message"]["tokens_charged"] == 1
    listed = await api.messages(user, chat_id)
    assert [(m["id"], m["role"], m["content"], m["tokens_charged"]) for m in listed] == [
        (body["user_message"]["id"], "user", "Capital of France?", 0),
        (body["ai_message"]["id"], "assistant", api.fake.behaviour.text, 1),
    ]
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.violations() == []


async def test_the_provider_gets_the_system_prompt_history_and_new_message(
    make_api: MakeApi,
) -> None:
    api = await make_api(ai_system_prompt="Answer briefly.")
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(text="Paris.")
    assert (await api.generate(user, chat_id, "Capital of France?")).status_code == 200
    api.fake.set(text="Berlin.")
    assert (await api.generate(user, chat_id, "And of Germany?")).status_code == 200

    assert api.fake.requests[-1]["model"] == "gpt-test"
    assert api.fake.requests[-1]["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]


async def test_forty_concurrent_requests_with_ten_tokens_get_exactly_ten_replies(
    api: Api,
) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(delay_s=0.05)  # replies overlap with the other requests' holds

    responses = await asyncio.gather(
        *(api.generate(user, chat_id, f"question {i}") for i in range(40))
    )

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 30, statuses
    for r in responses:
        if r.status_code == 402:
            error = r.json()["error"]
            assert (error["code"], error["balance"], error["required"]) == (
                "insufficient_tokens", 0, 1
            )
    account = await api.account(user)
    assert (account.balance, account.reserved) == (0, 0)
    assert await api.violations() == []
    assert await api.ai_messages() == 10
    assert await api.deductions(user) == 10
    assert len(api.fake.requests) == 10  # refused requests never reached the provider


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("error", "unavailable"), ("hang", "timeout"), ("empty", "empty_reply")],
)
async def test_a_failed_reply_charges_nothing_and_saves_nothing(
    make_api: MakeApi, mode: str, reason: str
) -> None:
    api = await make_api(ai_timeout_s=HANG_DEADLINE_S)
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(mode=mode)

    r = await api.generate(user, chat_id)

    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert (error["code"], error["reason"]) == ("ai_unavailable", reason)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.stored_messages() == 0  # neither the reply nor an orphan question
    assert await api.deductions(user) == 0
    assert await api.violations() == []
    if mode == "hang":
        # Never retried; on a loaded machine the deadline can pass before the fake server
        # has even read the one request.
        assert len(api.fake.requests) <= 1
    else:
        assert len(api.fake.requests) == 1


async def test_out_of_tokens_is_402_before_the_provider_is_called(api: Api) -> None:
    user = await api.user(tokens=0)
    chat_id = await api.chat(user)
    refusals_before = INSUFFICIENT._value.get()

    r = await api.generate(user, chat_id)

    assert r.status_code == 402
    # Counted once, by the ledger that refused (tokenbank_insufficient_balance_refusals).
    assert INSUFFICIENT._value.get() - refusals_before == 1
    error = r.json()["error"]
    assert (error["code"], error["balance"], error["required"]) == ("insufficient_tokens", 0, 1)
    assert api.fake.requests == []
    assert await api.stored_messages() == 0
    assert await api.reservations(user) == 0


async def test_a_free_model_never_touches_the_ledger(make_api: MakeApi) -> None:
    api = await make_api(model_costs={"gpt-test": 0})
    user = await api.user(tokens=0)
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id)

    assert r.status_code == 200, r.text
    assert (r.json()["tokens_charged"], r.json()["balance"]) == (0, 0)
    assert await api.count(TokenTransaction, user_id=user["id"]) == 0
    assert await api.reservations(user) == 0
    assert [m["role"] for m in await api.messages(user, chat_id)] == ["user", "assistant"]


async def test_the_model_cost_comes_from_settings(make_api: MakeApi) -> None:
    api = await make_api(model_costs={"gpt-test": 3})
    user = await api.user()
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id)

    assert (r.json()["tokens_charged"], r.json()["balance"]) == (3, 7)
    cfg = (await api.client.get("/api/chats/config", headers=user["headers"])).json()
    assert cfg == {
        "reply_cost_tokens": 3,
        "model": "gpt-test",
        "provider": "openai",
        "offline": False,
        "max_message_chars": 4000,
    }


async def test_the_offline_model_is_the_default_and_charges_like_any_reply(
    make_api: MakeApi,
) -> None:
    api = await make_api(ai_provider=None, openai_base_url=None, openai_api_key=None)
    user = await api.user()
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id, "12 * (3 + 4)")

    assert r.status_code == 200
    assert r.json()["ai_message"]["content"] == "[offline model] 12 * (3 + 4) = 84"
    assert r.json()["balance"] == 9
    cfg = (await api.client.get("/api/chats/config", headers=user["headers"])).json()
    assert (cfg["provider"], cfg["offline"]) == ("offline", True)
    assert api.fake.requests == []


# --- idempotency ---------------------------------------------------------------------


async def test_the_same_key_three_times_gives_one_reply_and_one_charge(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)

    first, second, third = [await api.generate(user, chat_id, key="k-1") for _ in range(3)]

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    ids = {(r.json()["user_message"]["id"], r.json()["ai_message"]["id"]) for r in
           (first, second, third)}
    assert len(ids) == 1
    assert [r.json()["tokens_charged"] for r in (first, second, third)] == [1, 1, 1]
    assert [r.json()["replayed"] for r in (first, second, third)] == [False, True, True]
    assert third.json()["balance"] == 9
    assert (await api.account(user)).balance == 9
    assert len(api.fake.requests) == 1
    assert await api.ai_messages() == 1


async def test_the_same_key_concurrently_runs_once(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(delay_s=0.3)  # the first is still running when the others arrive

    responses = await asyncio.gather(*(api.generate(user, chat_id, key="k-2") for _ in range(3)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and set(statuses) <= {200, 409}, statuses
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "generation_in_progress"
            assert r.headers["retry-after"] == "1"
    after = await api.generate(user, chat_id, key="k-2")
    replies = {r.json()["ai_message"]["id"] for r in [*responses, after] if r.status_code == 200}
    assert len(replies) == 1
    assert (await api.account(user)).balance == 9
    assert await api.ai_messages() == 1
    assert len(api.fake.requests) == 1
    assert await api.violations() == []


async def test_a_key_whose_attempt_failed_can_be_retried_and_then_charges_once(
    api: Api,
) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(mode="error")
    failed = await api.generate(user, chat_id, key="k-3")
    failed_again = await api.generate(user, chat_id, key="k-3")
    api.fake.set()

    ok = await api.generate(user, chat_id, key="k-3")
    replay = await api.generate(user, chat_id, key="k-3")

    assert [failed.status_code, failed_again.status_code, ok.status_code] == [502, 502, 200]
    assert replay.json()["ai_message"]["id"] == ok.json()["ai_message"]["id"]
    assert (await api.account(user)).balance == 9
    assert await api.deductions(user) == 1
    assert len(api.fake.requests) == 3
    assert await api.violations() == []


async def test_a_key_reused_for_a_different_message_is_refused(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)
    assert (await api.generate(user, chat_id, "first", key="k-4")).status_code == 200

    r = await api.generate(user, chat_id, "something else", key="k-4")

    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert (await api.account(user)).balance == 9


async def test_without_a_key_every_request_is_a_new_reply(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)

    a = await api.generate(user, chat_id, "same words")
    b = await api.generate(user, chat_id, "same words")

    assert a.json()["ai_message"]["id"] != b.json()["ai_message"]["id"]
    assert b.json()["balance"] == 8


async def test_keys_are_per_chat(api: Api) -> None:
    user = await api.user()
    chat_a, chat_b = await api.chat(user), await api.chat(user)

    a = await api.generate(user, chat_a, key="shared")
    b = await api.generate(user, chat_b, key="shared")

    assert a.status_code == b.status_code == 200
    assert b.json()["replayed"] is False
    assert b.json()["balance"] == 8


async def test_an_overlong_key_is_422(api: Api) -> None:
    user = await api.user()
    chat_id = await api.chat(user)

    r = await api.generate(user, chat_id, key="k" * 201)

    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


def _units() -> tuple[float, float]:
    return (
        float(UNITS_OF_WORK.labels("driver")._value.get()),
        float(UNITS_OF_WORK.labels("session")._value.get()),
    )


async def test_a_reply_is_two_units_of_work_on_the_driver(
    api: Api, db_url: str
) -> None:
    """A reply's two transactions run straight on the driver (asyncpg on PostgreSQL, a
    ``sqlite3`` connection's own thread on SQLite); a retry with the same key reads the
    stored reply there too. No session is opened for either."""
    user = await api.user()
    chat_id = await api.chat(user)
    driver, session = _units()

    first = await api.generate(user, chat_id, "Capital of France?", key="k-1")
    assert first.status_code == 200, first.text
    after_first = _units()
    assert (after_first[0] - driver, after_first[1] - session) == (2, 0)

    again = await api.generate(user, chat_id, "Capital of France?", key="k-1")
    assert again.status_code == 200, again.text
    assert again.json()["ai_message"]["id"] == first.json()["ai_message"]["id"]
    after_again = _units()
    assert (after_again[0] - after_first[0], after_again[1] - after_first[1]) == (1, 0)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.violations() == []


async def test_a_hold_whose_first_attempt_failed_is_retried_in_one_unit_on_the_driver(
    api: Api, db_url: str
) -> None:
    """The first attempt's hold was released: the retry's one unit finds it (a replayed
    key, released) and holds under attempt 2 — on the driver, no second path — and
    charges once."""
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(mode="error")
    failed = await api.generate(user, chat_id, "Capital of France?", key="k-2")
    assert failed.status_code == 502, failed.text
    api.fake.reset()
    driver, session = _units()
    retried = await api.generate(user, chat_id, "Capital of France?", key="k-2")
    assert retried.status_code == 200, retried.text
    assert retried.json()["balance"] == 9
    # (At least: a release left running by an earlier test may finish meanwhile.)
    on_driver, in_session = _units()[0] - driver, _units()[1] - session
    assert on_driver >= 2 and in_session == 0
    assert await api.violations() == []


async def test_a_reply_computed_after_the_client_left_is_charged_and_returned_for_its_key(
    make_api: MakeApi,
) -> None:
    api = await make_api(ai_timeout_s=30)
    user = await api.user()
    chat_id = await api.chat(user)
    api.fake.set(text="A considered answer.", delay_s=0.5)

    asking = asyncio.create_task(api.generate(user, chat_id, content="Think", key="gone-1"))

    async def waiting_on_the_ai() -> bool:
        return len(api.fake.requests) == 1

    await wait_for(waiting_on_the_ai, timeout_s=5, what="the provider call")
    asking.cancel()  # the client leaves (its connection closes) while the AI thinks
    with pytest.raises(asyncio.CancelledError):
        await asking

    async def charged() -> bool:
        return await api.deductions(user) == 1

    await wait_for(charged, timeout_s=10, what="the reply to be charged")
    retry = await api.generate(user, chat_id, content="Think", key="gone-1")
    assert retry.status_code == 200, retry.text
    body = retry.json()
    assert body["replayed"] is True
    assert (body["ai_message"]["content"], body["ai_message"]["interrupted"]) == (
        "A considered answer.", False,
    )
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert len(api.fake.requests) == 1
    assert await api.violations() == []
