"""Reconciliation: catch up with Stripe when webhooks were lost, late or refused.

Lists the PaymentIntents Stripe created in the window whose metadata says
``token_purchase``, plus our own rows whose status can still change, and runs the one
sync on each. Safe to run in many processes at once and as often as you like: the
sync's row lock and the ledger's unique keys make a second run change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import RECONCILE_FIXES
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import PaymentError, StripeUnavailable
from tokenbank.payments.stripe_client import IntentSnapshot, StripeGateway
from tokenbank.payments.sync import SyncOutcome, sync_payment
from tokenbank.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    since: datetime
    checked: int = 0
    changes: list[SyncOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

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
        out.append(
            f"checked {self.checked} payment(s) since {self.since:%Y-%m-%d %H:%M:%S} UTC: "
            f"credited {self.credited_tokens} token(s), reversed {self.reversed_tokens}, "
            f"reinstated {self.reinstated_tokens}, {self.status_changes} status change(s)"
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
    start = since or (utcnow() - timedelta(seconds=settings.reconcile_window_s))
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
            await _sync_one(db, gateway, settings, pi_id, report)
    if report.changes or report.errors:
        log.info("reconcile: %s", report.lines()[-1])
    return report


async def _sync_one(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    pi_id: str,
    report: ReconcileReport,
    *,
    snapshot: IntentSnapshot | None = None,
) -> None:
    try:
        outcome = await sync_payment(db, gateway, settings, pi_id, snapshot=snapshot)
    except StripeUnavailable:
        raise  # the whole run fails and is retried; the rest would fail the same way
    except PaymentError as exc:  # one bad intent must not stop the others
        report.errors.append((pi_id, exc.code))
        return
    report.add(outcome)


async def reconcile_job(db: Database, gateway: StripeGateway, settings: Settings) -> None:
    """The periodic run inside each app process (no-op without Stripe keys)."""
    if gateway.configured:
        await reconcile(db, gateway, settings)
