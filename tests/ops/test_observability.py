"""Request ids, metrics access, body limits and log redaction."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tokenbank.app import create_app
from tokenbank.observability import JsonFormatter, redact, request_id_var

from conftest import make_settings

pytestmark = pytest.mark.anyio


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert len(r.headers["x-request-id"]) >= 8
    r = await client.get("/health", headers={"X-Request-ID": "trace-abc-123"})
    assert r.headers["x-request-id"] == "trace-abc-123"
    r = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert r.headers["x-request-id"] != "bad id\nwith newline"


async def test_oversized_bodies_are_413_before_parsing(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/auth/login",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_metrics_need_the_token_when_one_is_set(db_url: str) -> None:
    app = create_app(make_settings(db_url, metrics_token="metrics-secret-token"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/metrics")).status_code == 403
            bad = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 403
            ok = await c.get("/metrics", headers={"Authorization": "Bearer metrics-secret-token"})
            assert ok.status_code == 200
            assert "tokenbank_request_duration_seconds" in ok.text


def test_logs_are_json_and_never_carry_secrets() -> None:
    formatter = JsonFormatter()
    token = request_id_var.set("req-12345678")
    try:
        record = logging.LogRecord(
            "tokenbank.test",
            logging.INFO,
            __file__,
            1,
            "charging with sk_test_abcDEF123456 secret pi_123_secret_XYZ card 4242 4242 4242 4242 "
            "hook whsec_abcdef0123456789 auth Bearer eyJhbGciOi.abc.def",
            None,
            None,
        )
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-12345678"
    for secret in (
        "sk_test_abcDEF123456",
        "XYZ",
        "4242 4242 4242 4242",
        "whsec_abcdef",
        "eyJhbGciOi",
    ):
        assert secret not in line["msg"]
    assert redact("plain text 12") == "plain text 12"
