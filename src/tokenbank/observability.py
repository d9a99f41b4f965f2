"""Structured JSON logs with request ids, and Prometheus metrics.

Logs never carry secrets or card data: the formatter writes only the message, the
logger, the level and the context fields bound here (request id, user id, PaymentIntent
id), and :func:`redact` scrubs anything that looks like a key, a client secret or a
card number from messages.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)
payment_intent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "payment_intent_id", default=None
)

P = ParamSpec("P")
R = TypeVar("R")


def logs_payment_intent(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Every log line written while ``fn`` runs carries its ``payment_intent_id`` argument."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        value = signature.bind_partial(*args, **kwargs).arguments.get("payment_intent_id")
        token = payment_intent_var.set(value if isinstance(value, str) else None)
        try:
            return await fn(*args, **kwargs)
        finally:
            payment_intent_var.reset(token)

    return wrapper


_SECRET_PATTERNS = [
    (re.compile(r"\b(sk|rk|pk)_(test|live)_[0-9A-Za-z_]+"), r"\1_\2_[redacted]"),
    (re.compile(r"\bwhsec_[0-9A-Za-z_]+"), "whsec_[redacted]"),
    (re.compile(r"\b(pi_[0-9A-Za-z]+)_secret_[0-9A-Za-z]+"), r"\1_secret_[redacted]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[card-redacted]"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._-]+"), r"\1[redacted]"),
    (re.compile(r'(?i)("?password"?\s*[:=]\s*)"[^"]*"'), r'\1"[redacted]"'),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, var in (
            ("request_id", request_id_var),
            ("user_id", user_id_var),
            ("payment_intent_id", payment_intent_var),
        ):
            value = var.get()
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- metrics ---------------------------------------------------------------------------

registry = CollectorRegistry(auto_describe=True)

TOKENS_PURCHASED = Counter(
    "tokenbank_tokens_purchased", "Tokens credited by purchases.", registry=registry
)
PURCHASES = Counter("tokenbank_purchases", "Purchases credited.", registry=registry)
ALLOTMENTS = Counter(
    "tokenbank_allotments", "Subscription invoices whose allotment was granted.", registry=registry
)
TOKENS_ALLOTTED = Counter(
    "tokenbank_tokens_allotted", "Tokens granted by paid subscription invoices.", registry=registry
)
TOKENS_SPENT = Counter(
    "tokenbank_tokens_spent", "Tokens deducted for AI replies.", registry=registry
)
REPLIES_CHARGED = Counter("tokenbank_replies_charged", "AI replies charged.", registry=registry)
REPLIES_INTERRUPTED = Counter(
    "tokenbank_replies_interrupted",
    "Replies cut short after some text was sent, charged and saved as far as they got.",
    registry=registry,
)
INSUFFICIENT = Counter(
    "tokenbank_insufficient_balance_refusals",
    "Requests refused for lack of tokens.",
    registry=registry,
)
AI_FAILURES = Counter(
    "tokenbank_ai_failures",
    "Provider failures (nothing charged).",
    ["reason"],
    registry=registry,
)
WEBHOOK_EVENTS = Counter(
    "tokenbank_webhook_events", "Stripe webhook events.", ["type", "outcome"], registry=registry
)
OUTBOUND_ATTEMPTS = Counter(
    "tokenbank_outbound_webhook_attempts",
    "Attempts to deliver an event to an operator's endpoint, by where they left it.",
    ["outcome"],
    registry=registry,
)
RECONCILE_FIXES = Counter(
    "tokenbank_reconcile_fixes", "Changes made by reconciliation.", ["kind"], registry=registry
)
UNITS_OF_WORK = Counter(
    "tokenbank_units_of_work",
    "Hot-path units of work committed, by kind: `driver` (PostgreSQL's asyncpg unit,"
    " SQLite's sqlite3 unit) or `session` (an in-memory SQLite database). Each runs once;"
    " there is no second path.",
    ["path"],
    registry=registry,
)
RATE_LIMIT_STORE_ERRORS = Counter(
    "tokenbank_rate_limit_redis_errors",
    "Rate-limit hits Redis failed to count (each one was counted in the database instead).",
    registry=registry,
)
REQUEST_LATENCY = Histogram(
    "tokenbank_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=registry,
)


class RequestContext:
    """Pure ASGI: binds a request id (or takes a sane incoming ``X-Request-ID``), echoes it,
    and records latency by route template (never by raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        user_token = user_id_var.set(None)
        pi_token = payment_intent_var.set(None)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_LATENCY.labels(scope.get("method", ""), template, str(status)).observe(
                time.perf_counter() - started
            )
            request_id_var.reset(token)
            user_id_var.reset(user_token)
            payment_intent_var.reset(pi_token)


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before reading them all.

    A declared ``Content-Length`` is checked up front; a chunked body is counted as it
    arrives, and the moment it passes the limit the 413 is sent from here and the app sees
    the client as gone (whatever it answers then is dropped), so no body parser can turn
    the refusal into another status.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_413(send, self.max_bytes)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await _send_413(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _send_413(send: Send, max_bytes: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"Request bodies are limited to {max_bytes} bytes.",
                "max_bytes": max_bytes,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
