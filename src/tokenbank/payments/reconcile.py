"""Reconciliation: catch up with Stripe when webhooks were lost, late or refused.

Three lists, and the one sync on each payment they name:

1. the PaymentIntents Stripe created in the window (``RECONCILE_WINDOW_S``, or
   ``--since``) whose metadata says ``token_purchase`` — lost payment webhooks;
2. our own rows from the window whose status can still change;
3. Stripe's events about refunds, disputes and early fraud warnings created since a
   checkpoint stored in the database (``reconcile_checkpoints``), however old the
   purchase they touch — a refund or chargeback on a months-old purchase whose webhooks
   were lost. Stripe keeps events for 30 days: a gap older than that is reported, and
   ``--since`` (list 1 over the older period) repairs it.

Safe to run in many processes at once and as often as you like: the sync's row lock and
the ledger's unique keys make a second run change nothing. The checkpoint only moves
forward, to a little before the run began (events are re-read in that overlap, which is
harmless), and only when every payment the events named was synced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import RECONCILE_FIXES
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import PaymentError, StripeObjectUnusable, StripeUnavailable
from tokenbank.payments.stripe_client import IntentSnapshot, StripeGateway
from tokenbank.payments.sync import SyncOutcome, checks_fraud_warnings, sync_payment
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Every event type that says a payment's money moved after it was paid (Stripe's
#: ``types[]`` takes exact names, at most 20).
CATCH_UP_EVENT_TYPES = (
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refunded",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
)
EVENTS_CHECKPOINT = "stripe_events"
#: How long Stripe keeps events (they cannot be listed after that).
STRIPE_EVENTS_KEPT_S = 30 * 24 * 3600
#: Each run re-reads events from this long before the previous run began, so an event
#: Stripe lists a moment late is still seen.
EVENTS_OVERLAP_S = 300


@dataclass
class ReconcileReport:
    since: datetime
    checked: int = 0
    changes: list[SyncOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: Events read since this time (None when the events were not walked).
    events_since: datetime | None = None
    events_read: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def credited_tokens(self) -> int:
        return sum(o.credited_tokens for o in self.changes)

    @property
    def reversed_tokens(self) -> int:
        return sum(o.reversed_tokens for o in self.changes)

    @property
    def reinstated_tokens(self) -> int:
        return sum(o.reinstated_tokens for o in self.changes)

    @property
    def status_changes(self) -> int:
        return sum(1 for o in self.changes if o.status_before != o.status_after)

    def add(self, outcome: SyncOutcome) -> None:
        self.checked += 1
        if outcome.ignored:
            self.skipped.append((outcome.payment_intent_id, outcome.ignored))
        elif outcome.changed:
            self.changes.append(outcome)
            for kind, count in (
                ("credited", outcome.credited_tokens),
                ("reversed", outcome.reversed_tokens),
                ("reinstated", outcome.reinstated_tokens),
            ):
                if count:
                    RECONCILE_FIXES.labels(kind).inc()

    def lines(self) -> list[str]:
        """One line per change, then a summary (what the CLI prints)."""
        out = [describe(o) for o in self.changes]
        out += [f"skipped {pi}: {reason}" for pi, reason in self.skipped]
        out += [f"error on {pi}: {reason}" for pi, reason in self.errors]
        out += [f"warning: {w}" for w in self.warnings]
        events = (
            f" and {self.events_read} refund/dispute/fraud-warning event(s) since "
            f"{self.events_since:%Y-%m-%d %H:%M:%S} UTC"
            if self.events_since is not None
            else ""
        )
        out.append(
            f"checked {self.checked} payment(s) since {self.since:%Y-%m-%d %H:%M:%S} UTC"
            f"{events}: credited {self.credited_tokens} token(s), reversed "
            f"{self.reversed_tokens}, reinstated {self.reinstated_tokens}, "
            f"{self.status_changes} status change(s)"
            + (", nothing changed" if not self.changes else "")
        )
        return out


def describe(o: SyncOutcome) -> str:
    p = o.payment
    who = f"user {p.user_id} ({p.tier})" if p else "unknown"
    parts = []
    if o.adopted:
        parts.append("recorded (it had no row here)")
    if o.status_before != o.status_after:
        parts.append(f"status {o.status_before or '-'} -> {o.status_after}")
    if o.credited_tokens:
        parts.append(f"credited {o.credited_tokens} tokens")
    if o.reversed_tokens:
        parts.append(f"took back {o.reversed_tokens} tokens")
    if o.reinstated_tokens:
        parts.append(f"gave back {o.reinstated_tokens} tokens")
    if o.refused:
        parts.append(f"refused to credit: {o.refused}")
    return f"{o.payment_intent_id} {who}: " + ", ".join(parts)


async def reconcile(
    db: Database, gateway: StripeGateway, settings: Settings, *, since: datetime | None = None
) -> ReconcileReport:
    started = utcnow()
    start = since or (started - timedelta(seconds=settings.reconcile_window_s))
    report = ReconcileReport(since=start)
    seen: set[str] = set()
    async for snap in gateway.list_intents(created_gte=int(start.timestamp())):
        if not snap.is_token_purchase:
            continue
        seen.add(snap.id)
        await _sync_one(db, gateway, settings, snap.id, report, snapshot=snap)
    async with db.transaction() as session:
        unsettled = await repo.unsettled_intent_ids(session, since=start)
    for pi_id in unsettled:
        if pi_id not in seen:
            seen.add(pi_id)
            await _sync_one(db, gateway, settings, pi_id, report)
    await _catch_up_events(db, gateway, settings, report, seen, started=started, since=since)
    if report.changes or report.errors or report.warnings:
        log.info("reconcile: %s", report.lines()[-1])
    return report


async def _catch_up_events(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    report: ReconcileReport,
    seen: set[str],
    *,
    started: datetime,
    since: datetime | None,
) -> None:
    """Sync every payment Stripe's refund, dispute and fraud-warning events name since the
    checkpoint (the purchase may be of any age), then move the checkpoint forward."""
    now_s = int(started.timestamp())
    oldest_kept = now_s - STRIPE_EVENTS_KEPT_S
    async with db.transaction() as session:
        stored = await repo.checkpoint(session, EVENTS_CHECKPOINT)
    from_s = stored if stored is not None else oldest_kept
    if since is not None:
        from_s = min(from_s, int(since.timestamp()))
    if (
        stored is not None
        and stored < oldest_kept
        and (since is None or since.timestamp() > stored)
    ):
        gap_from = datetime.fromtimestamp(stored, UTC)
        report.warnings.append(
            f"events from {gap_from:%Y-%m-%d %H:%M} UTC are older than the 30 days Stripe "
            f"keeps them; run `tokenbank payments reconcile --since {gap_from:%Y-%m-%d}`"
        )
    from_s = max(from_s, oldest_kept)
    report.events_since = datetime.fromtimestamp(from_s, UTC)

    touched: dict[str, bool] = {}  # intent -> named by an early fraud warning's event
    async for event in gateway.list_events(types=CATCH_UP_EVENT_TYPES, created_gte=from_s):
        report.events_read += 1
        pi_id = await _intent_of(gateway, event, report)
        if pi_id is not None:
            fraud = checks_fraud_warnings(str(event.get("type", "")))
            touched[pi_id] = touched.get(pi_id, False) or fraud
    errors_before = len(report.errors)
    for pi_id, fraud in touched.items():
        if pi_id in seen and not fraud:
            continue  # synced from the first two lists in this run already
        seen.add(pi_id)
        await _sync_one(db, gateway, settings, pi_id, report, check_fraud_warnings=fraud)
    if len(report.errors) == errors_before:
        async with db.transaction() as session:
            await repo.advance_checkpoint(
                session, EVENTS_CHECKPOINT, now_s - EVENTS_OVERLAP_S, utcnow()
            )


async def _intent_of(
    gateway: StripeGateway, event: dict[str, Any], report: ReconcileReport
) -> str | None:
    """The PaymentIntent an event's object belongs to (asking Stripe about its charge when
    the object does not say)."""
    obj = (event.get("data") or {}).get("object") or {}
    pi = _id_of(obj.get("payment_intent"))
    if pi is not None:
        return pi
    charge = obj.get("id") if obj.get("object") == "charge" else obj.get("charge")
    charge_id = _id_of(charge)
    if charge_id is None:
        return None
    try:
        return await gateway.charge_payment_intent(charge_id)
    except StripeObjectUnusable as exc:
        report.skipped.append((charge_id, exc.reason))
        return None


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


async def _sync_one(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    pi_id: str,
    report: ReconcileReport,
    *,
    snapshot: IntentSnapshot | None = None,
    check_fraud_warnings: bool = False,
) -> None:
    try:
        outcome = await sync_payment(
            db,
            gateway,
            settings,
            pi_id,
            snapshot=snapshot,
            check_fraud_warnings=check_fraud_warnings,
        )
    except StripeUnavailable:
        raise  # the whole run fails and is retried; the rest would fail the same way
    except StripeObjectUnusable as exc:  # nothing to sync there, now or ever
        report.skipped.append((pi_id, exc.reason))
        return
    except PaymentError as exc:  # one bad intent must not stop the others
        report.errors.append((pi_id, exc.code))
        return
    report.add(outcome)


async def reconcile_job(db: Database, gateway: StripeGateway, settings: Settings) -> None:
    """The periodic run inside each app process (no-op without Stripe keys)."""
    if gateway.configured:
        await reconcile(db, gateway, settings)
