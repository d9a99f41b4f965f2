"""The schema lists every error code the API answers with, so clients can translate each."""

from __future__ import annotations

import httpx
import pytest

from tokenbank.app import create_app
from tokenbank.config import Settings
from tokenbank.errors import AppError

pytestmark = pytest.mark.anyio


def _schema_codes() -> set[str]:
    schema = create_app(Settings(_env_file=None, app_env="development")).openapi()  # type: ignore[call-arg]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    return set(detail["properties"]["code"]["enum"])


def _app_error_codes() -> set[str]:
    codes: set[str] = set()
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def test_every_domain_error_code_is_in_the_schema() -> None:
    codes = _schema_codes()
    missing = _app_error_codes() - codes
    assert not missing, f"error codes missing from the OpenAPI schema: {sorted(missing)}"
    # The handlers' own codes for framework errors and database failures.
    for code in (
        "validation_error",
        "invalid_input",
        "retry_later",
        "database_unavailable",
        "internal_error",
        "not_found",
        "method_not_allowed",
        "payload_too_large",
    ):
        assert code in codes


async def test_codes_the_api_answers_with_are_listed(client: httpx.AsyncClient) -> None:
    codes = _schema_codes()
    answers = [
        await client.post("/api/auth/login", json={"username": 5}),  # validation_error
        await client.get("/api/no-such-route"),  # not_found
        await client.delete("/api/payment/pricing-tiers"),  # method_not_allowed
        await client.get("/api/payment/user/tokens"),  # not_authenticated
        await client.post("/api/auth/login", json={"username": "nobody", "password": "wrong-pw-1"}),
        await client.post(
            "/api/auth/login",
            content=b"{" + b" " * 2_000_000 + b"}",
            headers={"Content-Type": "application/json"},
        ),
    ]
    seen = {r.json()["error"]["code"] for r in answers}
    assert len(seen) == len(answers), seen
    assert seen <= codes, f"answered with codes the schema does not list: {sorted(seen - codes)}"
