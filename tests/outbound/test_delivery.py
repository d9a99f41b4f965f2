"""Outbound webhooks end to end against a real HTTP receiver, on both databases: the
outbox commits with the fact or not at all, deliveries are signed the way Stripe signs,
retried with backoff through 500s and timeouts, and end ``dead``; workers racing for the
same deliveries send each once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import stripe
from sqlalchemy import func, select, update

from outbound.receiver import STALL, receiver
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.outbound import service
from tokenbank.outbound.flows import Deliverer
from tokenbank.outbound.models import DeliveryStatus, EventType, WebhookDelivery
from tokenbank.types import utcnow
from tokenbank_client import WebhookVerificationError, verify_webhook

from conftest import make_settings
from support import wait_for

pytestmark = pytest.mark.anyio


def fast_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "outbound_webhook_allow_local": True,
        "outbound_webhook_backoff_base_s": 0.05,
        "outbound_webhook_backoff_max_s": 0.2,
        "outbound_webhook_timeout_s": 2.0,
        "outbound_webhook_max_attempts": 5,
    }
    return make_settings(db_url, **(values | overrides))


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Deliverer]:
    deliverer = Deliverer(settings)
    try:
        yield deliverer
    finally:
        await deliverer.aclose()


async def endpoint(db: Database, settings: Settings, url: str, events: list[str]) -> str:
    async with db.transaction() as session:
        made = await service.create_endpoint(session, settings, url=url, events=events)
    return made.secret


async def emit(db: Database, event_type: EventType, obj: dict[str, object]) -> str:
    async with db.transaction() as session:
        event_id = await service.emit(session, event_type, obj)
    assert event_id is not None
    return event_id


async def delivery(db: Database, event_id: str) -> WebhookDelivery:
    async with db.transaction() as session:
        stmt = select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
        return (await session.execute(stmt)).scalar_one()


async def drain_until(
    db: Database, deliverer: Deliverer, event_id: str, status: DeliveryStatus
) -> WebhookDelivery:
    async def reached() -> bool:
        await deliverer.drain(db)
        return (await delivery(db, event_id)).status == status

    await wait_for(reached, timeout_s=20, interval_s=0.02, what=f"delivery {status}")
    return await delivery(db, event_id)


async def test_an_event_exists_iff_its_transaction_commits(db: Database, db_url: str) -> None:
    settings = fast_settings(db_url)
    with receiver(200) as r:
        await endpoint(db, settings, r.url, ["purchase.succeeded"])
        await endpoint(db, settings, r.url + "/all", ["*"])
        await endpoint(db, settings, r.url + "/other", ["balance.low"])

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with db.transaction() as session:
                assert await service.emit(session, EventType.PURCHASE_SUCCEEDED, {"id": 1})
                raise Boom
        async with db.transaction() as session:
            count = await session.scalar(select(func.count()).select_from(WebhookDelivery))
        assert count == 0  # rolled back with the fact: nothing to send

        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 2})
        async with db.transaction() as session:
            rows = (await session.execute(select(WebhookDelivery))).scalars().all()
        # The two endpoints that subscribed, not the one that wants balance.low only.
        assert len(rows) == 2 and {row.event_id for row in rows} == {event_id}

        async with running(settings) as deliverer:
            await deliverer.drain(db)
        assert sorted(rec.path for rec in r.received) == ["/hooks", "/hooks/all"]
        assert r.event_ids() == [event_id, event_id]


async def test_no_endpoint_wants_it_nothing_is_written(db: Database, db_url: str) -> None:
    settings = fast_settings(db_url)
    await endpoint(db, settings, "http://127.0.0.1:9/x", ["balance.low"])
    async with db.transaction() as session:
        assert await service.emit(session, EventType.PURCHASE_SUCCEEDED, {"id": 1}) is None
        count = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 0


async def test_retried_through_500s_then_delivered_signed_like_stripe(
    db: Database, db_url: str
) -> None:
    settings = fast_settings(db_url)
    with receiver(500, 503, 200) as r:
        secret = await endpoint(db, settings, r.url, ["*"])
        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"object": "purchase", "id": 7})
        async with running(settings) as deliverer:
            row = await drain_until(db, deliverer, event_id, DeliveryStatus.DELIVERED)
    assert row.attempts == 3 and row.last_status_code == 200 and row.delivered_at is not None
    assert len(r.received) == 3
    # The same event, byte for byte, on every attempt; each signed afresh.
    assert len({rec.body for rec in r.received}) == 1
    for rec in r.received:
        header = rec.headers["tokenbank-signature"]
        assert rec.headers["tokenbank-event-id"] == event_id
        assert rec.headers["content-type"] == "application/json"
        # Stripe's own library accepts it: the scheme is Stripe's.
        stripe.WebhookSignature.verify_header(rec.body.decode(), header, secret, 300)
        event = verify_webhook(rec.body, header, secret)
        assert event["id"] == event_id and event["type"] == "purchase.succeeded"
        assert event["object"] == "event" and isinstance(event["created"], int)
        assert event["data"]["object"] == {"object": "purchase", "id": 7}
    body, header = r.received[0].body, r.received[0].headers["tokenbank-signature"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, header, "whsec_someone_else")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body.replace(b"purchase", b"purchasE"), header, secret)
    with pytest.raises(WebhookVerificationError):  # replayed an hour later
        verify_webhook(body, header, secret, now=json.loads(body)["created"] + 3600)

    async with db.transaction() as session:
        (view,) = await service.list_deliveries(session)
    assert [a.status_code for a in view.log] == [500, 503, 200]
    assert [a.attempt for a in view.log] == [1, 2, 3]
    assert [a.error for a in view.log] == ["HTTP 500", "HTTP 503", None]
    assert all(a.duration_ms >= 0 for a in view.log)


async def test_a_timeout_is_a_failed_attempt_retried_later(db: Database, db_url: str) -> None:
    settings = fast_settings(
        db_url, outbound_webhook_timeout_s=0.3, outbound_webhook_backoff_base_s=30.0,
        outbound_webhook_backoff_max_s=60.0,
    )
    with receiver(STALL, 200, stall_s=2.0) as r:
        await endpoint(db, settings, r.url, ["*"])
        event_id = await emit(db, EventType.PURCHASE_REFUNDED, {"id": 1})
        async with running(settings) as deliverer:
            assert await deliverer.drain(db) == 1
            row = await delivery(db, event_id)
            assert row.status == DeliveryStatus.FAILED
            assert row.last_error == "timed out after 0.3s" and row.last_status_code is None
            assert row.next_attempt_at is not None
            # Not due for ~30 s (24-36 with jitter): the next drain leaves it alone.
            assert await deliverer.drain(db) == 0
            assert len(r.received) == 1


async def test_dead_after_its_attempts_then_an_operator_retries(
    db: Database, db_url: str
) -> None:
    settings = fast_settings(db_url, outbound_webhook_max_attempts=3)
    with receiver(500) as r:
        await endpoint(db, settings, r.url, ["*"])
        event_id = await emit(db, EventType.BALANCE_LOW, {"id": 1})
        async with running(settings) as deliverer:
            row = await drain_until(db, deliverer, event_id, DeliveryStatus.DEAD)
            assert row.attempts == 3 and row.next_attempt_at is None
            assert await deliverer.drain(db) == 0  # dead stays dead
        assert len(r.received) == 3
        r.answer(204)
        from tokenbank.outbound.flows import retry_now

        view = await retry_now(db, settings, row.id)
    assert view.status == DeliveryStatus.DELIVERED and view.attempts == 1
    assert [a.status_code for a in view.log] == [500, 500, 500, 204]
    assert r.event_ids() == [event_id] * 4


async def test_workers_racing_send_each_delivery_once(db: Database, db_url: str) -> None:
    settings = fast_settings(db_url, outbound_webhook_concurrency=3)
    with receiver(200) as r:
        await endpoint(db, settings, r.url, ["*"])
        ids = [await emit(db, EventType.TOPUP_SUCCEEDED, {"n": n}) for n in range(30)]
        deliverers = [Deliverer(settings) for _ in range(4)]
        try:
            await asyncio.gather(*(d.drain(db) for d in deliverers))
        finally:
            for d in deliverers:
                await d.aclose()
    assert sorted(r.event_ids()) == sorted(ids)
    async with db.transaction() as session:
        statuses = (await session.execute(select(WebhookDelivery.status))).scalars().all()
    assert set(statuses) == {DeliveryStatus.DELIVERED}


async def test_a_removed_endpoint_gets_nothing_more(db: Database, db_url: str) -> None:
    settings = fast_settings(db_url)
    with receiver(200) as r:
        async with db.transaction() as session:
            made = await service.create_endpoint(session, settings, url=r.url, events=["*"])
        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        async with db.transaction() as session:
            await service.delete_endpoint(session, made.endpoint.id)
            assert await service.emit(session, EventType.PURCHASE_SUCCEEDED, {"id": 2}) is None
        async with running(settings) as deliverer:
            assert await deliverer.drain(db) == 0
        assert r.received == []
        row = await delivery(db, event_id)
        assert row.status == DeliveryStatus.CANCELED


async def test_a_crashed_workers_claim_runs_out_and_another_sends_it(
    db: Database, db_url: str
) -> None:
    settings = fast_settings(db_url)
    with receiver(200) as r:
        await endpoint(db, settings, r.url, ["*"])
        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        from tokenbank.outbound.flows import claim_due

        (claimed,) = await claim_due(db, settings, 1)  # ...and the worker dies here
        async with running(settings) as deliverer:
            assert await deliverer.drain(db) == 0  # its lease still holds
            async with db.transaction() as session:  # the lease's time passes
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == claimed.id)
                    .values(claimed_until=utcnow() - timedelta(seconds=1))
                )
            row = await drain_until(db, deliverer, event_id, DeliveryStatus.DELIVERED)
    assert row.attempts == 2 and r.event_ids() == [event_id]
    assert claimed.attempts == 1


async def test_a_stopped_worker_hands_its_delivery_back(db: Database, db_url: str) -> None:
    settings = fast_settings(db_url, outbound_webhook_timeout_s=10.0)
    with receiver(STALL, 200, stall_s=5.0) as r:
        await endpoint(db, settings, r.url, ["*"])
        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        async with running(settings) as deliverer:
            task = asyncio.ensure_future(deliverer.drain(db))

            async def posted() -> bool:
                return len(r.received) == 1

            await wait_for(posted, what="the POST to reach the receiver")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            row = await delivery(db, event_id)
            # Due again at once, not left to its lease; the cut attempt is not logged.
            assert row.status == DeliveryStatus.PENDING and row.claim_token is None
            row = await drain_until(db, deliverer, event_id, DeliveryStatus.DELIVERED)
    assert row.attempts == 2 and r.event_ids() == [event_id, event_id]


async def test_an_address_that_became_internal_is_refused_before_sending(
    db: Database, db_url: str
) -> None:
    # Added while local addresses were allowed (or its name pointed elsewhere then):
    # each attempt checks again, and nothing is sent.
    with receiver(200) as r:
        await endpoint(db, fast_settings(db_url), r.url.replace("http:", "https:"), ["*"])
        event_id = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        strict = fast_settings(db_url, outbound_webhook_allow_local=False)
        async with running(strict) as deliverer:
            assert await deliverer.drain(db) == 1
        assert r.received == []
    row = await delivery(db, event_id)
    assert row.status == DeliveryStatus.FAILED
    assert row.last_error is not None and row.last_error.startswith("refused:")


class Rebinding:
    """A name server for ``hooks.example.com`` that answers a public address to the first
    lookup and loopback to every later one (DNS rebinding)."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        return ["93.184.216.34"] if len(self.lookups) == 1 else ["127.0.0.1"]


