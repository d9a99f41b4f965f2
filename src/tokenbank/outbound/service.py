"""Outbound webhooks: the operator's endpoints, events written to an outbox in the
transaction of the fact they report, and the rules their delivery follows.

Guarantees:

- **An event exists iff its fact committed.** :func:`emit` writes one delivery row per
  subscribed endpoint in the caller's session (never commits): the business change and
  its deliveries commit together or not at all.
- **Signed the way Stripe signs.** Each attempt carries ``Tokenbank-Signature:
  t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the endpoint's secret>``
  and ``Tokenbank-Event-Id``; the body is the same bytes on every attempt.
- **At least once, then dead.** A delivery is retried with exponential backoff and
  jitter (:func:`retry_delay_s`) until the endpoint answers 2xx or
  ``OUTBOUND_WEBHOOK_MAX_ATTEMPTS`` are used up (``dead``; an operator may retry it).
  Receivers deduplicate by the event id.
- **No SSRF.** Outside development an endpoint must be https on a public address
  (:func:`check_url`, at creation and again before every attempt); redirects are not
  followed. An attempt connects to the very address that was checked
  (:func:`check_target`; TLS SNI, certificate and ``Host`` stay the endpoint's name), so
  a name that answers a public address to the check and an internal one a moment later
  (DNS rebinding) cannot steer it inside.

Every function here takes a session (or nothing) and never commits; the delivery, which
calls the endpoint, is in :mod:`tokenbank.outbound.flows`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Unit
from tokenbank.outbound import repository as repo
from tokenbank.outbound.errors import (
    UnknownEventType,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
    WebhookUrlRefused,
)
from tokenbank.outbound.models import ALL_EVENTS, DeliveryStatus, EventType
from tokenbank.outbound.repository import ClaimedDelivery
from tokenbank.types import record_of, utcnow

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Tokenbank-Signature"
EVENT_ID_HEADER = "Tokenbank-Event-Id"
MAX_URL_CHARS = 2048


# --- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    enabled_events: list[str]
    description: str | None
    enabled: bool
    created_at: datetime
    #: The secret's first characters, to recognise it.
    secret_prefix: str
    #: Until when the secret rolled last still signs beside this one (None: it does not).
    previous_secret_expires_at: datetime | None = None


@dataclass(frozen=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret, shown in this answer only."""

    endpoint: EndpointView
    secret: str


@dataclass(frozen=True)
class RolledSecret:
    """An endpoint's new signing secret, shown in this answer only, and until when the
    one it replaces keeps signing beside it."""

    endpoint: EndpointView
    secret: str
    previous_expires_at: datetime


#: How long a rolled secret keeps signing, unless the operator says otherwise, and at most.
ROLL_DEFAULT = timedelta(hours=24)
ROLL_MAX = timedelta(days=7)


def _endpoint_view(row: Any, now: datetime | None = None) -> EndpointView:
    until = row.previous_secret_expires_at
    if until is not None and until <= (now or utcnow()):
        until = None
    return EndpointView(
        id=int(row.id),
        url=row.url,
        enabled_events=row.enabled_events.split(","),
        description=row.description,
        enabled=bool(row.enabled),
        created_at=row.created_at,
        secret_prefix=row.secret[: len(SECRET_PREFIX) + 4],
        previous_secret_expires_at=until,
    )


def parse_events(events: Iterable[str]) -> str:
    """The stored form of an endpoint's events: ``*``, or known types sorted and joined."""
    names = {e.strip() for e in events if e.strip()}
    if not names:
        raise UnknownEventType("Name at least one event type, or * for all of them.")
    if ALL_EVENTS in names:
        return ALL_EVENTS
    known = {t.value for t in EventType}
    unknown = sorted(names - known)
    if unknown:
        raise UnknownEventType(
            f"Unknown event type {unknown[0]!r}; known: {', '.join(sorted(known))}."
        )
    return ",".join(sorted(names))


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


#: ``resolve(host)`` -> the addresses the name has now (raises ``OSError`` if none).
Resolver = Callable[[str], Awaitable[list[str]]]


