"""What the sync and async clients share: the requests, the retry rule, the errors.

Retries: a request is sent again after a connection error, a timeout, a 5xx, a 429 or a
409 ``idempotency_key_in_use`` (the first attempt is still running on the server), up to
``max_retries`` times, with exponential back-off and full jitter (or the server's
``Retry-After``). Every write carries an idempotency key, generated once per call before
the first attempt, so every attempt of one call sends the SAME key: the server applies
the write at most once and answers a retry with the first result.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from tokenbank_client._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    error_for,
    parse_retry_after,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"idempotency_key_in_use"})


def new_idempotency_key() -> str:
    return f"tbc_{uuid.uuid4().hex}"


def segment(value: str | int) -> str:
    """One path segment: an external id may hold any character, '/' included."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    idempotency_key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base_s: float = 0.1
    backoff_max_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Settings:
    base_url: str
    api_key: str
    timeout_s: float
    retry: RetryPolicy

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        max_retries: int,
        backoff_base_s: float,
        backoff_max_s: float,
    ) -> Settings:
        key = api_key or os.environ.get("TOKENBANK_API_KEY")
        if not key:
            raise ValueError("an API key is needed: pass api_key= or set TOKENBANK_API_KEY")
        url = base_url or os.environ.get("TOKENBANK_URL") or DEFAULT_BASE_URL
        policy = RetryPolicy(max_retries, backoff_base_s, backoff_max_s)
        return cls(url.rstrip("/"), key, timeout_s, policy)

    def client_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": "tokenbank-client-python/0.1.0",
            "Accept": "application/json",
        }


def retry_delay(
    policy: RetryPolicy, attempt: int, outcome: httpx.Response | Exception
) -> float | None:
    """The wait before sending again, or None when this outcome is final."""
    if attempt > policy.max_retries:
        return None
    if isinstance(outcome, Exception):
        return policy.delay_s(attempt) if isinstance(outcome, httpx.TransportError) else None
    if outcome.status_code in RETRYABLE_STATUS:
        return policy.delay_s(attempt, parse_retry_after(outcome.headers.get("retry-after")))
    if outcome.status_code == 409 and _code(outcome) in RETRYABLE_CODES:
        return policy.delay_s(attempt)
    return None


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) else None


def result(outcome: httpx.Response | Exception) -> dict[str, Any]:
    """The JSON body of a success, or the typed error to raise."""
    if isinstance(outcome, Exception):
        if isinstance(outcome, httpx.TimeoutException):
            raise APITimeoutError(str(outcome) or "timed out") from outcome
        if isinstance(outcome, httpx.TransportError):
            raise APIConnectionError(str(outcome) or type(outcome).__name__) from outcome
        raise outcome
    try:
        body: Any = outcome.json() if outcome.content else {}
    except ValueError:
        body = None
    if outcome.is_success:
        if not isinstance(body, dict):
            raise APIError(outcome.status_code, "invalid_response", "expected a JSON object")
        return body
    raise error_for(outcome.status_code, body, dict(outcome.headers))


class Routes:
    """Every call of the service API as a :class:`Request` (the contract in one place).

    The key of a write travels in the body where the API names it (holds, charges, grants,
    purchases) and always in the ``Idempotency-Key`` header; commit and release are
    idempotent by the hold's id.
    """

    @staticmethod
    def upsert_customer(external_id: str, email: str | None, name: str | None) -> Request:
        body = _fields(email=email, name=name)
        return Request("PUT", _customer(external_id), body, None, new_idempotency_key())

    @staticmethod
    def balance(external_id: str) -> Request:
        return Request("GET", _customer(external_id, "balance"))

    @staticmethod
    def transactions(external_id: str, limit: int | None, before: int | None) -> Request:
        params = _fields(limit=limit, before=before)
        return Request("GET", _customer(external_id, "transactions"), None, params)

    @staticmethod
    def create_hold(
        external_id: str, amount: int, key: str | None, ttl_s: int | None, description: str | None
    ) -> Request:
        body = _keyed(key, amount=amount, ttl_s=ttl_s, description=description)
        return _write(_customer(external_id, "holds"), body)

    @staticmethod
    def get_hold(hold_id: int) -> Request:
        return Request("GET", f"/api/v1/holds/{segment(hold_id)}")

    @staticmethod
    def commit_hold(hold_id: int, amount: int | None, description: str | None) -> Request:
        body = _fields(amount=amount, description=description)
        return Request("POST", f"/api/v1/holds/{segment(hold_id)}/commit", body)

    @staticmethod
    def release_hold(hold_id: int) -> Request:
        return Request("POST", f"/api/v1/holds/{segment(hold_id)}/release", {})

    @staticmethod
    def charge(
        external_id: str, amount: int, key: str | None, description: str | None
    ) -> Request:
        body = _keyed(key, amount=amount, description=description)
        return _write(_customer(external_id, "charges"), body)

    @staticmethod
    def grant(external_id: str, amount: int, reason: str, key: str | None) -> Request:
        body = _keyed(key, amount=amount, reason=reason)
        return _write(_customer(external_id, "grants"), body)

    @staticmethod
    def purchase(external_id: str, tier: str, return_url: str, key: str | None) -> Request:
        body = _keyed(key, tier=tier, return_url=return_url)
        return _write(_customer(external_id, "purchases"), body)


def _customer(external_id: str, *rest: str) -> str:
    return "/".join(("/api/v1/customers", segment(external_id), *rest))


def _fields(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _keyed(key: str | None, **fields: Any) -> dict[str, Any]:
    """A write's body: its fields (None left out) and the idempotency key, made here once
    per call when the caller gave none, so every attempt of the call sends the same key."""
    return _fields(**fields) | {"idempotency_key": key or new_idempotency_key()}


def _write(path: str, body: dict[str, Any]) -> Request:
    return Request("POST", path, body, None, body["idempotency_key"])
