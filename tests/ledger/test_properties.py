"""Hypothesis state machine: random sequences of ledger operations keep every guarantee.

A plain in-memory model runs beside the real ledger; after every step the balances must
match the model and ``ledger.check`` must find nothing wrong (the lot rules included).
The ledger runs on the machine's clock, which only the machine moves: allotments expire,
holds outlive their time, and the expiry job writes expired lots off.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User
from tokenbank.db import Database
from tokenbank.ledger import keys as ledger_keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import (
    IdempotencyKeyReused,
    InsufficientTokens,
    ReservationExpired,
    ReservationNotPending,
)
from tokenbank.ledger.models import Balance
from tokenbank.types import utcnow

T = TypeVar("T")
USERS = 2
amounts = st.integers(min_value=1, max_value=30)
keys = st.sampled_from([f"k{i}" for i in range(6)])
users = st.integers(0, USERS - 1)


@dataclass
class Model:
    balance: int = 0
    reserved: int = 0
    spends: dict[str, int] = field(default_factory=dict)
    # key -> (id, n, status, expires_at)
    holds: dict[str, tuple[int, int, str, datetime]] = field(default_factory=dict)
    purchases: dict[str, tuple[int, int]] = field(default_factory=dict)  # pi -> (tokens, reversed)
    moves: int = 0
    allotments: int = 0


LIVE_FREE = text(
    "SELECT COALESCE(SUM(remaining - held), 0) FROM token_lots "
    "WHERE user_id = :u AND (expires_at IS NULL OR expires_at > :now)"
)
EXPIRED_TOTAL = text(
    "SELECT COALESCE(SUM(amount), 0) FROM token_transactions "
    "WHERE user_id = :u AND transaction_type = 'expiry'"
)
LEFT_DUE = text(
    "SELECT count(*) FROM token_lots WHERE expires_at <= :now AND remaining > 0 "
    "AND held = 0 AND expired_transaction_id IS NULL"
)


def machine_for(db_url: str) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(db_url, pool_size=2)
            self.now = utcnow()
            self._real_clock = ledger.utcnow
            ledger.utcnow = lambda: self.now  # type: ignore[assignment]
            self.users = [self.run(self._new_user()) for _ in range(USERS)]
            self.model = {u: Model() for u in self.users}

        def run(self, coro: Awaitable[T]) -> T:
            return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

        def tx(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
            async def go() -> T:
                async with self.db.transaction() as s:
                    return await fn(s)

            return self.run(go())

        async def _new_user(self) -> int:
            async with self.db.transaction() as s:
                user = User(
                    username=f"p{uuid.uuid4().hex[:12]}",
                    email=f"{uuid.uuid4().hex}@p.test",
                    password_hash="-",
                )
                s.add(user)
                await s.flush()
                await ledger.open_account(s, user.id)
                return user.id

        def teardown(self) -> None:
            ledger.utcnow = self._real_clock  # type: ignore[assignment]
            self.run(self.db.dispose())
            self.loop.close()

        @rule(u=users, n=amounts)
        def grant(self, u: int, n: int) -> None:
            uid = self.users[u]
            self.tx(lambda s: ledger.grant(s, uid, n, "promo"))
            self.model[uid].balance += n

        def spendable(self, uid: int) -> int:
            """What a spend may take: the available tokens, at most the live lots' free ones."""
            m = self.model[uid]

            async def read(s: AsyncSession) -> int:
                return int((await s.execute(LIVE_FREE, {"u": uid, "now": self.now})).scalar_one())

            return min(m.balance - m.reserved, self.tx(read))

        @rule(u=users, n=amounts, key=keys)
        def spend(self, u: int, n: int, key: str) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            spendable = self.spendable(uid)
            try:
                self.tx(lambda s: ledger.spend(s, uid, n, "reply", idempotency_key=f"spend:{key}"))
            except InsufficientTokens:
                assert key not in m.spends and spendable < n
                return
            except IdempotencyKeyReused:
                assert m.spends.get(key) not in (None, n)
                return
            if key in m.spends:
                assert m.spends[key] == n
                return
            assert spendable >= n
            m.spends[key] = n
            m.balance -= n

        @rule(u=users, n=amounts, key=keys)
        def reserve(self, u: int, n: int, key: str) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            spendable = self.spendable(uid)
            try:
                r = self.tx(lambda s: ledger.reserve(s, uid, n, idempotency_key=key, ttl_s=3600))
            except InsufficientTokens:
                assert key not in m.holds and spendable < n
                return
            except IdempotencyKeyReused:
                assert m.holds[key][1] != n
                return
            if key in m.holds:
                assert r.replayed and r.id == m.holds[key][0]
                return
            assert spendable >= n
            m.holds[key] = (r.id, n, "pending", r.expires_at)
            m.reserved += n

        def _resolve(self, u: int, key: str, action: str) -> None:
            m = self.model[self.users[u]]
            if key not in m.holds:
                return
            rid, n, status, expires_at = m.holds[key]
            try:
                if action == "commit":
                    self.tx(lambda s: ledger.commit(s, rid, "reply"))
                else:
                    self.tx(lambda s: ledger.release(s, rid))
            except ReservationExpired:
                assert (status, action) == ("expired", "commit")
                return
            except ReservationNotPending:
                assert status not in ("pending",)
                return
            if status != "pending":
                assert (action, status) in (
                    ("commit", "committed"),
                    ("release", "released"),
                    ("release", "expired"),
                )
                return
            m.reserved -= n
            if action == "commit":
                m.balance -= n
                m.holds[key] = (rid, n, "committed", expires_at)
            else:
                m.holds[key] = (rid, n, "released", expires_at)

        @rule(u=users, key=keys)
        def commit(self, u: int, key: str) -> None:
            self._resolve(u, key, "commit")

        @rule(u=users, key=keys)
        def release(self, u: int, key: str) -> None:
            self._resolve(u, key, "release")

        @rule(hours=st.sampled_from([0.5, 2, 12, 30]))
        def advance_clock(self, hours: float) -> None:
            """Time passes; the sweeper expires the holds that outlived it."""
            self.now += timedelta(hours=hours)
            self.tx(lambda s: ledger.expire_reservations(s, now=self.now))
            for m in self.model.values():
                for key, (rid, n, status, expires_at) in list(m.holds.items()):
                    if status == "pending" and expires_at <= self.now:
                        m.holds[key] = (rid, n, "expired", expires_at)
                        m.reserved -= n

        @rule(u=users, n=st.sampled_from([20, 50]), hours=st.sampled_from([1, 24, 48]))
        def allot(self, u: int, n: int, hours: int) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            m.allotments += 1
            invoice = f"in_{uid}_{m.allotments}"
            entry = self.tx(
                lambda s: ledger.credit_allotment(
                    s,
                    uid,
                    n,
                    idempotency_key=ledger_keys.allotment(invoice),
                    expires_at=self.now + timedelta(hours=hours),
                    description="monthly tokens",
                )
            )
            assert entry.amount == n and not entry.replayed
            m.balance += n

        @rule()
        def expire_lots(self) -> None:
            """The expiry job: writes off what expired lots have left (not what holds
            hold), once; a second run finds nothing."""

            async def totals(s: AsyncSession) -> dict[int, int]:
                return {
                    uid: int((await s.execute(EXPIRED_TOTAL, {"u": uid})).scalar_one())
                    for uid in self.users
                }

            before = self.tx(totals)
            self.tx(lambda s: ledger.expire_lots(s, now=self.now))
            assert self.tx(lambda s: ledger.expire_lots(s, now=self.now)) == 0
            after = self.tx(totals)
            for uid in self.users:
                self.model[uid].balance += after[uid] - before[uid]

            async def left(s: AsyncSession) -> int:
                return int((await s.execute(LEFT_DUE, {"now": self.now})).scalar_one())

            assert self.tx(left) == 0

        @rule(u=users, pi=st.sampled_from(["pi_a", "pi_b", "pi_c"]), n=st.sampled_from([100, 500]))
        def purchase(self, u: int, pi: str, n: int) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            pi_id = f"{pi}_{uid}"
            if pi_id in m.purchases:
                n = m.purchases[pi_id][0]  # Stripe's amount for an intent never changes
            entry = self.tx(lambda s: ledger.credit_purchase(s, uid, n, pi_id, "pack"))
            if pi_id in m.purchases:
                assert entry.replayed
                return
            assert entry.amount == n
            m.purchases[pi_id] = (n, 0)
            m.balance += n

        @rule(u=users, data=st.data())
        def refund_or_dispute(self, u: int, data: st.DataObject) -> None:
            """Move a purchase's reversed total to a new target (refund, dispute, reinstate)."""
            uid, m = self.users[u], self.model[self.users[u]]
            if not m.purchases:
                return
            pi_id = data.draw(st.sampled_from(sorted(m.purchases)))
            tokens, reversed_ = m.purchases[pi_id]
            target = data.draw(st.integers(0, tokens))
            diff = target - reversed_
            if diff == 0:
                return
            m.moves += 1
            key = f"{pi_id}:rev:{m.moves}"
            if diff > 0:
                self.tx(
                    lambda s: ledger.reverse_purchase(
                        s, uid, diff, pi_id, "refund", idempotency_key=key
                    )
                )
            else:
                self.tx(
                    lambda s: ledger.reinstate_purchase(
                        s, uid, -diff, pi_id, "dispute won", idempotency_key=key
                    )
                )
            m.purchases[pi_id] = (tokens, target)
            m.balance -= diff

        @invariant()
        def matches_model_and_guarantees(self) -> None:
            async def read(s: AsyncSession) -> tuple[list[Balance], list[Any]]:
                return ([await ledger.balance(s, uid) for uid in self.users], await ledger.check(s))

            balances, violations = self.tx(read)
            assert violations == []
            for b in balances:
                m = self.model[b.user_id]
                assert (b.balance, b.reserved) == (m.balance, m.reserved)
                assert b.reserved >= 0

    return LedgerMachine


def test_ledger_state_machine(db_url: str) -> None:
    run_state_machine_as_test(
        machine_for(db_url),
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