async def system_resolver(host: str) -> list[str]:
    """The operating system's answer for ``host`` (``getaddrinfo``)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _addresses(host: str, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = await resolve(host)
    except OSError as exc:
        raise WebhookUrlRefused(f"The endpoint's host {host!r} does not resolve.") from exc
    return sorted(set(found))


@dataclass(frozen=True)
class Target:
    """Where an attempt may go: the endpoint's URL and the addresses its host was checked
    at (None in development, where any address is allowed and none is pinned)."""

    url: str
    host: str
    addresses: tuple[str, ...] | None = None


async def check_url(url: str, *, local_ok: bool, resolve: Resolver = system_resolver) -> str:
    """The URL, if events may be sent there; :class:`WebhookUrlRefused` otherwise (see
    :func:`check_target`)."""
    return (await check_target(url, local_ok=local_ok, resolve=resolve)).url


async def check_target(
    url: str, *, local_ok: bool, resolve: Resolver = system_resolver
) -> Target:
    """The URL and the addresses to connect to, if events may be sent there;
    :class:`WebhookUrlRefused` otherwise.

    Outside development (``local_ok`` false): https only, no credentials in it, and every
    address its host resolves to is public (not loopback, private, link-local, shared,
    reserved or multicast). Checked when the endpoint is made and again before each
    attempt (the name may have been pointed elsewhere since); the attempt then connects
    to one of these addresses, never to what the name answers next."""
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS:
        raise WebhookUrlRefused("The endpoint URL is empty or too long.")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        raise WebhookUrlRefused("The endpoint URL is not a valid URL.") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookUrlRefused("The endpoint URL must be an http(s) URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("The endpoint URL must not carry credentials.")
    if local_ok:
        return Target(url, host)
    if parts.scheme != "https":
        raise WebhookUrlRefused("The endpoint URL must use https.")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise WebhookUrlRefused("The endpoint URL names this machine or an internal host.")
    addresses = await _addresses(host, resolve)
    if not addresses or any(_refused_address(a) for a in addresses):
        raise WebhookUrlRefused(
            "The endpoint's host is on a loopback, private or reserved address."
        )
    return Target(url, host, tuple(addresses))


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    *,
    url: str,
    events: Iterable[str],
    description: str | None = None,
    enabled: bool = True,
) -> CreatedEndpoint:
    url = await check_url(url, local_ok=settings.outbound_webhooks_local_ok)
    enabled_events = parse_events(events)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint_id = await repo.insert_endpoint(
        session,
        {
            "url": url,
            "secret": secret,
            "enabled_events": enabled_events,
            "description": (description or "").strip()[:200] or None,
            "enabled": enabled,
            "created_at": utcnow(),
        },
    )
    row = await repo.get_endpoint(session, endpoint_id)
    assert row is not None
    return CreatedEndpoint(_endpoint_view(row), secret)


async def list_endpoints(session: AsyncSession) -> list[EndpointView]:
    return [_endpoint_view(r) for r in await repo.list_endpoints(session)]


async def roll_secret(
    session: AsyncSession, endpoint_id: int, *, expires_in: timedelta = ROLL_DEFAULT
) -> RolledSecret:
    """Give the endpoint a new signing secret, as Stripe rolls one: the current secret
    keeps signing beside the new one — each attempt carries both ``v1=`` signatures —
    for ``expires_in`` (at most :data:`ROLL_MAX`; zero: it stops at once), so receivers
    can move to the new one without refusing a delivery. A secret rolled before and
    still in force stops now: two secrets sign at most."""
    if expires_in < timedelta(0) or expires_in > ROLL_MAX:
        raise ValueError("a rolled secret expires within 7 days")
    now = utcnow()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    until = now + expires_in
    if not await repo.roll_secret(session, endpoint_id, secret, until):
        raise WebhookEndpointNotFound()
    row = await repo.get_endpoint(session, endpoint_id)
    return RolledSecret(_endpoint_view(row, now), secret, until)


async def delete_endpoint(session: AsyncSession, endpoint_id: int) -> None:
    """Stop sending to it at once; deliveries still waiting for it are canceled, and its
    log is kept."""
    if not await repo.delete_endpoint(session, endpoint_id, utcnow()):
        raise WebhookEndpointNotFound()


# --- emitting ----------------------------------------------------------------------------


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def _subscribed(enabled_events: str, event_type: EventType) -> bool:
    return enabled_events == ALL_EVENTS or event_type.value in enabled_events.split(",")


async def emit(
    session: Unit,
    event_type: EventType,
    obj: Mapping[str, Any],
    *,
    user_id: int | None = None,
) -> str | None:
    """Record the event ``event_type`` about ``obj`` for every endpoint subscribed to it,
    in the caller's transaction (so it is sent iff that transaction commits); returns
    the event's id, or None when no endpoint wants it (nothing is written).

    ``obj`` (JSON-serialisable) becomes ``data.object``; with ``user_id`` the event also
    says whose it is: ``data.customer = {user_id, external_id}`` (the host app's own id
    for a service-API customer, else null). The body, like Stripe's:
    ``{id: "evt_...", object: "event", type, created, data: {object, customer?}}``."""
    wanted = [eid for eid, events in await repo.subscribed_endpoints(session)
              if _subscribed(events, event_type)]
    if not wanted:
        return None
    now = utcnow()
    data: dict[str, Any] = {"object": dict(obj)}
    if user_id is not None:
        data["customer"] = {
            "user_id": user_id,
            "external_id": await repo.customer_external_id(session, user_id),
        }
    event_id = new_event_id()
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type.value,
            "created": int(now.timestamp()),
            "data": data,
        },
        separators=(",", ":"),
        default=str,
    )
    await repo.insert_deliveries(
        session,
        [
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": event_type.value,
                "payload": body,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in wanted
        ],
    )
    return event_id


# --- delivering: the rules the worker follows (its flow is in flows.py) -------------------


def signature_header(
    payload: str, secret: str, timestamp: int, *, previous: str | None = None
) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>">``, as Stripe signs
    (the whole ``whsec_...`` string is the key, as in Stripe's libraries). With the
    ``previous`` secret of a roll still in force, a second ``v1=`` signed with it
    follows; a receiver accepts the event if any ``v1`` matches its secret."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if previous is None:
        return f"t={timestamp},v1={digest}"
    old = hmac.new(previous.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest},v1={old}"


def retry_delay_s(
    settings: Settings, attempts: int, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base x 2^(n-1),
    capped, then spread by +-20 % jitter so endpoints coming back are not hit in step."""
    exponent = min(max(attempts - 1, 0), 30)
    delay = min(
        settings.outbound_webhook_backoff_base_s * 2**exponent,
        settings.outbound_webhook_backoff_max_s,
    )
    return float(delay * (0.8 + 0.4 * rand()))


