"""Leased claims: a table of work items that workers in many processes share.

A row waits in one of the queue's waiting statuses until its ``next_attempt_at``; a worker
claims it by moving it to the processing status, counting an attempt, stamping a claim
token of its own and a lease end (``claimed_until``). Only the holder of the token may end
the claim (:meth:`LeasedQueue.end_claim`); a worker that dies leaves its lease to run out,
and then the row is claimable again. Used by the webhook inbox
(``payments.repository.claim_events``) and the outbound webhook outbox
(``outbound.repository.claim_deliveries``).

The claim is one statement: ``UPDATE … WHERE id IN (SELECT … ORDER BY next_attempt_at
LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …``. On PostgreSQL the candidates are locked
``SKIP LOCKED``, so claimers in other processes take other rows instead of waiting; SQLite
has one writer at a time (``BEGIN IMMEDIATE``), which makes the same statement a plain
claim (its compiler leaves the locking clause out).

SQL only: it takes a session and never commits (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Query


@dataclass(frozen=True)
class LeasedQueue:
    """A table worked through by leased claims, named by its columns.

    ``waiting``: the statuses of a row waiting for its next attempt; ``processing``: the
    status of a claimed row. The column names default to the ones both queues use."""

    table: Table
    waiting: Collection[str]
    processing: str
    key: str = "id"
    status: str = "status"
    attempts: str = "attempts"
    token: str = "claim_token"
    lease: str = "claimed_until"
    due: str = "next_attempt_at"

    def col(self, name: str) -> ColumnElement[Any]:
        return cast("ColumnElement[Any]", self.table.c[name])

    def claimable(self, now: datetime | ColumnElement[Any]) -> ColumnElement[bool]:
        """Waiting and due, or claimed by a worker whose claim ran out (it died).

        The statuses are written into the SQL (constants of the queue), so the statement
        needs no values but ``now`` and can be prepared once (:meth:`due_claim`)."""
        status, lease = self.col(self.status), self.col(self.lease)
        return or_(
            and_(status.in_([_constant(s) for s in self.waiting]), self.col(self.due) <= now),
            and_(status == _constant(self.processing), lease < now),
        )

    def unheld(self, now: datetime) -> ColumnElement[bool]:
        """Held by no live worker: in any status but processing, or its claim ran out."""
        return or_(self.col(self.status) != self.processing, self.col(self.lease) < now)

    async def claim(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        lease_until: datetime,
        token: str,
        returning: Sequence[ColumnElement[Any]],
        limit: int = 1,
        key: Any | None = None,
    ) -> Sequence[Row[Any]]:
        """Claim up to ``limit`` claimable rows, earliest due first — or the one row
        ``key``, in any status, unless a live worker holds it — counting an attempt on
        each; the ``returning`` columns of the rows claimed (their attempts counted)."""
        ident = self.col(self.key)
        candidates: Select[Any]
        if key is None:
            candidates = (
                select(ident)
                .where(self.claimable(now))
                .order_by(self.col(self.due))
                .limit(limit)
            )
        else:
            candidates = select(ident).where(ident == key, self.unheld(now))
        stmt = self._claiming(candidates, lease_until, token, returning)
        return (await session.execute(stmt)).all()

    def due_claim(self, returning: Sequence[ColumnElement[Any]]) -> Query:
        """:meth:`claim` of up to ``limit`` due rows as one prepared statement, for any
        kind of unit (a driver unit: no ORM session, no statement built per claim). Its
        values: ``now``, ``lease_until``, ``token``, ``limit``."""
        now = bindparam("now", type_=self.col(self.due).type)
        candidates = (
            select(self.col(self.key))
            .where(self.claimable(now))
            .order_by(self.col(self.due))
            .limit(bindparam("limit"))
        )
        lease_until = bindparam("lease_until", type_=self.col(self.lease).type)
        token = bindparam("token", type_=self.col(self.token).type)
        return Query.of(self._claiming(candidates, lease_until, token, returning))

    def _claiming(
        self,
        candidates: Select[Any],
        lease_until: Any,
        token: Any,
        returning: Sequence[ColumnElement[Any]],
    ) -> Update:
        """The claim of the ``candidates`` (locked ``SKIP LOCKED``): each moved to the
        processing status with an attempt counted, the token and the lease stamped."""
        candidates = candidates.with_for_update(skip_locked=True)
        return (
            update(self.table)
            .where(self.col(self.key).in_(candidates.scalar_subquery()))
            .values(
                {
                    self.status: _constant(self.processing),
                    self.attempts: self.col(self.attempts) + literal_column("1"),
                    self.token: token,
                    self.lease: lease_until,
                }
            )
            .returning(*returning)
        )

    async def end_claim(
        self, session: AsyncSession, key: Any, token: str, values: dict[str, Any]
    ) -> bool:
        """End the claim ``token`` holds on row ``key``, writing ``values`` with it; False
        (nothing written) when the claim is no longer ours: it ran out and another worker
        took the row."""
        stmt = (
            update(self.table)
            .where(self.col(self.key) == key, self.col(self.token) == token)
            .values({**values, self.token: None, self.lease: None})
        )
        result = cast(CursorResult[Any], await session.execute(stmt))
        return int(result.rowcount) > 0


def _constant(status: str) -> ColumnElement[Any]:
    """A status written into the SQL as a literal (statuses are fixed lowercase words)."""
    if not status.replace("_", "").isalpha():
        raise ValueError(f"not a status: {status!r}")
    return literal_column(f"'{status}'")
