"""The sync's rules applied to Stripe states directly: rounding, order, stale reads."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tokenbank.auth import service as auth
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenTransaction
from tokenbank.payments.stripe_client import DisputeState, IntentSnapshot, dispute_state
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
    refunded = round(amount * fraction)

    target = reversal_target(
        tokens=tokens, amount_cents=amount, refunded_cents=refunded, dispute_funds_withdrawn=False
    )

    assert 0 <= target <= tokens
    assert target * amount >= tokens * refunded  # the customer keeps nothing refunded
    assert target == 0 or (target - 1) * amount < tokens * refunded  # and loses no more


@given(tokens=st.integers(1, 10**6), amount=st.integers(1, 10**7), a=st.floats(0, 1),
       b=st.floats(0, 1))
def test_more_money_back_never_means_fewer_tokens_back(
    tokens: int, amount: int, a: float, b: float
) -> None:
    low, high = sorted((round(amount * a), round(amount * b)))

    def target(refunded: int) -> int:
        return reversal_target(tokens=tokens, amount_cents=amount, refunded_cents=refunded,
                               dispute_funds_withdrawn=False)

    assert target(low) <= target(high)


def test_a_dispute_with_the_funds_withdrawn_takes_everything_back() -> None:
    assert reversal_target(tokens=500, amount_cents=2000, refunded_cents=0,
                           dispute_funds_withdrawn=True) == 500
    assert reversal_target(tokens=500, amount_cents=2000, refunded_cents=500,
                           dispute_funds_withdrawn=False) == 125


@pytest.mark.parametrize(
    ("status", "amounts", "ours"),
    [
        ("needs_response", [], "open"),
        ("needs_response", [-2000], "funds_withdrawn"),
        ("under_review", [-2000], "funds_withdrawn"),
        ("won", [-2000, 2000], "won"),
        ("lost", [-2000], "lost"),
        ("warning_needs_response", [], "open"),
        ("warning_closed", [], "closed"),
    ],
)
def test_disputes_are_judged_by_where_the_money_is(
    status: str, amounts: list[int], ours: str
) -> None:
    dispute: dict[str, Any] = {"id": "dp_1", "status": status,
                               "balance_transactions": [{"amount": a} for a in amounts]}

    assert dispute_state(dispute).status == ours


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


def withdrawn(status: str = "funds_withdrawn") -> DisputeState:
    return DisputeState("dp_1", status)


@pytest.mark.anyio
async def test_a_stale_read_never_gives_back_a_refund(db: Database, settings: Settings) -> None:
    uid = await new_user(db)
    now = paid(uid, amount_refunded=1000)
    first = await apply(db, settings, now)
    assert (first.adopted, first.credited_tokens, first.reversed_tokens) == (True, 500, 250)

    stale = await apply(db, settings, replace(now, amount_refunded=500))
    older = await apply(db, settings, replace(now, amount_refunded=0))

    assert not stale.changed and not older.changed
    assert older.payment is not None and older.payment.reversed_tokens == 250
    assert await entries(db, now.id) == [("purchase", 500), ("purchase_reversal", -250)]
    await check(db)


@pytest.mark.anyio
async def test_a_stale_read_never_reopens_a_won_dispute_or_an_unpaid_state(
    db: Database, settings: Settings
) -> None:
    uid = await new_user(db)
    snap = paid(uid, disputed=True, dispute=withdrawn())
    await apply(db, settings, snap)
    won = await apply(db, settings, replace(snap, dispute=withdrawn("won")))
    assert won.reinstated_tokens == 500

    late = await apply(db, settings, snap)
    unpaid = await apply(db, settings, replace(snap, status="requires_payment_method",
                                               dispute=None))

    assert not late.changed and not unpaid.changed
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
    snap = paid(uid, disputed=True, dispute=withdrawn())
    await apply(db, settings, snap)
    await apply(db, settings, replace(snap, dispute=withdrawn("won")))

    refunded = await apply(db, settings, replace(snap, dispute=withdrawn("won"),
                                                 amount_refunded=2000))

    assert refunded.reversed_tokens == 500
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

    outcome = await apply(db, settings, paid(uid, amount_refunded=2000))

    assert (outcome.credited_tokens, outcome.reversed_tokens) == (500, 500)
    assert await balance(db, uid) == 0
    await check(db)
