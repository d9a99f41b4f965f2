"""The asynchronous client (the same calls as :class:`Tokenbank`, awaited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import httpx

from tokenbank_client._core import Request, Routes, Settings, result, retry_delay
from tokenbank_client._errors import TokenbankError
from tokenbank_client._hold import ActiveHold, release_failed
from tokenbank_client._models import (
    Balance,
    Committed,
    Customer,
    Hold,
    Posted,
    Purchase,
    Released,
    TransactionPage,
)
from tokenbank_client._transport import DEFAULT_MAX_CONNECTIONS, async_http_client


class AsyncTokenbank:
    """A client of tokenbank's ``/api/v1`` for one API key (one per event loop; reuse it)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        http_client: httpx.AsyncClient | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.settings = Settings.resolve(
            api_key, base_url, timeout_s, max_retries, backoff_base_s, backoff_max_s
        )
        self._http = http_client or async_http_client(
            timeout_s=timeout_s, max_connections=max_connections
        )
        self._owns_http = http_client is None

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTokenbank:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _send(self, request: Request) -> dict[str, Any]:
        headers = self.settings.client_headers() | request.headers()
        url = self.settings.base_url + request.path
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | Exception
            try:
                outcome = await self._http.request(
                    request.method, url, json=request.json, params=request.params,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                outcome = exc
            delay = retry_delay(self.settings.retry, attempt, outcome)
            if delay is None:
                return result(outcome)
            await asyncio.sleep(delay)

    async def upsert_customer(
        self, external_id: str, *, email: str | None = None, name: str | None = None
    ) -> Customer:
        """Create the customer for your user id ``external_id`` (once, however many calls
        race), or update its email and name."""
        request = Routes.upsert_customer(external_id, email, name)
        return Customer.from_json(await self._send(request))

    async def balance(self, external_id: str) -> Balance:
        return Balance.from_json(await self._send(Routes.balance(external_id)))

    async def transactions(
        self, external_id: str, *, limit: int | None = None, before: int | None = None
    ) -> TransactionPage:
        request = Routes.transactions(external_id, limit, before)
        return TransactionPage.from_json(await self._send(request))

    async def create_hold(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        ttl_s: int | None = None,
        description: str | None = None,
    ) -> Hold:
        """Set ``amount`` tokens aside (:class:`InsufficientTokens` when not available)."""
        request = Routes.create_hold(external_id, amount, idempotency_key, ttl_s, description)
        return Hold.from_json(await self._send(request))

    async def get_hold(self, hold_id: int) -> Hold:
        return Hold.from_json(await self._send(Routes.get_hold(hold_id)))

    async def commit_hold(
        self, hold_id: int, amount: int | None = None, *, description: str | None = None
    ) -> Committed:
        """Spend ``amount`` of the hold (all of it by default); the rest is released."""
        request = Routes.commit_hold(hold_id, amount, description)
        return Committed.from_json(await self._send(request))

    async def release_hold(self, hold_id: int) -> Released:
        return Released.from_json(await self._send(Routes.release_hold(hold_id)))

    async def charge(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        description: str | None = None,
    ) -> Posted:
        """Spend ``amount`` tokens at once (a hold and its commit in one call)."""
        request = Routes.charge(external_id, amount, idempotency_key, description)
        return Posted.from_json(await self._send(request))

    async def grant(
        self, external_id: str, amount: int, *, reason: str, idempotency_key: str | None = None
    ) -> Posted:
        request = Routes.grant(external_id, amount, reason, idempotency_key)
        return Posted.from_json(await self._send(request))

    async def purchase(
        self, external_id: str, tier: str, *, return_url: str, idempotency_key: str | None = None
    ) -> Purchase:
        """Start buying a pack: send the person to ``hosted_url``; they come back to
        ``return_url`` and the tokens arrive when Stripe confirms the payment."""
        request = Routes.purchase(external_id, tier, return_url, idempotency_key)
        return Purchase.from_json(await self._send(request))

    @asynccontextmanager
    async def hold(
        self,
        external_id: str,
        amount: int,
        *,
        idempotency_key: str | None = None,
        ttl_s: int | None = None,
        description: str | None = None,
    ) -> AsyncIterator[ActiveHold]:
        """Hold ``amount`` tokens for the block: commit on success, release on error.

        Raises :class:`InsufficientTokens` before the block runs when they are not there.
        A cancelled block (a client gone, a timeout) still releases: the release runs
        shielded from the cancellation, then the cancellation goes on.
        """
        held = await self.create_hold(
            external_id, amount, idempotency_key=idempotency_key, ttl_s=ttl_s,
            description=description,
        )
        active = ActiveHold(held)
        try:
            yield active
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                try:
                    active.result = await self.release_hold(active.id)
                except TokenbankError as failed:
                    exc.add_note(release_failed(active, failed))
            raise
        if active.releases:
            active.result = await self.release_hold(active.id)
        else:
            active.result = await self.commit_hold(active.id, active.commit_amount)
