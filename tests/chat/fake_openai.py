"""A fake OpenAI chat-completions server on 127.0.0.1 whose behaviour a test sets.

The app under test talks to it through the real `openai` SDK (JSON and SSE), so the
charging tests cover the same wire path as production. Every request is recorded, so
a test can prove the provider was (or was not) called.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chat.providers.fake_ai_servers import (
    StreamCut,
    hang_until_disconnected,
    openai_chunk,
    openai_completion,
    openai_error,
    pieces,
    sse,
)

Mode = Literal["reply", "error", "hang", "empty", "break"]


@dataclass(frozen=True)
class Behaviour:
    #: reply: answer `text`; error: HTTP 500; hang: never answer; empty: an empty reply;
    #: break: drop the connection after the first streamed chunk.
    mode: Mode = "reply"
    text: str = "Paris is the capital of France."
    #: Streamed replies arrive in this many chunks.
    chunks: int = 3
    #: Wait before a JSON answer, and between streamed chunks.
    delay_s: float = 0.0
    #: Wait before the first streamed chunk of text, and after the last one (before the
    #: stream's end), so a client can leave at those moments.
    first_delay_s: float = 0.0
    finish_delay_s: float = 0.0
    #: The usage reported (JSON replies, and streams asking for it with
    #: ``stream_options.include_usage``); None reports no usage at all.
    usage: tuple[int, int] | None = (20, 10)
    cached_tokens: int = 0
    #: The finish reason sent at the end ("stop", "length", "content_filter").
    finish: str = "stop"


@dataclass
class FakeOpenAI:
    url: str = ""
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Streams that ended because the client went away before the last chunk.
    abandoned_streams: int = 0

    def set(self, **changes: Any) -> None:
        self.behaviour = replace(Behaviour(), **changes)

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self.requests.clear()
        self.abandoned_streams = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])]
        )

    async def _completions(self, request: Request) -> Response:
        body: dict[str, Any] = json.loads(await request.body())
        self.requests.append(body)
        b, model = self.behaviour, body["model"]
        if b.mode == "error":
            return openai_error(500)
        if b.mode == "hang":
            return await hang_until_disconnected(request)
        if body.get("stream"):
            with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(model, b, with_usage), media_type="text/event-stream"
            )
        await asyncio.sleep(b.delay_s)
        completion = openai_completion(model, "" if b.mode == "empty" else b.text, b.finish)
        completion["usage"] = _usage(b)
        if completion["usage"] is None:
            del completion["usage"]
        return JSONResponse(completion)

    async def _stream(self, model: str, b: Behaviour, with_usage: bool) -> AsyncIterator[bytes]:
        yield sse(openai_chunk(model, {"role": "assistant", "content": ""}))
        parts = [] if b.mode == "empty" else pieces(b.text, b.chunks)
        try:
            for index, part in enumerate(parts):
                await asyncio.sleep(b.delay_s if index else b.first_delay_s)
                if b.mode == "break" and index == 1:
                    raise StreamCut("connection dropped mid-reply")
                yield sse(openai_chunk(model, {"content": part}))
            await asyncio.sleep(b.finish_delay_s)
        except asyncio.CancelledError:
            # Starlette cancels the body when the client disconnects.
            self.abandoned_streams += 1
            raise
        yield sse(openai_chunk(model, {}, b.finish))
        if with_usage and b.usage is not None:
            # OpenAI's last chunk with include_usage: no choices, the whole reply's usage.
            yield sse({**openai_chunk(model, {}), "choices": [], "usage": _usage(b)})
        yield sse("[DONE]")


def _usage(b: Behaviour) -> dict[str, Any] | None:
    if b.usage is None:
        return None
    prompt, completion = b.usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": b.cached_tokens},
    }
