"""Fake AI servers speaking OpenAI's and Gemini's wire formats on 127.0.0.1.

The real SDKs talk to these over real HTTP, so the tests cover the SDK calls, the
request shapes and the error mapping end to end. Each server picks its behaviour
from the model name in the request (e.g. model "status-429" answers 429), and
records every request it receives for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# How long a "hanging" server waits before giving up by itself; far beyond every
# client deadline in these tests, so the client's deadline is what ends the call.
HANG_S = 10.0


@dataclass
class Recorded:
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)

    def last_request(self) -> Recorded:
        assert self.requests, "the server received no request"
        return self.requests[-1]


class StreamCut(Exception):
    """Raised inside a streaming body: uvicorn then drops the connection mid-body."""


def reply_for(last_user_text: str) -> str:
    return f"Echo: {last_user_text} (from the fake server)"


def pieces(text: str, count: int = 3) -> list[str]:
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


async def hang_until_disconnected(request: Request) -> Response:
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.02)
    return Response(status_code=504)


async def stall(seconds: float = HANG_S) -> None:
    # Starlette cancels a streaming body when the client goes away (ASGI spec 2.3).
    await asyncio.sleep(seconds)


async def trickle(unit: bytes) -> AsyncIterator[bytes]:
    """Bytes that carry nothing, sent often enough that no read ever times out."""
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        yield unit
        await asyncio.sleep(0.05)


def sse(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


async def record(server: FakeServer, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(await request.body())
    server.requests.append(
        Recorded(request.url.path, request.url.query, dict(request.headers), body)
    )
    return body


# --- OpenAI chat completions -------------------------------------------------------


def openai_completion(model: str, content: str | None, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


def openai_chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_error(status: int) -> JSONResponse:
    kinds = {401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}
    error = {"message": f"fake error {status}", "type": kinds.get(status, "error"), "code": None}
    return JSONResponse({"error": error}, status_code=status)


OPENAI_USAGE = {
    "prompt_tokens": 5,
    "completion_tokens": 5,
    "total_tokens": 10,
    "prompt_tokens_details": {"cached_tokens": 2},
}


async def openai_stream_body(
    model: str, text: str, with_usage: bool = False
) -> AsyncIterator[bytes]:
    yield sse(openai_chunk(model, {"role": "assistant", "content": ""}))
    parts = pieces(text)
    if model == "stream-error-event":
        yield sse(openai_chunk(model, {"content": parts[0]}))
        yield sse({"error": {"message": "overloaded", "type": "server_error"}})
        return
    for index, part in enumerate(parts):
        if model == "stream-stall" and index == 1:
            await stall()
        if model == "stream-break" and index == 2:
            raise StreamCut("connection dropped mid-reply")
        if model == "stream-no-finish" and index == 2:
            return  # the body ends cleanly, mid-reply, without a final chunk or [DONE]
        yield sse(openai_chunk(model, {"content": part}))
    finish = "content_filter" if model == "stream-content-filter" else "stop"
    yield sse(openai_chunk(model, {}, finish))
    if with_usage:
        yield sse({**openai_chunk(model, {}), "choices": [], "usage": OPENAI_USAGE})
    yield sse("[DONE]")


def openai_app(server: FakeServer) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        body = await record(server, request)
        model = body["model"]
        if model.startswith("status-"):
            return openai_error(int(model.removeprefix("status-")))
        if model == "hang":
            return await hang_until_disconnected(request)
        if model == "trickle":
            # Whitespace before a JSON body, or SSE comments (keep-alives) in a stream.
            unit = b": keep-alive\n\n" if body.get("stream") else b" "
            return StreamingResponse(trickle(unit), media_type="application/json")
        if model == "not-json":
            return Response("<html>upstream proxy error</html>", media_type="text/html")
        if model == "no-choices":
            return JSONResponse({**openai_completion(model, None), "choices": []})
        if model == "empty":
            return JSONResponse(openai_completion(model, ""))
        if model == "content-filter":
            return JSONResponse(openai_completion(model, None, finish="content_filter"))
        text = reply_for(body["messages"][-1]["content"])
        if body.get("stream"):
            with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                openai_stream_body(model, text, with_usage), media_type="text/event-stream"
            )
        return JSONResponse(openai_completion(model, text))

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


# --- Gemini generateContent ---------------------------------------------------------


def gemini_response(text: str | None, finish: str | None = "STOP") -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if text is not None:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    if finish is not None:
        candidate["finishReason"] = finish
    response: dict[str, Any] = {"candidates": [candidate], "modelVersion": "fake-gemini"}
    if finish is not None:  # the whole reply's usage comes with its end
        response["usageMetadata"] = GEMINI_USAGE
    return response


GEMINI_USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 4,
    "thoughtsTokenCount": 2,
    "cachedContentTokenCount": 3,
    "totalTokenCount": 13,
}


def gemini_error(status: int) -> JSONResponse:
    names = {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
    error = {"code": status, "message": f"fake error {status}", "status": names.get(status)}
    return JSONResponse({"error": error}, status_code=status)


BLOCKED_PROMPT = {"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "fake-gemini"}
SAFETY_STOP = {
    "candidates": [
        {
            "index": 0,
            "finishReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}],
        }
    ]
}


async def gemini_stream_body(model: str, text: str) -> AsyncIterator[bytes]:
    if model == "stream-prompt-blocked":
        yield sse(BLOCKED_PROMPT)
        return
    parts = pieces(text)
    for index, part in enumerate(parts):
        if model == "stream-stall" and index == 1:
            await stall()
        if model == "stream-break" and index == 2:
            raise StreamCut("connection dropped mid-reply")
        if model == "stream-no-finish" and index == 2:
            return  # the body ends cleanly, mid-reply, without a finish reason
        last = index == len(parts) - 1
        if last and model == "stream-safety":
            yield sse(SAFETY_STOP)
            return
        yield sse(gemini_response(part, "STOP" if last else None))


def gemini_app(server: FakeServer) -> Starlette:
    async def models(request: Request) -> Response:
        body = await record(server, request)
        model, method = request.path_params["target"].rsplit(":", 1)
        if model.startswith("status-"):
            return gemini_error(int(model.removeprefix("status-")))
        if model == "hang":
            return await hang_until_disconnected(request)
        if model == "trickle":
            # Whitespace before a JSON body, or blank lines in a stream.
            unit = b"\n" if method == "streamGenerateContent" else b" "
            return StreamingResponse(trickle(unit), media_type="application/json")
        if model == "not-json":
            return Response("<html>upstream proxy error</html>", media_type="text/html")
        if model == "prompt-blocked":
            return JSONResponse(BLOCKED_PROMPT)
        if model == "safety":
            return JSONResponse(SAFETY_STOP)
        if model == "no-candidates":
            return JSONResponse({"modelVersion": "fake-gemini"})
        if model == "empty":
            return JSONResponse(gemini_response(""))
        if model == "thinking":
            thought = {"text": "The user wants a price; check the docs.", "thought": True}
            answer = gemini_response("One token per reply.")
            answer["candidates"][0]["content"]["parts"].insert(0, thought)
            return JSONResponse(answer)
        text = reply_for(body["contents"][-1]["parts"][0]["text"])
        if method == "streamGenerateContent":
            return StreamingResponse(
                gemini_stream_body(model, text), media_type="text/event-stream"
            )
        return JSONResponse(gemini_response(text))

    return Starlette(routes=[Route("/v1beta/models/{target:path}", models, methods=["POST"])])


# --- running a server in a thread ---------------------------------------------------


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` on a free 127.0.0.1 port in a background thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="critical",
        loop="asyncio",
        http="h11",
        ws="none",
        timeout_keep_alive=75,  # past the SDKs' own 5 s, as real servers
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "fake server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