def after_failure(
    settings: Settings,
    delivery: ClaimedDelivery,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> tuple[DeliveryStatus, datetime | None]:
    """``dead`` when its attempts are used up, else ``failed`` until its next attempt."""
    if delivery.attempts >= settings.outbound_webhook_max_attempts:
        return DeliveryStatus.DEAD, None
    return DeliveryStatus.FAILED, now + timedelta(
        seconds=retry_delay_s(settings, delivery.attempts, rand)
    )


# --- the log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: str
    log: list[AttemptView] = field(default_factory=list)


def _delivery_view(row: Any, log: list[AttemptView]) -> DeliveryView:
    return record_of(DeliveryView, row, status=DeliveryStatus(row.status), log=log)


async def _with_logs(session: AsyncSession, rows: list[Any]) -> list[DeliveryView]:
    logs: dict[int, list[AttemptView]] = {}
    for a in await repo.attempts_of(session, [int(r.id) for r in rows]):
        logs.setdefault(int(a.delivery_id), []).append(
            AttemptView(a.attempt, a.started_at, a.duration_ms, a.status_code, a.error)
        )
    return [_delivery_view(r, logs.get(int(r.id), [])) for r in rows]


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: int | None = None,
    status: DeliveryStatus | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[DeliveryView]:
    """Newest first, each with its attempts."""
    rows = await repo.list_deliveries(
        session, endpoint_id=endpoint_id, status=status, limit=limit, before=before
    )
    return await _with_logs(session, rows)


async def get_delivery(session: AsyncSession, delivery_id: int) -> DeliveryView:
    row = await repo.get_delivery(session, delivery_id)
    if row is None:
        raise WebhookDeliveryNotFound()
    return (await _with_logs(session, [row]))[0]


async def reset_for_retry(session: AsyncSession, delivery_id: int) -> bool:
    """Due again now, with a fresh series of attempts; False when a live worker holds it
    (it is being sent right now)."""
    if await repo.get_delivery(session, delivery_id) is None:
        raise WebhookDeliveryNotFound()
    return await repo.reset_for_retry(session, delivery_id, utcnow())
