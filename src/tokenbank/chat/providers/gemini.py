"""Replies from Google's Gemini API through the official Google Gen AI SDK."""

from __future__ import annotations

import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Iterator,
    Sequence,
)
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import httpx2
from google import genai
from google.genai import errors, types

from tokenbank.chat.providers.base import (
    ChatTurn,
    EmptyReply,
    ProviderTimeout,
    ProviderUnavailable,
    ReplyReport,
    StreamedReply,
    check_reply_end,
)
from tokenbank.chat.providers.deadline import RemoteProvider

DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_API_VERSION = "v1beta"

_R = types.FinishReason
_USABLE_FINISH = frozenset({_R.STOP, _R.MAX_TOKENS})
# The model stopped because a policy withheld the reply, not because it was done.
_WITHHELD_FINISH = frozenset(
    {
        _R.SAFETY,
        _R.RECITATION,
        _R.BLOCKLIST,
        _R.PROHIBITED_CONTENT,
        _R.SPII,
        _R.LANGUAGE,
        _R.MODEL_ARMOR,
    }
)


class GeminiProvider(
    RemoteProvider[types.GenerateContentResponse, types.GenerateContentResponse, types.FinishReason]
):
    """An `AIProvider` over `google-genai` (the Gemini Developer API)."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_GEMINI_MODEL,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        idle_timeout_s: float | None = None,
    ) -> None:
        super().__init__("gemini", model, timeout_s=timeout_s, idle_timeout_s=idle_timeout_s)
        # HttpOptions.timeout is in milliseconds. The SDK does not retry unless
        # retry_options are given, which keeps a failure fast (see openai_compat).
        # The API version is pinned so the wire format does not move with SDK defaults.
        options = types.HttpOptions(
            base_url=base_url, api_version=GEMINI_API_VERSION, timeout=math.ceil(timeout_s * 1000)
        )
        # vertexai=False: never let an environment variable reroute to Vertex AI.
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def _request(
        self, turns: Sequence[ChatTurn], model: str, max_tokens: int | None
    ) -> dict[str, Any]:
        """Gemini's shape: system turns become the system instruction, the rest `contents`."""
        system = "\n\n".join(turn.content for turn in turns if turn.role == "system")
        contents = [
            types.Content(
                role="model" if turn.role == "assistant" else "user",
                parts=[types.Part(text=turn.content)],
            )
            for turn in turns
            if turn.role != "system"
        ]
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            max_output_tokens=max_tokens,
            # No tools are offered, so nothing may be called automatically.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        return {"model": model, "contents": contents, "config": config}

    def _send(self, request: dict[str, Any]) -> Awaitable[types.GenerateContentResponse]:
        return self._client.aio.models.generate_content(**request)

    def _reply(self, response: types.GenerateContentResponse, report: ReplyReport | None) -> str:
        if report is not None:
            _read_usage(response, report)
            report.finish_reason = _finish(_read_chunk(response)[1] or types.FinishReason.STOP)
        _raise_if_blocked(self.name, response)
        if not response.candidates:
            raise EmptyReply(self.name, "empty", "response has no candidates")
        text, finish = _read_chunk(response)
        # A whole (non-streamed) response is finished by construction, even when a
        # compatible server leaves the finish reason out.
        _check_end(self.name, finish or types.FinishReason.STOP, bool(text.strip()))
        return text

    def _open(
        self, request: dict[str, Any]
    ) -> Awaitable[AsyncIterator[types.GenerateContentResponse]]:
        return self._client.aio.models.generate_content_stream(**request)

    def _texts(
        self, chunk: types.GenerateContentResponse, reply: StreamedReply[types.FinishReason]
    ) -> Iterator[str]:
        # Each chunk's usage_metadata counts the reply so far; the last one wins.
        _read_usage(chunk, reply.report)
        _raise_if_blocked(self.name, chunk)
        text, chunk_finish = _read_chunk(chunk)
        if text:
            reply.produced = reply.produced or bool(text.strip())
            yield text
        reply.finished(chunk_finish)

    async def _close(self, chunks: AsyncIterable[types.GenerateContentResponse]) -> None:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()

    def _end(self, reply: StreamedReply[types.FinishReason]) -> None:
        _check_end(self.name, reply.finish, reply.produced)

    def _finish(self, reason: types.FinishReason | None) -> str | None:
        return _finish(reason)

    def _mapped_errors(self) -> AbstractContextManager[None]:
        return _mapped_errors(self.name)

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def _read_usage(response: types.GenerateContentResponse, report: ReplyReport) -> None:
    """Gemini's ``usage_metadata`` into ``report``: thinking tokens are billed as output."""
    usage = response.usage_metadata
    if usage is None or usage.prompt_token_count is None:
        return
    report.input_tokens = usage.prompt_token_count
    report.output_tokens = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    report.cached_tokens = usage.cached_content_token_count or 0


def _finish(finish: types.FinishReason | None) -> str | None:
    if finish is None:
        return None
    if finish == types.FinishReason.MAX_TOKENS:
        return "length"
    if finish in _WITHHELD_FINISH:
        return "content_filter"
    return "stop"


def _raise_if_blocked(provider: str, response: types.GenerateContentResponse) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise EmptyReply(provider, "blocked", f"prompt blocked: {feedback.block_reason.value}")


def _read_chunk(response: types.GenerateContentResponse) -> tuple[str, types.FinishReason | None]:
    """The text of the first candidate (thoughts excluded) and its finish reason."""
    if not response.candidates:
        return "", None
    candidate = response.candidates[0]
    parts = candidate.content.parts if candidate.content is not None else None
    text = "".join(part.text for part in parts or () if part.text and not part.thought)
    return text, candidate.finish_reason


def _check_end(provider: str, finish: types.FinishReason | None, produced: bool) -> None:
    # Gemini's reasons for stopping beyond done, the limit and a policy (a malformed
    # function call, "other") are no usable reply either.
    if finish is not None and finish not in _USABLE_FINISH and finish not in _WITHHELD_FINISH:
        raise EmptyReply(provider, "unusable", f"finish reason {finish.value}")
    detail = f"finish reason {finish.value}" if finish is not None else None
    check_reply_end(provider, _finish(finish), produced, detail=detail)


@contextmanager
def _mapped_errors(provider: str) -> Iterator[None]:
    """Translate SDK and transport exceptions into `ProviderError`s (cause chained).

    The SDK raises its own `APIError` for HTTP error statuses but lets the HTTP
    client's transport errors through unwrapped, hence both families here.
    """
    try:
        yield
    except errors.APIError as exc:
        raise ProviderUnavailable.for_status(provider, exc.code, str(exc)) from exc
    except (httpx2.TimeoutException, httpx.TimeoutException) as exc:
        raise ProviderTimeout(provider, message=repr(exc)) from exc
    except (httpx2.HTTPError, httpx2.StreamError, httpx.HTTPError, httpx.StreamError) as exc:
        raise ProviderUnavailable(provider, "network_error", repr(exc)) from exc
    except ValueError as exc:
        # A body that is not JSON or does not fit the SDK's models.
        raise ProviderUnavailable(provider, "bad_response", str(exc)) from exc
