"""The OpenAI-compatible provider, driven through the real `openai` SDK over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from chat.providers.fake_ai_servers import FakeServer, reply_for
from tokenbank.chat.providers import (
    ChatTurn,
    EmptyReply,
    OpenAICompatProvider,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

pytestmark = pytest.mark.anyio

HISTORY = [
    ChatTurn("system", "You are a terse assistant."),
    ChatTurn("user", "Hi"),
    ChatTurn("assistant", "Hello! How can I help?"),
    ChatTurn("user", "What does a token cost?"),
]
EXPECTED = reply_for("What does a token cost?")

MakeProvider = Callable[..., OpenAICompatProvider]


@pytest.fixture
async def make_provider(openai_server: FakeServer) -> AsyncIterator[MakeProvider]:
    made: list[OpenAICompatProvider] = []

    def make(
        model: str = "gpt-test",
        *,
        timeout_s: float = 5.0,
        idle_timeout_s: float | None = None,
        base_url: str = f"{openai_server.url}/v1",
    ) -> OpenAICompatProvider:
        provider = OpenAICompatProvider(
            api_key="sk-test-local",
            model=model,
            base_url=base_url,
            timeout_s=timeout_s,
            idle_timeout_s=idle_timeout_s,
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def drain(stream: AsyncIterator[str], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def test_complete_sends_history_and_model_and_returns_the_text(
    make_provider: MakeProvider, openai_server: FakeServer
) -> None:
    reply = await make_provider("gpt-test").complete(HISTORY)

    assert reply == EXPECTED
    sent = openai_server.last_request()
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-local"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "What does a token cost?"},
    ]
    assert not sent.body.get("stream")


async def test_stream_yields_several_chunks_that_join_to_the_reply(
    make_provider: MakeProvider, openai_server: FakeServer
) -> None:
    chunks: list[str] = []
    await drain(make_provider("gpt-stream").stream(HISTORY), chunks)

    assert len(chunks) >= 3
    assert "".join(chunks) == EXPECTED
    sent = openai_server.last_request()
    assert sent.body["stream"] is True
    assert sent.body["model"] == "gpt-stream"
    assert sent.body["messages"][-1] == {"role": "user", "content": "What does a token cost?"}


async def test_one_provider_serves_concurrent_requests_each_with_its_own_reply(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider()
    questions = [f"Question number {i}?" for i in range(20)]

    replies = await asyncio.gather(
        *(provider.complete([*HISTORY[:-1], ChatTurn("user", q)]) for q in questions)
    )

    assert replies == [reply_for(q) for q in questions]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "server_error"), (429, "rate_limited"), (401, "auth_failed")],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_error_status_is_provider_unavailable(
    make_provider: MakeProvider, status: int, reason: str, streamed: bool
) -> None:
    provider = make_provider(f"status-{status}")

    with pytest.raises(ProviderUnavailable) as caught:
        if streamed:
            await drain(provider.stream(HISTORY), [])
        else:
            await provider.complete(HISTORY)

    assert caught.value.reason == reason
    assert caught.value.status_code == status
    assert caught.value.provider == "openai"


@pytest.mark.parametrize("streamed", [False, True])
async def test_hanging_server_ends_in_provider_timeout(
    make_provider: MakeProvider, streamed: bool
) -> None:
    provider = make_provider("hang", timeout_s=0.5)

    with pytest.raises(ProviderTimeout):
        if streamed:
            await drain(provider.stream(HISTORY), [])
        else:
            await provider.complete(HISTORY)


@pytest.mark.parametrize("streamed", [False, True])
async def test_server_trickling_empty_bytes_forever_ends_in_provider_timeout(
    make_provider: MakeProvider, streamed: bool
) -> None:
    # Every socket read succeeds, so only the overall deadline can end the call.
    provider = make_provider("trickle", timeout_s=0.6)

    with pytest.raises(ProviderTimeout):
        if streamed:
            await drain(provider.stream(HISTORY), [])
        else:
            await provider.complete(HISTORY)


async def test_stream_that_stalls_between_chunks_ends_in_provider_timeout(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider("stream-stall", timeout_s=30.0, idle_timeout_s=0.4)
    chunks: list[str] = []

    with pytest.raises(ProviderTimeout):
        await drain(provider.stream(HISTORY), chunks)

    assert chunks, "the first chunk arrived before the stall"


@pytest.mark.parametrize(
    ("model", "reason"),
    [("empty", "empty"), ("no-choices", "empty"), ("content-filter", "blocked")],
)
async def test_reply_without_usable_text_is_empty_reply(
    make_provider: MakeProvider, model: str, reason: str
) -> None:
    with pytest.raises(EmptyReply) as caught:
        await make_provider(model).complete(HISTORY)

    assert caught.value.reason == reason


async def test_stream_withheld_by_content_filter_is_empty_reply(
    make_provider: MakeProvider,
) -> None:
    with pytest.raises(EmptyReply) as caught:
        await drain(make_provider("stream-content-filter").stream(HISTORY), [])

    assert caught.value.reason == "blocked"


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("stream-break", "network_error"),
        ("stream-no-finish", "stream_interrupted"),
        ("stream-error-event", "server_error"),
    ],
)
async def test_stream_that_breaks_midway_raises_after_partial_chunks(
    make_provider: MakeProvider, model: str, reason: str
) -> None:
    chunks: list[str] = []

    with pytest.raises(ProviderError) as caught:
        await drain(make_provider(model).stream(HISTORY), chunks)

    assert chunks, "some text arrived before the break"
    assert "".join(chunks) != EXPECTED
    assert caught.value.reason == reason


async def test_body_that_is_not_json_is_provider_unavailable(make_provider: MakeProvider) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await make_provider("not-json").complete(HISTORY)

    assert caught.value.reason == "bad_response"


async def test_unreachable_server_is_provider_unavailable(make_provider: MakeProvider) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    provider = make_provider(base_url=f"http://127.0.0.1:{closed_port}/v1")

    with pytest.raises(ProviderUnavailable) as caught:
        await provider.complete(HISTORY)

    assert caught.value.reason == "network_error"


async def test_stopping_a_stream_early_leaves_the_provider_usable(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider("gpt-stream")
    stream = provider.stream(HISTORY)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert EXPECTED.startswith(first)
    assert await provider.complete(HISTORY) == EXPECTED


async def test_usage_finish_model_and_max_tokens_travel_both_ways(
    make_provider: MakeProvider, openai_server: FakeServer
) -> None:
    from tokenbank.chat.providers import ReplyReport

    provider = make_provider("gpt-test")
    report = ReplyReport()
    reply = await provider.complete(HISTORY, model="gpt-other", max_tokens=77, report=report)
    assert reply == EXPECTED
    assert openai_server.last_request().body["model"] == "gpt-other"
    assert openai_server.last_request().body["max_tokens"] == 77
    assert report == ReplyReport(5, 5, 0, "stop")

    streamed = ReplyReport()
    chunks: list[str] = []
    await drain(provider.stream(HISTORY, max_tokens=9, report=streamed), chunks)
    assert "".join(chunks) == EXPECTED
    sent = openai_server.last_request().body
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 9
    # The usage chunk after the finish chunk (no choices) is read, cached tokens included.
    assert streamed == ReplyReport(5, 5, 2, "stop")


async def test_a_content_filter_mid_stream_is_reported_with_its_usage(
    make_provider: MakeProvider,
) -> None:
    from tokenbank.chat.providers import ReplyReport

    report = ReplyReport()
    with pytest.raises(EmptyReply):
        await drain(make_provider("stream-content-filter").stream(HISTORY, report=report), [])
    assert report == ReplyReport(5, 5, 2, "content_filter")
