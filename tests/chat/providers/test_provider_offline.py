"""The offline model: deterministic, clearly labelled, streamed, and a little useful."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenbank.chat.providers import (
    OFFLINE_LABEL,
    AIProvider,
    ChatTurn,
    OfflineProvider,
    offline_reply,
)

HISTORY = [
    ChatTurn("user", "Hi there"),
    ChatTurn("assistant", "Hello!"),
    ChatTurn("user", "How do I buy more tokens?"),
]


async def collect(provider: AIProvider, turns: list[ChatTurn]) -> list[str]:
    return [chunk async for chunk in provider.stream(turns)]


@pytest.mark.anyio
async def test_same_history_gives_the_same_reply_from_any_instance() -> None:
    first = await OfflineProvider().complete(HISTORY)
    second = await OfflineProvider().complete(list(HISTORY))

    assert first == second


def test_same_history_gives_the_same_reply_in_another_process() -> None:
    # str hashes differ between processes; the reply must not depend on them.
    script = (
        "from tokenbank.chat.providers import ChatTurn, offline_reply\n"
        "print(offline_reply([ChatTurn('user', 'Hi there'), ChatTurn('assistant', 'Hello!'),"
        " ChatTurn('user', 'How do I buy more tokens?')]), end='')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )

    assert other.stdout == offline_reply(HISTORY)


@pytest.mark.anyio
async def test_reply_is_labelled_as_the_offline_model_and_quotes_the_message() -> None:
    reply = await OfflineProvider().complete(HISTORY)

    assert reply.startswith(OFFLINE_LABEL)
    assert "offline model" in reply
    assert '"How do I buy more tokens?"' in reply
    assert "message 2 of this chat" in reply


@pytest.mark.anyio
async def test_different_messages_get_different_replies() -> None:
    provider = OfflineProvider()
    other = [*HISTORY[:-1], ChatTurn("user", "What is a token?")]

    assert await provider.complete(HISTORY) != await provider.complete(other)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("What is 12 * (3 + 4)?", "12 * (3 + 4) = 84"),
        ("7/2", "7/2 = 3.5"),
        ("10 - 3 =", "10 - 3 = 7"),
        ("1/0", "1/0 has no value: it divides by zero."),
    ],
)
async def test_arithmetic_is_worked_out(message: str, answer: str) -> None:
    reply = await OfflineProvider().complete([ChatTurn("user", message)])

    assert reply == f"{OFFLINE_LABEL} {answer}"


@pytest.mark.anyio
@pytest.mark.parametrize("message", ["555-1234", "2**1000", "print(1) + 1", "2024"])
async def test_text_that_is_not_plain_arithmetic_is_not_evaluated(message: str) -> None:
    reply = await OfflineProvider().complete([ChatTurn("user", message)])

    assert f'"{message}"' in reply
    assert " = " not in reply


@pytest.mark.anyio
async def test_stream_yields_several_chunks_that_join_to_the_reply() -> None:
    provider = OfflineProvider()

    chunks = await collect(provider, HISTORY)

    assert len(chunks) >= 3
    assert "".join(chunks) == await provider.complete(HISTORY)


@pytest.mark.anyio
async def test_offline_provider_says_it_is_offline() -> None:
    provider = OfflineProvider()

    assert isinstance(provider, AIProvider)
    assert provider.is_offline is True
    assert provider.name == "offline"
    await provider.aclose()


turns_strategy = st.lists(
    st.builds(ChatTurn, st.sampled_from(["user", "assistant", "system"]), st.text(max_size=200)),
    max_size=8,
)


@pytest.mark.anyio
@given(turns=turns_strategy)
async def test_any_history_gets_a_labelled_reply_whose_stream_matches(
    turns: list[ChatTurn],
) -> None:
    provider = OfflineProvider()
    reply = offline_reply(turns)
    chunks = await collect(provider, turns)

    assert reply.startswith(OFFLINE_LABEL)
    assert "".join(chunks) == reply
    assert offline_reply(list(turns)) == reply