async def test_an_attempt_connects_to_the_address_checked_and_a_rebound_name_is_refused(
    db: Database, db_url: str
) -> None:
    import httpx

    sent: list[httpx.Request] = []

    def endpoint_server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    url = "https://hooks.example.com:8443/hooks?x=1"
    await endpoint(db, fast_settings(db_url), url, ["*"])  # added in development
    strict = fast_settings(db_url, outbound_webhook_allow_local=False)
    dns = Rebinding()
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint_server))
    deliverer = Deliverer(strict, client, resolve=dns)
    try:
        first = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        assert await deliverer.drain(db) == 1
        # One lookup, for the check; the request goes to the address it approved, under
        # the endpoint's own name (Host, TLS SNI and the certificate's check).
        assert dns.lookups == ["hooks.example.com"]
        (request,) = sent
        assert str(request.url) == "https://93.184.216.34:8443/hooks?x=1"
        assert request.headers["host"] == "hooks.example.com:8443"
        assert request.extensions["sni_hostname"] == "hooks.example.com"
        assert (await delivery(db, first)).status == DeliveryStatus.DELIVERED

        # The name now answers loopback: refused before anything is sent.
        second = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 2})
        assert await deliverer.drain(db) == 1
        assert len(sent) == 1
        row = await delivery(db, second)
        assert row.status == DeliveryStatus.FAILED
        assert row.last_error is not None and row.last_error.startswith("refused:")
    finally:
        await deliverer.aclose()


