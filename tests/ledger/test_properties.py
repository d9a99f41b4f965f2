"""Hypothesis state machine: random sequences of ledger operations keep every guarantee.

A plain in-memory model runs beside the real ledger; after every step the balances must
match the model and ``ledger.check`` must find nothing wrong.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User
from tokenbank.db import Database
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
    holds: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # key -> (id, n, status)
    purchases: dict[str, tuple[int, int]] = field(default_factory=dict)  # pi -> (tokens, reversed)
    moves: int = 0


def machine_for(db_url: str) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(db_url, pool_size=2)
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
            self.run(self.db.dispose())
            self.loop.close()

        @rule(u=users, n=amounts)
        def grant(self, u: int, n: int) -> None:
            uid = self.users[u]
            self.tx(lambda s: ledger.grant(s, uid, n, "promo"))
            self.model[uid].balance += n

        @rule(u=users, n=amounts, key=keys)
        def spend(self, u: int, n: int, key: str) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            try:
                self.tx(lambda s: ledger.spend(s, uid, n, "reply", idempotency_key=f"spend:{key}"))
            except InsufficientTokens:
                assert key not in m.spends and m.balance - m.reserved < n
                return
            except IdempotencyKeyReused:
                assert m.spends.get(key) not in (None, n)
                return
            if key in m.spends:
                assert m.spends[key] == n
                return
            assert m.balance - m.reserved >= n
            m.spends[key] = n
            m.balance -= n

        @rule(u=users, n=amounts, key=keys)
        def reserve(self, u: int, n: int, key: str) -> None:
            uid, m = self.users[u], self.model[self.users[u]]
            try:
                r = self.tx(lambda s: ledger.reserve(s, uid, n, idempotency_key=key, ttl_s=3600))
            except InsufficientTokens:
                assert key not in m.holds and m.balance - m.reserved < n
                return
            except IdempotencyKeyReused:
                assert m.holds[key][1] != n
                return
            if key in m.holds:
                assert r.replayed and r.id == m.holds[key][0]
                return
            m.holds[key] = (r.id, n, "pending")
            m.reserved += n

        def _resolve(self, u: int, key: str, action: str) -> None:
            m = self.model[self.users[u]]
            if key not in m.holds:
                return
            rid, n, status = m.holds[key]
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
                m.holds[key] = (rid, n, "committed")
            else:
                m.holds[key] = (rid, n, "released")

        @rule(u=users, key=keys)
        def commit(self, u: int, key: str) -> None:
            self._resolve(u, key, "commit")

        @rule(u=users, key=keys)
        def release(self, u: int, key: str) -> None:
            self._resolve(u, key, "release")

        @rule()
        def expire_all(self) -> None:
            later = utcnow() + timedelta(hours=2)
            self.tx(lambda s: ledger.expire_reservations(s, now=later))
            for m in self.model.values():
                for key, (rid, n, status) in list(m.holds.items()):
                    if status == "pending":
                        m.holds[key] = (rid, n, "expired")
                        m.reserved -= n

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
