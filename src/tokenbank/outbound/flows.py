"""Delivering outbound webhooks: the flows that call the operator's endpoints, so they own
their transactions (an HTTP call never runs inside one).

The mechanism is the inbound inbox's (:mod:`tokenbank.payments.webhooks`), turned round:
a background job (:class:`Deliverer`, run by the app's scheduler) claims due deliveries
with a lease (``SKIP LOCKED`` on PostgreSQL), each claim counting an attempt; it POSTs
each one outside any transaction, then in one transaction records the attempt in the log
and ends its claim — ``delivered`` on a 2xx, else ``failed`` until the next attempt after
:func:`~tokenbank.outbound.service.retry_delay_s`, or ``dead`` once
``OUTBOUND_WEBHOOK_MAX_ATTEMPTS`` are used. A worker killed mid-delivery leaves its claim
to run out (``OUTBOUND_WEBHOOK_CLAIM_LEASE_S``) and the next worker sends it again: the
receiver sees the same event id twice, which is why receivers deduplicate by it. A
delivery claimed more than its attempts allow (its workers died each time) is ``dead``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta

import httpx

from tokenbank import __version__
from tokenbank.background import uncut
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import OUTBOUND_ATTEMPTS
from tokenbank.outbound import repository as repo
from tokenbank.outbound import service
from tokenbank.outbound.errors import WebhookUrlRefused
from tokenbank.outbound.models import DeliveryStatus
from tokenbank.outbound.repository import ClaimedDelivery
from tokenbank.outbound.service import DeliveryView
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

USER_AGENT = f"tokenbank-webhooks/{__version__}"


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client deliveries use: no redirects followed (a redirect could point inside),
    no proxy settings from the environment, the delivery timeout on every phase."""
    return httpx.AsyncClient(
        timeout=settings.outbound_webhook_timeout_s,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


def lease(settings: Settings) -> timedelta:
    """How long a claim lasts: never shorter than an attempt may take (with room to
    record it), or a slow endpoint would see a second worker send the same event."""
    return timedelta(
        seconds=max(
            settings.outbound_webhook_claim_lease_s, settings.outbound_webhook_timeout_s + 30
        )
    )


async def claim_due(db: Database, settings: Settings, limit: int) -> list[ClaimedDelivery]:
    now = utcnow()
    until = now + lease(settings)
    async with db.transaction() as session:
        return await repo.claim_deliveries(
            session, now=now, lease_until=until, token=str(uuid.uuid4()), limit=limit
        )


def _pinned(
    target: service.Target, address: str | None
) -> tuple[httpx.URL, dict[str, str], dict[str, object]]:
    """The request's URL, extra headers and extensions to reach ``target`` at ``address``
    (one it was checked at): the connection goes to that address, while the ``Host``
    header, TLS SNI and the certificate's check keep the endpoint's own name. Nothing is
    resolved again, so the name cannot answer differently in between.

    The connection is not kept for another request: the pool knows it by the address
    alone, and another endpoint's name on the same address must get a TLS session (and
    a certificate check) of its own."""
    url = httpx.URL(target.url)
    if address is None or address == target.host:
        return url, {}, {}
    host = {"Host": url.netloc.decode("ascii"), "Connection": "close"}
    return url.copy_with(host=address), host, {"sni_hostname": target.host}


async def _post(
    client: httpx.AsyncClient,
    settings: Settings,
    delivery: ClaimedDelivery,
    resolve: service.Resolver = service.system_resolver,
) -> tuple[int | None, str | None]:
    """One POST: the endpoint's status code, and why it is not a success (None if it is).
    The response body is never read. It goes to an address the check just approved
    (the next one if that one refuses the connection), never to a second lookup's."""
    try:
        target = await service.check_target(
            delivery.url, local_ok=settings.outbound_webhooks_local_ok, resolve=resolve
        )
        headers = {
            "Content-Type": "application/json",
            service.EVENT_ID_HEADER: delivery.event_id,
            service.SIGNATURE_HEADER: service.signature_header(
                delivery.payload,
                delivery.secret,
                int(time.time()),
                previous=delivery.previous_secret,
            ),
        }
        addresses: tuple[str | None, ...] = target.addresses or (None,)
        async with asyncio.timeout(settings.outbound_webhook_timeout_s):
            for i, address in enumerate(addresses):
                url, host, extensions = _pinned(target, address)
                try:
                    async with client.stream(
                        "POST",
                        url,
                        content=delivery.payload.encode(),
                        headers=headers | host,
                        extensions=extensions,
                    ) as response:
                        code = response.status_code
                    break
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
    except WebhookUrlRefused as exc:
        return None, f"refused: {exc.detail}"
    except (TimeoutError, httpx.TimeoutException):
        return None, f"timed out after {settings.outbound_webhook_timeout_s:g}s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]
    return code, None if 200 <= code < 300 else f"HTTP {code}"


async def deliver_claimed(
    db: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    delivery: ClaimedDelivery,
    resolve: service.Resolver = service.system_resolver,
) -> DeliveryStatus | None:
    """Send a claimed delivery once and record the attempt; where it was left (None when
    another worker had taken it over meanwhile). ``resolve``: how the endpoint's name is
    looked up for the check (the system's resolver; tests give their own)."""
    if not delivery.endpoint_active:
        return await _end(db, delivery, DeliveryStatus.CANCELED, "endpoint disabled or removed")
    if delivery.attempts > settings.outbound_webhook_max_attempts:
        # Only a claim that ran out gets here: its workers died sending it, each time.
        note = f"gave up: its worker stopped during each of {delivery.attempts - 1} attempts"
        return await _end(db, delivery, DeliveryStatus.DEAD, note)
    started, t0 = utcnow(), time.monotonic()
    try:
        code, error = await _post(client, settings, delivery, resolve)
    except asyncio.CancelledError:
        await asyncio.shield(_give_back(db, delivery))
        raise
    duration_ms = int((time.monotonic() - t0) * 1000)
    now = utcnow()
    if error is None:
        status, next_at = DeliveryStatus.DELIVERED, None
    else:
        status, next_at = service.after_failure(settings, delivery, now)
    async with db.transaction() as session:
        await repo.insert_attempt(
            session,
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            started_at=started,
            duration_ms=duration_ms,
            status_code=code,
            error=error,
        )
        ours = await repo.finish_delivery(
            session,
            delivery,
            status=status,
            now=now,
            error=error,
            status_code=code,
            next_attempt_at=next_at,
        )
    OUTBOUND_ATTEMPTS.labels(str(status)).inc()
    level = logging.INFO if status is DeliveryStatus.DELIVERED else logging.WARNING
    log.log(level, "webhook %s (%s) to endpoint %d: %s after attempt %d%s",
            delivery.event_id, delivery.event_type, delivery.endpoint_id, status,
            delivery.attempts, f" ({error})" if error else "")
    return status if ours else None


async def _end(
    db: Database, delivery: ClaimedDelivery, status: DeliveryStatus, note: str
) -> DeliveryStatus | None:
    OUTBOUND_ATTEMPTS.labels(str(status)).inc()
    log.warning("webhook %s to endpoint %d %s: %s",
                delivery.event_id, delivery.endpoint_id, status, note)
    async with db.transaction() as session:
        ours = await repo.finish_delivery(session, delivery, status=status, now=utcnow(),
                                          error=note)
    return status if ours else None


async def _give_back(db: Database, delivery: ClaimedDelivery) -> None:
    """A stopped worker hands the delivery back, due now (rather than at its lease's end)."""
    try:
        async with db.transaction() as session:
            await repo.finish_delivery(
                session, delivery, status=DeliveryStatus.PENDING, now=utcnow(),
                next_attempt_at=utcnow(),
            )
    except Exception:  # its claim runs out instead; another worker takes it then
        log.exception("could not hand webhook delivery %d back", delivery.id)


class Deliverer:
    """The background job that sends due deliveries (one per app process; many processes
    share the work through their claims)."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        resolve: service.Resolver = service.system_resolver,
    ) -> None:
        self.settings = settings
        self.client = client or http_client(settings)
        self.resolve = resolve

    async def drain(self, db: Database) -> int:
        """Send every due delivery, ``OUTBOUND_WEBHOOK_CONCURRENCY`` at a time; returns how
        many were claimed. Stopped while a claim's transaction ends, it waits for it and
        hands what it claimed back (:func:`~tokenbank.background.uncut`), as a delivery
        stopped mid-POST is handed back."""
        total = 0
        while True:
            batch = await uncut(
                claim_due(db, self.settings, self.settings.outbound_webhook_concurrency),
                lambda claimed: asyncio.gather(*(_give_back(db, d) for d in claimed)),
            )
            if not batch:
                return total
            total += len(batch)
            results = await asyncio.gather(
                *(deliver_claimed(db, self.settings, self.client, d, self.resolve) for d in batch),
                return_exceptions=True,
            )
            for d, result in zip(batch, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):  # its claim runs out; retried then
                    log.error("webhook delivery %d failed: %r", d.id, result)

    async def aclose(self) -> None:
        await self.client.aclose()


async def retry_now(db: Database, settings: Settings, delivery_id: int) -> DeliveryView:
    """An operator's retry: the delivery gets a fresh series of attempts and is sent now
    (unless a worker is sending it right now); returns where it stands afterwards."""
    async with db.transaction() as session:
        reset = await service.reset_for_retry(session, delivery_id)
        claimed: list[ClaimedDelivery] = []
        if reset:
            now = utcnow()
            claimed = await repo.claim_deliveries(
                session,
                now=now,
                lease_until=now + lease(settings),
                token=str(uuid.uuid4()),
                delivery_id=delivery_id,
            )
    if claimed:
        async with http_client(settings) as client:
            await deliver_claimed(db, settings, client, claimed[0])
    async with db.transaction() as session:
        return await service.get_delivery(session, delivery_id)
