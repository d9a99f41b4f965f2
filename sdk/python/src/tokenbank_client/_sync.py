"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx

from tokenbank_client._core import Request, Routes, Settings, result, retry_delay
from tokenbank_client._errors import TokenbankError
from tokenbank_client._hold import ActiveHold
from tokenbank_client._models import Balance, Customer, Entry, Hold, Purchase, TransactionPage


class Tokenbank:
    """A client of tokenbank's ``/api/v1`` for one API key (thread-safe; reuse it)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.settings = Settings.resolve(
            api_key, base_url, timeout_s, max_retries, backoff_base_s, backoff_max_s
        )
        self._http = http_client or httpx.Client(timeout=timeout_s)
        self._owns_http = http_client is None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Tokenbank:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, request: Request) -> dict[str, Any]:
        headers = self.settings.client_headers() | request.headers()
        url = self.settings.base_url + request.path
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | Exception
            try:
                outcome = self._http.request(
                    request.method, url, json=request.json, params=request.params,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                outcome = exc
            delay = retry_delay(self.settings.retry, attempt, outcome)
            if delay is None:
                return result(outcome)
            time.sleep(delay)

    def upsert_customer(
        self, external_id: str, *, email: str | None = None, name: str | None = None
    ) -> Customer:
        """Create the customer for your user id ``external_id``, or update it."""
        request = Routes.upsert_customer(external_id, email, name)
        return Customer.from_json(self._send(request))

    def balance(self, external_id: str) -> Balance:
        request = Routes.balance(external_id)
        return Balance.from_json(self._send(request))

    def transactions(
        self, external_id: str, *, limit: int | None = None, before: str | None = None
    ) -> TransactionPage:
        request = Routes.transactions(external_id, limit, before)
        return TransactionPage.from_json(self._send(request))

    def create_hold(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        ttl_s: int | None = None,
    ) -> Hold:
        request = Routes.create_hold(external_id, amount, idempotency_key, ttl_s)
        return Hold.from_json(self._send(request))

    def commit_hold(
        self, hold_id: str, amount: int | None = None, *, idempotency_key: str | None = None
    ) -> Hold:
        """Spend ``amount`` of the hold (all of it by default); the rest is released."""
        request = Routes.commit_hold(hold_id, amount, idempotency_key)
        return Hold.from_json(self._send(request))

    def release_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> Hold:
        request = Routes.release_hold(hold_id, idempotency_key)
        return Hold.from_json(self._send(request))

    def charge(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        description: str | None = None,
    ) -> Entry:
        request = Routes.charge(external_id, amount, idempotency_key, description)
        return Entry.from_json(self._send(request))

    def grant(
        self, external_id: str, amount: int, *, reason: str, idempotency_key: str | None = None
    ) -> Entry:
        request = Routes.grant(external_id, amount, reason, idempotency_key)
        return Entry.from_json(self._send(request))

    def purchase(
        self, external_id: str, tier: str, *, return_url: str, idempotency_key: str | None = None
    ) -> Purchase:
        """Start a purchase: send the person to ``hosted_url``; they come back to
        ``return_url`` and the tokens arrive when Stripe confirms the payment."""
        request = Routes.purchase(external_id, tier, return_url, idempotency_key)
        return Purchase.from_json(self._send(request))

    @contextmanager
    def hold(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        ttl_s: int | None = None,
    ) -> Iterator[ActiveHold]:
        """Hold ``amount`` tokens for the block: commit on success, release on error.

        Raises :class:`InsufficientTokens` before the block runs when they are not there.
        """
        active = ActiveHold(self.create_hold(external_id, amount,
                                             idempotency_key=idempotency_key, ttl_s=ttl_s))
        try:
            yield active
        except BaseException as exc:
            try:
                active.result = self.release_hold(active.id)
            except TokenbankError as release_error:
                exc.add_note(f"releasing hold {active.id} failed ({release_error}); "
                             "it is released when it expires")
            raise
        if active.cancelled:
            active.result = self.release_hold(active.id)
        else:
            active.result = self.commit_hold(active.id, active.commit_amount)
