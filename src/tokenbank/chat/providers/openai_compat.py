"""Replies from any server speaking OpenAI's chat completions API.

That is OpenAI itself, and the local servers that copy its wire format (Ollama at
`http://localhost:11434/v1`, vLLM, llama.cpp's server); only the base URL differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from tokenbank.chat.providers.base import (
    ChatTurn,
    EmptyReply,
    ProviderTimeout,
    ProviderUnavailable,
    ReplyReport,
    StreamedReply,
)
from tokenbank.chat.providers.deadline import RemoteProvider

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatProvider(RemoteProvider[ChatCompletion, ChatCompletionChunk, str]):
    """An `AIProvider` over the official `openai` SDK."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        timeout_s: float = 30.0,
        idle_timeout_s: float | None = None,
    ) -> None:
        super().__init__("openai", model, timeout_s=timeout_s, idle_timeout_s=idle_timeout_s)
        # No SDK retries: a retry would spend the caller's deadline while the person
        # waits; failing fast lets them retry, and nothing is charged for a failure.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def _request(
        self, turns: Sequence[ChatTurn], model: str, max_tokens: int | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": model, "messages": _messages(turns)}
        if max_tokens is not None:
            # `max_tokens` rather than the newer `max_completion_tokens`: every compatible
            # server (Ollama, vLLM, llama.cpp) reads it, and OpenAI still does.
            request["max_tokens"] = max_tokens
        return request

    def _send(self, request: dict[str, Any]) -> Awaitable[ChatCompletion]:
        return self._client.chat.completions.create(**request)

    def _reply(self, response: ChatCompletion, report: ReplyReport | None) -> str:
        if report is not None:
            _read_usage(getattr(response, "usage", None), report)
            choices = getattr(response, "choices", None) or [None]
            report.finish_reason = _finish(getattr(choices[0], "finish_reason", None))
        return _reply_text(self.name, response)

    def _open(self, request: dict[str, Any]) -> Awaitable[AsyncStream[ChatCompletionChunk]]:
        return self._client.chat.completions.create(
            **request,
            stream=True,
            # The last chunk then carries the reply's usage (no choices).
            stream_options={"include_usage": True},
        )

    def _texts(self, chunk: ChatCompletionChunk, reply: StreamedReply[str]) -> Iterator[str]:
        _read_usage(getattr(chunk, "usage", None), reply.report)
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            if choice.delta is not None and choice.delta.content:
                reply.produced = True
                yield choice.delta.content
            reply.finished(choice.finish_reason)

    async def _close(self, chunks: AsyncIterable[ChatCompletionChunk]) -> None:
        await cast(AsyncStream[ChatCompletionChunk], chunks).close()

    def _finish(self, reason: str | None) -> str | None:
        return _finish(reason)

    def _mapped_errors(self) -> AbstractContextManager[None]:
        return _mapped_errors(self.name)

    async def aclose(self) -> None:
        await self._client.close()


def _messages(turns: Sequence[ChatTurn]) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    for turn in turns:
        if turn.role == "system":
            messages.append({"role": "system", "content": turn.content})
        elif turn.role == "assistant":
            messages.append({"role": "assistant", "content": turn.content})
        else:
            messages.append({"role": "user", "content": turn.content})
    return messages


def _read_usage(usage: object, report: ReplyReport) -> None:
    """OpenAI's ``usage`` (``prompt_tokens``, ``completion_tokens``, cached prompt tokens in
    ``prompt_tokens_details``) into ``report``; a missing or partial one is left out."""
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None)
    report.input_tokens, report.output_tokens = prompt, completion
    report.cached_tokens = cached if isinstance(cached, int) else 0


def _finish(reason: object) -> str | None:
    """Any finish reason but ``length`` and ``content_filter`` (a compatible server's own
    among them) ended the reply normally: ``stop``."""
    if reason is None:
        return None
    if reason in ("length", "content_filter"):
        return str(reason)
    return "stop"


def _reply_text(provider: str, completion: ChatCompletion) -> str:
    # Responses are parsed leniently (compatible servers omit fields OpenAI sends),
    # so a field may be missing or None: read it defensively.
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        raise ProviderUnavailable(provider, "bad_response", "response has no choices list")
    if not choices:
        raise EmptyReply(provider, "empty", "response has no choices")
    choice = choices[0]
    if getattr(choice, "finish_reason", None) == "content_filter":
        raise EmptyReply(provider, "blocked", "reply withheld by the content filter")
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str) or not content.strip():
        raise EmptyReply(provider, "empty", "reply has no text")
    return content


@contextmanager
def _mapped_errors(provider: str) -> Iterator[None]:
    """Translate the SDK's exceptions into `ProviderError`s (the cause is chained)."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise ProviderTimeout(provider, message=str(exc)) from exc
    except openai.APIStatusError as exc:
        raise ProviderUnavailable.for_status(provider, exc.status_code, str(exc)) from exc
    except openai.APIConnectionError as exc:
        raise ProviderUnavailable(provider, "network_error", str(exc)) from exc
    except openai.APIError as exc:
        # An error event inside an otherwise successful stream.
        raise ProviderUnavailable(provider, "server_error", str(exc)) from exc
    except (openai.OpenAIError, ValueError) as exc:
        # A body that is not JSON, or JSON of an unexpected shape.
        raise ProviderUnavailable(provider, "bad_response", str(exc)) from exc