async def test_a_pinned_request_reaches_the_checked_address_without_a_second_lookup() -> None:
    """Through the real HTTP client: the name does not resolve at all (``.invalid``), so
    the request can only arrive by the checked address, and arrives under the name."""
    from tokenbank.outbound.flows import _pinned, http_client

    with receiver(200) as r:
        port = r.url.split(":")[2].split("/")[0]
        target = service.Target(f"http://hooks.invalid:{port}/hooks", "hooks.invalid",
                                ("127.0.0.1",))
        url, headers, extensions = _pinned(target, "127.0.0.1")
        async with http_client(fast_settings("sqlite://")) as client:
            response = await client.post(url, content=b"{}", headers=headers,
                                         extensions=extensions)
        assert response.status_code == 200
        (got,) = r.received
        assert got.headers["host"] == f"hooks.invalid:{port}"
        assert got.headers["connection"] == "close"


async def test_a_rolled_secret_signs_beside_the_new_one_until_it_expires(
    db: Database, db_url: str
) -> None:
    settings = fast_settings(db_url)
    with receiver(200) as r:
        old = await endpoint(db, settings, r.url, ["*"])
        async with db.transaction() as session:
            (listed,) = await service.list_endpoints(session)
            rolled = await service.roll_secret(session, listed.id)
        new = rolled.secret
        assert new != old and new.startswith("whsec_")
        assert rolled.endpoint.secret_prefix == new[:10]
        hours = (rolled.previous_expires_at - utcnow()).total_seconds() / 3600
        assert 23.9 < hours <= 24  # the default: a day
        assert rolled.endpoint.previous_secret_expires_at == rolled.previous_expires_at

        during = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        async with running(settings) as deliverer:
            await drain_until(db, deliverer, during, DeliveryStatus.DELIVERED)
        rec = r.received[-1]
        header = rec.headers["tokenbank-signature"]
        assert header.count("v1=") == 2
        # A receiver that has the new secret, and one that still has the old one, both
        # accept it (the SDK and Stripe's own library alike).
        for secret in (new, old):
            assert verify_webhook(rec.body, header, secret)["id"] == during
            stripe.WebhookSignature.verify_header(rec.body.decode(), header, secret, 300)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(rec.body, header, "whsec_someone_else")

        # Rolled again with no overlap: only the newest secret signs from now on.
        async with db.transaction() as session:
            again = await service.roll_secret(session, listed.id, expires_in=timedelta(0))
        assert again.endpoint.previous_secret_expires_at is None
        after = await emit(db, EventType.PURCHASE_SUCCEEDED, {"id": 2})
        async with running(settings) as deliverer:
            await drain_until(db, deliverer, after, DeliveryStatus.DELIVERED)
        rec = r.received[-1]
        header = rec.headers["tokenbank-signature"]
        assert header.count("v1=") == 1
        assert verify_webhook(rec.body, header, again.secret)["id"] == after
        for stale in (new, old):
            with pytest.raises(WebhookVerificationError):
                verify_webhook(rec.body, header, stale)

    with pytest.raises(ValueError):
        async with db.transaction() as session:
            await service.roll_secret(session, listed.id, expires_in=timedelta(days=8))
    from tokenbank.outbound.errors import WebhookEndpointNotFound

    with pytest.raises(WebhookEndpointNotFound):
        async with db.transaction() as session:
            await service.roll_secret(session, 10**9)
