"""Reconciliation: catch up with Stripe when webhooks were lost, late or refused.

The run itself (it asks Stripe) is :func:`tokenbank.payments.flows.reconcile`; this module
holds what it reports and the pure rules of its events window.

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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tokenbank.observability import RECONCILE_FIXES
from tokenbank.payments.sync import SyncOutcome

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
    #: Subscriptions synced by the reconcilers other domains add (subscriptions), and how
    #: many of them changed our books.
    subscriptions_checked: int = 0
    subscriptions_changed: int = 0

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
        if self.subscriptions_checked:
            out.append(
                f"checked {self.subscriptions_checked} subscription(s): "
                f"{self.subscriptions_changed} changed"
            )
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


def events_window(stored: int | None, since: datetime | None, now_s: int) -> tuple[int, str | None]:
    """Where to start reading Stripe's events (unix seconds), from the stored checkpoint
    (None: never run) and an explicit ``--since``; and a warning when events were missed
    because they are older than Stripe keeps them."""
    oldest_kept = now_s - STRIPE_EVENTS_KEPT_S
    from_s = stored if stored is not None else oldest_kept
    if since is not None:
        from_s = min(from_s, int(since.timestamp()))
    warning = None
    if (
        stored is not None
        and stored < oldest_kept
        and (since is None or since.timestamp() > stored)
    ):
        gap_from = datetime.fromtimestamp(stored, UTC)
        warning = (
            f"events from {gap_from:%Y-%m-%d %H:%M} UTC are older than the 30 days Stripe "
            f"keeps them; run `tokenbank payments reconcile --since {gap_from:%Y-%m-%d}`"
        )
    return max(from_s, oldest_kept), warning


def intent_named(event: dict[str, Any]) -> str | None:
    """The PaymentIntent an event's object names itself (None: ask Stripe about its
    charge, :func:`charge_named`)."""
    obj = (event.get("data") or {}).get("object") or {}
    return _id_of(obj.get("payment_intent"))


def charge_named(event: dict[str, Any]) -> str | None:
    obj = (event.get("data") or {}).get("object") or {}
    charge = obj.get("id") if obj.get("object") == "charge" else obj.get("charge")
    return _id_of(charge)


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
