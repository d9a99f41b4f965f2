"""The sync's rules applied to Stripe states directly: rounding, order, stale reads."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tokenbank.auth import service as auth
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenTransaction
from tokenbank.payments.flows import sync_payment
from tokenbank.payments.models import Payment
from tokenbank.payments.stripe_client import (
    DisputeView,
    IntentSnapshot,
    RefundView,
    StripeGateway,
    dispute_view,
)
from tokenbank.payments.sync import SyncOutcome, apply_snapshot, reversal_target

# --- the reversal arithmetic ------------------------------------------------------------


@given(
    tokens=st.integers(1, 10**6),
    amount=st.integers(1, 10**7),
    fraction=st.floats(0, 1),
)
def test_the_reversal_never_leaves_a_refunded_token_and_takes_no_more(
    tokens: int, amount: int, fraction: float
) -> None:
    returned = round(amount * fraction)

    target = reversal_target(tokens=tokens, amount_cents=amount, returned_cents=returned)

    assert 0 <= target <= tokens
    assert target * amount >= tokens * returned  # the customer keeps nothing refunded
    assert target == 0 or (target - 1) * amount < tokens * returned  # and loses no more


@given(tokens=st.integers(1, 10**6), amount=st.integers(1, 10**7), a=st.floats(0, 1),
       b=st.floats(0, 1))
def test_more_money_back_never_means_fewer_tokens_back(
    tokens: int, amount: int, a: float, b: float
) -> None:
    low, high = sorted((round(amount * a), round(amount * b)))

    def target(returned: int) -> int:
        return reversal_target(tokens=tokens, amount_cents=amount, returned_cents=returned)

    assert target(low) <= target(high)


@pytest.mark.parametrize(
    ("status", "amounts", "taken", "ours"),
    [
        ("needs_response", [], 0, "open"),
        ("needs_response", [-2000], 2000, "funds_withdrawn"),
        ("under_review", [-2000], 2000, "funds_withdrawn"),
        ("appeal_needs_response", [-2000], 2000, "funds_withdrawn"),
        ("appeal_under_review", [-2000], 2000, "funds_withdrawn"),
        ("won", [-2000, 2000], 0, "won"),
        ("lost", [-2000], 2000, "lost"),
        ("warning_needs_response", [], 0, "inquiry"),
        ("warning_under_review", [], 0, "inquiry"),
        ("warning_closed", [], 0, "closed"),
        ("prevented", [], 0, "closed"),
        # A status Stripe adds later: its money decides, it is never taken for "closed".
        ("brand_new_status", [-2000], 2000, "funds_withdrawn"),
        ("brand_new_status", [], 0, "unknown"),
        # Funds reinstated in part: only what is still withdrawn counts.
        ("under_review", [-2000, 500], 1500, "funds_withdrawn"),
    ],
)
def test_disputes_are_judged_by_where_the_money_is(
    status: str, amounts: list[int], taken: int, ours: str
) -> None:
    dispute: dict[str, Any] = {"id": "dp_1", "status": status, "amount": 2000,
                               "balance_transactions": [{"amount": a} for a in amounts]}

    view = dispute_view(dispute)

    assert (view.taken_cents, view.state) == (taken, ours)


def test_a_partial_dispute_in_another_settlement_currency_takes_its_share() -> None:
    # $20 disputed, settled in a currency where it was 1850 units; 925 of them back.
    view = DisputeView("dp_1", "under_review", amount=2000, withdrawn=1850, reinstated=925)

    assert view.taken_cents == 1000


@pytest.mark.parametrize(
    ("refunds", "returned"),
    [
        ([("succeeded", 500)], 500),
        ([("pending", 500)], 500),
        ([("requires_action", 500)], 500),
        ([("failed", 500)], 0),
        ([("canceled", 500)], 0),
        ([("succeeded", 500), ("failed", 700), ("pending", 300)], 800),
    ],
)
def test_refunds_count_unless_they_failed_or_were_canceled(
    refunds: list[tuple[str, int]], returned: int
) -> None:
    snap = paid(1, refunds=tuple(RefundView(f"re_{i}", a, st_) for i, (st_, a) in
                                 enumerate(refunds)))

    assert snap.returned_cents == returned


def test_several_disputes_add_up_and_never_exceed_the_payment() -> None:
    inquiry = DisputeView("dp_1", "warning_closed", amount=2000)
    chargeback = DisputeView("dp_2", "lost", amount=2000, withdrawn=2000)
    snap = paid(1, disputes=(inquiry, chargeback),
                refunds=(RefundView("re_1", 500, "succeeded"),))

    assert (snap.returned_cents, snap.dispute_state) == (2000, "lost")


# --- stale and out-of-order states against a real database ------------------------------


async def new_user(db: Database) -> int:
    async with db.transaction() as session:
        user = await auth.register(
            session, username=f"u{uuid.uuid4().hex[:10]}", email=f"{uuid.uuid4().hex}@example.com",
            password="s3cret-pass", signup_bonus_tokens=0,
        )
        return user.id


def paid(user_id: int, **changes: Any) -> IntentSnapshot:
    base = IntentSnapshot(
        id=f"pi_{uuid.uuid4().hex[:24]}", status="succeeded", amount=2000, amount_received=2000,
        currency="usd", created=0, charge_id="ch_1",
        metadata={"user_id": str(user_id), "tier": "standard", "tokens": "500",
                  "type": "token_purchase"},
    )
    return replace(base, **changes)


async def apply(db: Database, settings: Settings, snap: IntentSnapshot) -> SyncOutcome:
    async with db.transaction() as session:
        return await apply_snapshot(session, settings, snap)


async def entries(db: Database, pi_id: str) -> list[tuple[str, int]]:
    async with db.transaction() as session:
        rows = (await session.execute(
            select(TokenTransaction.transaction_type, TokenTransaction.amount)
            .where(TokenTransaction.stripe_payment_intent_id == pi_id)
            .order_by(TokenTransaction.id)
        )).all()
    return [(str(t), int(a)) for t, a in rows]


async def balance(db: Database, user_id: int) -> int:
    async with db.transaction() as session:
        return (await ledger.balance(session, user_id)).balance


async def check(db: Database) -> None:
    async with db.transaction() as session:
        assert await ledger.check(session) == []


def withdrawn(status: str = "under_review", *, reinstated: bool = False) -> DisputeView:
    return DisputeView("dp_1", status, amount=2000, withdrawn=2000,
                       reinstated=2000 if reinstated else 0)


def refunded(*refunds: tuple[str, int]) -> tuple[RefundView, ...]:
    return tuple(RefundView(f"re_{i}", amount, status) for i, (status, amount) in
                 enumerate(refunds))


def later(snap: IntentSnapshot, **changes: Any) -> IntentSnapshot:
    """The same intent read again, after ``snap`` was."""
    return replace(snap, read_at=snap.read_at + timedelta(seconds=1), **changes)


@pytest.mark.anyio
async def test_a_stale_read_never_moves_the_money(db: Database, settings: Settings) -> None:
    uid = await new_user(db)
    now = paid(uid, refunds=refunded(("succeeded", 1000)))
    first = await apply(db, settings, now)
    assert (first.adopted, first.credited_tokens, first.reversed_tokens) == (True, 500, 250)

    older = replace(now, read_at=now.read_at - timedelta(seconds=5))
    stale = await apply(db, settings, replace(older, refunds=refunded(("succeeded", 500))))
    oldest = await apply(db, settings, replace(older, refunds=()))

    assert not stale.changed and not oldest.changed
    assert oldest.payment is not None and oldest.payment.reversed_tokens == 250
    assert await entries(db, now.id) == [("purchase", 500), ("purchase_reversal", -250)]
    await check(db)


@pytest.mark.anyio
async def test_a_refund_that_fails_after_it_succeeded_gives_the_tokens_back_once(
    db: Database, settings: Settings
) -> None:
    uid = await new_user(db)
    snap = paid(uid, refunds=refunded(("succeeded", 2000)))
    await apply(db, settings, snap)
    failed = later(snap, refunds=refunded(("failed", 2000)))

    first = await apply(db, settings, failed)
    again = await apply(db, settings, later(failed))

    assert (first.reinstated_tokens, again.changed) == (500, False)
    assert await entries(db, snap.id) == [
        ("purchase", 500), ("purchase_reversal", -500), ("purchase_reinstatement", 500)]
    assert await balance(db, uid) == 500
    await check(db)


@pytest.mark.anyio
async def test_a_final_status_stays_final(db: Database, settings: Settings) -> None:
    uid = await new_user(db)
    snap = paid(uid, disputes=(withdrawn(),))
    await apply(db, settings, snap)
    won = await apply(db, settings, later(snap, disputes=(withdrawn("won", reinstated=True),)))
    assert won.reinstated_tokens == 500

    unpaid = await apply(db, settings, replace(
        snap, read_at=snap.read_at + timedelta(seconds=2), status="requires_payment_method",
        disputes=(withdrawn("won", reinstated=True),)))

    assert not unpaid.changed
    assert unpaid.payment is not None
    assert (unpaid.payment.status, unpaid.payment.dispute_status) == ("succeeded", "won")
    assert await balance(db, uid) == 500
    await check(db)


@pytest.mark.anyio
async def test_the_same_reversal_amount_twice_is_two_entries_when_it_happened_twice(
    db: Database, settings: Settings
) -> None:
    """Dispute withdrawn (−500), won (+500), then a full refund (−500 again): the second
    −500 is a new fact, not a replay of the first."""
    uid = await new_user(db)
    snap = paid(uid, disputes=(withdrawn(),))
    await apply(db, settings, snap)
    won = later(snap, disputes=(withdrawn("won", reinstated=True),))
    await apply(db, settings, won)

    refund = await apply(db, settings, later(won, refunds=refunded(("succeeded", 2000))))

    assert refund.reversed_tokens == 500
    assert await entries(db, snap.id) == [
        ("purchase", 500), ("purchase_reversal", -500), ("purchase_reinstatement", 500),
        ("purchase_reversal", -500)]
    assert await balance(db, uid) == 0
    await check(db)


@pytest.mark.anyio
async def test_a_refund_seen_before_the_credit_is_credited_and_reversed_together(
    db: Database, settings: Settings
) -> None:
    uid = await new_user(db)

    outcome = await apply(db, settings, paid(uid, refunds=refunded(("succeeded", 2000))))

    assert (outcome.credited_tokens, outcome.reversed_tokens) == (500, 500)
    assert await balance(db, uid) == 0
    await check(db)


@pytest.mark.anyio
async def test_metadata_edited_after_the_credit_still_lets_the_refund_take_tokens_back(
    db: Database, settings: Settings
) -> None:
    uid = await new_user(db)
    snap = paid(uid)
    await apply(db, settings, snap)
    edited = later(snap, metadata=dict(snap.metadata, user_id="999999", tokens="1"),
                   refunds=refunded(("succeeded", 2000)))

    outcome = await apply(db, settings, edited)

    assert outcome.reversed_tokens == 500
    assert outcome.payment is not None
    assert outcome.payment.stripe_mismatch == "metadata_mismatch"
    assert await balance(db, uid) == 0
    await check(db)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("column", "value"),
    [("status", "paid"), ("dispute_status", "closed_ish"), ("stripe_mismatch", "other")],
)
async def test_the_database_refuses_a_status_that_is_not_in_its_enum(
    db: Database, column: str, value: str
) -> None:
    from sqlalchemy.exc import IntegrityError

    from tokenbank.payments.models import Payment

    uid = await new_user(db)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            values: dict[str, Any] = {"status": "created", column: value}
            session.add(Payment(user_id=uid, tier="starter", tokens=100, amount_cents=500,
                                currency="usd", **values))


# --- the common case on the driver (sync.apply_paid) -----------------------------------


async def sync(db: Database, settings: Settings, snap: IntentSnapshot) -> SyncOutcome:
    """The one sync with Stripe's state given (no Stripe call): a paid purchase's first
    credit runs as a driver unit there."""
    return await sync_payment(db, cast(StripeGateway, None), settings, snap.id, snapshot=snap)


def comparable(outcome: SyncOutcome) -> tuple[Any, ...]:
    p = outcome.payment
    assert p is not None
    return (outcome.status_before, outcome.credited_tokens, outcome.changed, p.status,
            p.tokens_credited, p.reversed_tokens, p.amount_refunded_cents, p.dispute_status,
            p.last_error_code, p.stripe_mismatch)


@pytest.mark.anyio
async def test_a_first_credit_on_the_driver_leaves_what_the_session_path_leaves(
    db: Database, settings: Settings
) -> None:
    uids = [await new_user(db), await new_user(db)]
    snaps = [paid(uid, status="processing") for uid in uids]
    for snap in snaps:  # our rows, not yet paid
        await apply(db, settings, snap)

    on_driver = await sync(db, settings, later(snaps[0], status="succeeded"))
    in_session = await apply(db, settings, later(snaps[1], status="succeeded"))

    assert comparable(on_driver) == comparable(in_session)
    assert comparable(on_driver)[:5] == ("processing", 500, True, "succeeded", 500)
    for uid, snap in zip(uids, snaps, strict=True):
        assert await entries(db, snap.id) == [("purchase", 500)]
        assert await balance(db, uid) == 500
    async with db.transaction() as session:
        rows = (await session.execute(
            select(Payment.version, Payment.stripe_read_at)
            .where(Payment.stripe_payment_intent_id.in_([s.id for s in snaps]))
        )).all()
    assert rows[0][0] == rows[1][0]  # the version moved alike
    assert {r[1] for r in rows} == {later(s).read_at for s in snaps}
    await check(db)


@pytest.mark.anyio
async def test_a_paid_intent_synced_at_once_from_many_places_credits_once(
    db: Database, settings: Settings
) -> None:
    uid = await new_user(db)
    snap = paid(uid, status="processing")
    await apply(db, settings, snap)
    done = later(snap, status="succeeded")

    outcomes = await asyncio.gather(*(sync(db, settings, done) for _ in range(6)))

    assert sorted(o.credited_tokens for o in outcomes) == [0, 0, 0, 0, 0, 500]
    assert await entries(db, snap.id) == [("purchase", 500)]
    assert await balance(db, uid) == 500
    again = await sync(db, settings, later(done))
    assert not again.changed  # credited already: the session's path, which moves nothing
    await check(db)


@pytest.mark.anyio
async def test_a_refund_seen_with_the_payment_still_goes_the_whole_way(
    db: Database, settings: Settings
) -> None:
    """Not the common case (money went back): applied by the session's path, in full."""
    uid = await new_user(db)
    snap = paid(uid, status="processing")
    await apply(db, settings, snap)

    outcome = await sync(
        db, settings, later(snap, status="succeeded", refunds=refunded(("succeeded", 2000)))
    )

    assert (outcome.credited_tokens, outcome.reversed_tokens) == (500, 500)
    assert await entries(db, snap.id) == [("purchase", 500), ("purchase_reversal", -500)]
    await check(db)
