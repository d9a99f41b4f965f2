"""All SQL of the ledger.

Everything here is SQLAlchemy Core, except the charge path: ``reserve``, ``commit`` and
``release`` run once per AI reply, so each is ONE function per dialect returning a typed
outcome (below, in order of precedence). On PostgreSQL each is one prepared statement (a
data-modifying CTE) sent to asyncpg inside the caller's transaction — a driver
transaction on the hot path (:meth:`tokenbank.db.Database.run`), or a session's
connection; ``bench/`` measures it against pgbench running the same SQL text
(:data:`PG_RESERVE_RELAXED`, :data:`PG_COMMIT`). SQLite (no DML in ``WITH``) runs a few
statements per step, compiled once (``LITE_*``), all in one trip to the unit's connection
(``db.call_sync``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from tokenbank.db import (
    DriverTransaction,
    PgStatement,
    Query,
    SqliteStatement,
    SqliteTransaction,
    Unit,
    call_sync,
)
from tokenbank.ledger import keys, lots
from tokenbank.ledger.models import (
    ENTRY_FIELDS,
    RESERVATION_FIELDS,
    ReservationStatus,
    TokenAccount,
    TokenLot,
    TokenLotMove,
    TokenReservation,
    TokenReservationLot,
    TokenTransaction,
    TransactionType,
)

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

accounts = cast(Table, TokenAccount.__table__)
transactions = cast(Table, TokenTransaction.__table__)
reservations = cast(Table, TokenReservation.__table__)
lot_table = cast(Table, TokenLot.__table__)
lot_move_table = cast(Table, TokenLotMove.__table__)
allocation_table = cast(Table, TokenReservationLot.__table__)

# The columns an entry and a hold are read with: the records' fields (ledger.models),
# as Core columns here and as SQL text in the charge path's statements below.
TX_COLUMNS = tuple(transactions.c[name] for name in ENTRY_FIELDS)
RESERVATION_COLUMNS = tuple(reservations.c[name] for name in RESERVATION_FIELDS)


def _column_list(names: tuple[str, ...], alias: str | None = None) -> str:
    return ", ".join(names if alias is None else (f"{alias}.{name}" for name in names))


_TX = _column_list(ENTRY_FIELDS)
_HOLD = _column_list(RESERVATION_FIELDS)
# Words the charge path's SQL text writes or compares, from the one place they are spelt.
_PENDING = f"'{ReservationStatus.PENDING}'"
_COMMITTED = f"'{ReservationStatus.COMMITTED}'"
_RELEASED = f"'{ReservationStatus.RELEASED}'"
_DEDUCTION = f"'{TransactionType.DEDUCTION}'"


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def create_account(session: AsyncSession, user_id: int, now: datetime) -> None:
    stmt = insert_ignoring_conflicts(session, accounts).values(
        user_id=user_id, balance=0, reserved=0, created_at=now, updated_at=now
    )
    await session.execute(stmt)


ACCOUNT = Query.of(
    select(
        accounts.c.user_id,
        accounts.c.balance,
        accounts.c.reserved,
        accounts.c.created_at,
        accounts.c.updated_at,
    ).where(accounts.c.user_id == bindparam("user_id"))
)


async def get_account(unit: Unit, user_id: int) -> Mapping[str, Any] | None:
    return await ACCOUNT.first(unit, user_id=user_id)


_MOVED = (
    accounts.c.balance + bindparam("balance_delta"),
    accounts.c.reserved + bindparam("reserved_delta"),
)


def _move(condition: Any) -> Query:
    return Query.of(
        update(accounts)
        .where(condition)
        .values(
            balance=_MOVED[0],
            reserved=_MOVED[1],
            updated_at=bindparam("now", type_=accounts.c.updated_at.type),
        )
        .returning(accounts.c.balance, accounts.c.reserved)
    )


#: The one conditional UPDATE every balance change goes through (guarantee 3), with and
#: without its condition.
MOVE = _move(accounts.c.user_id == bindparam("account"))
MOVE_IF_AVAILABLE = _move(
    and_(
        accounts.c.user_id == bindparam("account"),
        accounts.c.balance - accounts.c.reserved >= bindparam("require_available"),
    )
)


async def move_balance(
    unit: Unit,
    user_id: int,
    *,
    balance_delta: int,
    reserved_delta: int,
    require_available: int | None,
    now: datetime,
) -> tuple[int, int] | None:
    """The one conditional UPDATE every balance change goes through.

    With ``require_available=n`` the row changes only if ``balance - reserved >= n`` at
    the moment of the update: check and change are one statement, so no interleaving
    of concurrent requests can overdraw. Returns the new balance and reserved, or None
    if refused. In any kind of unit (a prepared statement on the driver, Core in a session).
    """
    values = {
        "account": user_id,
        "balance_delta": balance_delta,
        "reserved_delta": reserved_delta,
        "now": now,
    }
    if require_available is None:
        row = await MOVE.first(unit, **values)
    else:
        row = await MOVE_IF_AVAILABLE.first(unit, require_available=require_available, **values)
    return None if row is None else (int(row["balance"]), int(row["reserved"]))


_ENTRY_VALUES = {
    name: bindparam(name, type_=transactions.c[name].type)
    for name in (
        "user_id",
        "transaction_type",
        "amount",
        "balance_after",
        "description",
        "stripe_payment_intent_id",
        "idempotency_key",
        "reservation_id",
        "actor_user_id",
        "created_at",
    )
}
#: A ledger entry, or nothing when a unique key says it exists already (a replay).
INSERT_ENTRY = Query.of(
    postgresql.insert(transactions)
    .values(_ENTRY_VALUES)
    .on_conflict_do_nothing()
    .returning(*TX_COLUMNS),
    sqlite=sqlite.insert(transactions)
    .values(_ENTRY_VALUES)
    .on_conflict_do_nothing()
    .returning(*TX_COLUMNS),
)
ENTRY_BY_KEY = Query.of(
    select(*TX_COLUMNS).where(
        transactions.c.user_id == bindparam("user_id"),
        transactions.c.idempotency_key == bindparam("idempotency_key"),
    )
)
PURCHASE_ENTRY = Query.of(
    select(*TX_COLUMNS).where(
        transactions.c.stripe_payment_intent_id == bindparam("payment_intent_id"),
        transactions.c.transaction_type == literal_column(f"'{TransactionType.PURCHASE}'"),
    )
)


async def insert_transaction(unit: Unit, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Insert a ledger entry (every column of :data:`INSERT_ENTRY` named in ``values``);
    None when a unique key says it already exists."""
    return await INSERT_ENTRY.first(unit, **values)


async def find_transaction_by_key(
    unit: Unit, user_id: int, idempotency_key: str
) -> Mapping[str, Any] | None:
    return await ENTRY_BY_KEY.first(unit, user_id=user_id, idempotency_key=idempotency_key)


async def find_purchase(unit: Unit, payment_intent_id: str) -> Mapping[str, Any] | None:
    return await PURCHASE_ENTRY.first(unit, payment_intent_id=payment_intent_id)


def history_query(user_id: int, limit: int, before: int | None) -> Select[Any]:
    """Newest first, by walking ``ix_token_transactions_user_id_id`` backwards.

    The user is matched with ``BETWEEN u AND u``, not ``=``: with ``=`` PostgreSQL treats
    ``user_id`` as a constant, orders by ``id`` alone and, for a user who owns a large
    share of the table, may walk the primary key backwards filtering by user. That is
    quick while the user's entries are recent and reads millions of rows when they are
    old. With a range and ``ORDER BY user_id, id`` only the composite index gives the
    order, so every page reads ``limit`` index entries whatever the table holds.
    """
    stmt = select(*TX_COLUMNS).where(transactions.c.user_id.between(user_id, user_id))
    if before is not None:
        stmt = stmt.where(transactions.c.id < before)
    return stmt.order_by(transactions.c.user_id.desc(), transactions.c.id.desc()).limit(limit)


async def insert_reservation(session: AsyncSession, values: dict[str, Any]) -> AnyRow | None:
    stmt = (
        insert_ignoring_conflicts(session, reservations)
        .values(**values)
        .returning(*RESERVATION_COLUMNS)
    )
    return (await session.execute(stmt)).first()


async def find_reservation(session: AsyncSession, reservation_id: int) -> AnyRow | None:
    stmt = select(*RESERVATION_COLUMNS).where(reservations.c.id == reservation_id)
    return (await session.execute(stmt)).first()


async def find_reservation_by_key(
    session: AsyncSession, user_id: int, idempotency_key: str
) -> AnyRow | None:
    stmt = select(*RESERVATION_COLUMNS).where(
        reservations.c.user_id == user_id, reservations.c.idempotency_key == idempotency_key
    )
    return (await session.execute(stmt)).first()


async def resolve_reservation(
    session: AsyncSession,
    reservation_id: int,
    *,
    status: ReservationStatus,
    now: datetime,
    unexpired_only: bool,
) -> AnyRow | None:
    """Move a pending reservation to ``status``; None if it is not pending (resolves once)."""
    condition = and_(
        reservations.c.id == reservation_id, reservations.c.status == ReservationStatus.PENDING
    )
    if unexpired_only:
        condition = and_(condition, reservations.c.expires_at > now)
    stmt = (
        update(reservations)
        .where(condition)
        .values(status=status, resolved_at=now)
        .returning(*RESERVATION_COLUMNS)
    )
    return (await session.execute(stmt)).first()


async def expire_due_reservations(session: AsyncSession, now: datetime, limit: int) -> list[AnyRow]:
    """Mark up to ``limit`` overdue pending reservations expired; returns what changed.

    Locks follow the ledger's one order — the account rows first, then the holds — so a
    sweeper never deadlocks with a ``reserve`` of the same user. ``SKIP LOCKED`` on the
    accounts lets several app processes sweep at once without waiting on each other (a
    busy account's holds are left to the next round); the ``status = 'pending'``
    predicate makes each hold resolve once.
    """
    due = (
        select(reservations.c.id, reservations.c.user_id)
        .where(reservations.c.status == ReservationStatus.PENDING, reservations.c.expires_at <= now)
        .order_by(reservations.c.expires_at)
        .limit(limit)
    )
    candidates = (await session.execute(due)).all()
    if not candidates:
        return []
    users = sorted({int(r.user_id) for r in candidates})
    if is_postgresql(session):
        lock = (
            select(accounts.c.user_id)
            .where(accounts.c.user_id.in_(users))
            .order_by(accounts.c.user_id)
            .with_for_update(skip_locked=True)
        )
        users = [int(r[0]) for r in (await session.execute(lock)).all()]
        if not users:
            return []
    stmt = (
        update(reservations)
        .where(
            reservations.c.id.in_([int(r.id) for r in candidates]),
            reservations.c.user_id.in_(users),
            reservations.c.status == ReservationStatus.PENDING,
        )
        .values(status=ReservationStatus.EXPIRED, resolved_at=now)
        .returning(reservations.c.id, reservations.c.user_id, reservations.c.amount)
    )
    return list((await session.execute(stmt)).all())


async def find_violations(session: AsyncSession) -> list[AnyRow]:
    """Accounts whose cached totals disagree with the rows they summarise."""
    tx_sum = (
        select(
            transactions.c.user_id.label("user_id"),
            func.sum(transactions.c.amount).label("total"),
            func.max(transactions.c.id).label("last_id"),
        )
        .group_by(transactions.c.user_id)
        .subquery()
    )
    held = (
        select(
            reservations.c.user_id.label("user_id"), func.sum(reservations.c.amount).label("held")
        )
        .where(reservations.c.status == ReservationStatus.PENDING)
        .group_by(reservations.c.user_id)
        .subquery()
    )
    last_tx = transactions.alias("last_tx")
    ledger_total = func.coalesce(tx_sum.c.total, 0)
    held_total = func.coalesce(held.c.held, 0)
    stmt = (
        select(
            accounts.c.user_id,
            accounts.c.balance,
            accounts.c.reserved,
            ledger_total.label("ledger_total"),
            held_total.label("held_total"),
            last_tx.c.balance_after.label("last_balance_after"),
        )
        .select_from(accounts)
        .outerjoin(tx_sum, tx_sum.c.user_id == accounts.c.user_id)
        .outerjoin(held, held.c.user_id == accounts.c.user_id)
        .outerjoin(last_tx, last_tx.c.id == tx_sum.c.last_id)
        .where(
            (accounts.c.balance != ledger_total)
            | (accounts.c.reserved != held_total)
            | (
                last_tx.c.balance_after.is_not(None)
                & (last_tx.c.balance_after != accounts.c.balance)
            )
        )
        .order_by(accounts.c.user_id)
    )
    return list((await session.execute(stmt)).all())


async def orphan_transaction_users(session: AsyncSession) -> list[int]:
    stmt = (
        select(transactions.c.user_id)
        .where(
            ~select(accounts.c.user_id).where(accounts.c.user_id == transactions.c.user_id).exists()
        )
        .distinct()
    )
    return [int(r[0]) for r in (await session.execute(stmt)).all()]


async def negative_without_reversal(session: AsyncSession) -> list[int]:
    """Guarantee 4: only a reversal (of a purchase or an allotment) may leave a balance
    below zero."""
    has_reversal = (
        select(transactions.c.id)
        .where(
            transactions.c.user_id == accounts.c.user_id,
            transactions.c.transaction_type.in_(
                (TransactionType.PURCHASE_REVERSAL, TransactionType.ALLOTMENT_REVERSAL)
            ),
        )
        .exists()
    )
    stmt = select(accounts.c.user_id).where(accounts.c.balance < 0, ~has_reversal)
    return [int(r[0]) for r in (await session.execute(stmt)).all()]


async def count_accounts(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(accounts))).scalar_one())


# --- the charge path: reserve, commit, release ------------------------------------------
#
# Each step is ONE function per dialect returning a typed outcome; the service decides
# once from it. The outcomes of each step, in order of precedence (the first that
# applies is the one returned), are listed on the outcome types below and tested as one
# table in ``tests/ledger/test_outcomes.py``.


@dataclass(frozen=True, slots=True)
class KeyReused:
    """reserve (1): a hold with this key exists for a different amount. Nothing written."""

    row: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Replayed:
    """reserve (2): a hold with this key exists (``row``, in whatever status it is now);
    commit (2): the hold was committed before — ``row`` is its deduction. Nothing written."""

    row: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NoAccount:
    """reserve (3): the user has no token account. Nothing written."""


@dataclass(frozen=True, slots=True)
class Refused:
    """reserve (4): ``balance - reserved`` is below ``required``. Nothing written."""

    available: int
    required: int


@dataclass(frozen=True, slots=True)
class Held:
    """reserve (5): the tokens are held; ``row`` is the new pending reservation."""

    row: Mapping[str, Any]


ReserveOutcome: TypeAlias = KeyReused | Replayed | NoAccount | Refused | Held


@dataclass(frozen=True, slots=True)
class NotFound:
    """commit (1), release (1): no reservation has this id. Nothing written."""


@dataclass(frozen=True, slots=True)
class AlreadyResolved:
    """commit (3): the hold was released; release (2): it was committed, released or
    expired already (``status``). Nothing written."""

    status: str


@dataclass(frozen=True, slots=True)
class Expired:
    """commit (4): the hold expired (by the sweeper, or its ``expires_at`` has passed).
    Nothing written."""


@dataclass(frozen=True, slots=True)
class KeyTaken:
    """commit (5): another entry owns the deduction's key (:func:`keys.committed_hold`). The
    caller must end its unit rolled back: the hold was resolved a moment ago in it."""


@dataclass(frozen=True, slots=True)
class Committed:
    """commit (6): the hold became ``row``, a deduction; ``reserved_after`` is the
    account's ``reserved`` right after it (None when not read). ``short``: the tokens
    charged beyond the hold's allocation (a refund took some of it), which the caller
    takes from the other lots (:func:`tokenbank.ledger.lots.take_back`)."""

    row: Mapping[str, Any]
    reserved_after: int | None
    short: int = 0


CommitOutcome: TypeAlias = NotFound | Replayed | AlreadyResolved | Expired | KeyTaken | Committed


@dataclass(frozen=True, slots=True)
class Released:
    """release (3): the hold is released and its tokens are available again."""


ReleaseOutcome: TypeAlias = NotFound | AlreadyResolved | Released


# --- PostgreSQL: one statement per step, on the driver or a session's connection ------

#: The hold's steps: a look-up of the key, the conditional UPDATE that is the whole check
#: (guarantee 3) and runs only for a new key, the INSERT that runs only if it matched.
#: ``held`` without a new row means the key was inserted by a transaction this
#: statement's snapshot cannot see: :data:`PG_RESERVE_RACED` undoes the hold. It runs
#: only after an earlier statement of its unit locked the account (:func:`reserve_pg`):
#: its lot reads rely on that lock.
_PG_RESERVE_STEPS = f"""
WITH prior AS (
    SELECT {_HOLD}
    FROM token_reservations WHERE user_id = $1 AND idempotency_key = $3
), locked AS (
    -- Lock order: the account row first, then its lots, as everywhere in the ledger.
    SELECT a.user_id FROM token_accounts AS a
    WHERE a.user_id = $1 AND NOT EXISTS (SELECT FROM prior)
    FOR UPDATE
), lots AS (
    -- Read, not locked: the account was locked by an earlier statement of this unit
    -- (PG_LOCK_ACCOUNT, or the history read's account_lock), so this statement's
    -- snapshot already holds every lot change, and no other writer of these lots (each
    -- locks the account first) can run until this unit ends. The lot this hold draws on
    -- is locked by its own UPDATE below.
    SELECT l.id, l.remaining, l.held, l.priority, l.expires_at
    FROM token_lots AS l
    WHERE l.user_id = (SELECT user_id FROM locked) AND l.remaining > l.held
      AND (l.expires_at IS NULL OR l.expires_at > $5)
), ranked AS (
    -- The spend order (ledger.lots.spend_key), and the free tokens up to each lot.
    SELECT id, remaining - held AS free,
           SUM(remaining - held) OVER (ORDER BY priority, expires_at NULLS LAST, id) AS upto
    FROM lots
), held AS (
    UPDATE token_accounts SET reserved = reserved + $2, updated_at = $5
    WHERE user_id = (SELECT user_id FROM locked) AND balance - reserved >= $2
      AND (SELECT COALESCE(SUM(remaining - held), 0) FROM lots) >= $2
    RETURNING user_id
), created AS (
    INSERT INTO token_reservations
        (user_id, amount, status, idempotency_key, description, expires_at, created_at)
    SELECT user_id, $2, {_PENDING}, $3, $4, $6, $5 FROM held
    ON CONFLICT DO NOTHING
    RETURNING {_HOLD}
), alloc AS (
    SELECT c.id AS reservation_id, r.id AS lot_id, LEAST(r.free, $2 - (r.upto - r.free)) AS part
    FROM created AS c, ranked AS r
    WHERE r.upto - r.free < $2
), allocated AS (
    INSERT INTO token_reservation_lots (reservation_id, lot_id, amount)
    SELECT reservation_id, lot_id, part FROM alloc
), lots_held AS (
    UPDATE token_lots AS l SET held = l.held + alloc.part
    FROM alloc WHERE l.id = alloc.lot_id
), found AS (
    SELECT * FROM created UNION ALL SELECT * FROM prior
)"""

#: What the hold's statement returns: whether it held, what the account had available
#: when it did not (NULL without an account) and what its live lots had free, and the
#: new or the earlier reservation.
_PG_RESERVE_RESULT = """
SELECT EXISTS (SELECT FROM held) AS held,
       CASE WHEN NOT EXISTS (SELECT FROM held) THEN
           (SELECT balance - reserved FROM token_accounts WHERE user_id = $1)
       END AS available,
       (SELECT COALESCE(SUM(remaining - held), 0) FROM lots) AS lots_free,
       found.*
FROM (VALUES (1)) AS one LEFT JOIN found ON true
"""

#: The same, and the transaction commits without waiting for the WAL flush
#: (``synchronous_commit`` off for this transaction only), in the same round trip.
_PG_RESERVE_RESULT_RELAXED = """
SELECT EXISTS (SELECT FROM held) AS held,
       CASE WHEN NOT EXISTS (SELECT FROM held) THEN
           (SELECT balance - reserved FROM token_accounts WHERE user_id = $1)
       END AS available,
       (SELECT COALESCE(SUM(remaining - held), 0) FROM lots) AS lots_free,
       found.*,
       set_config('synchronous_commit', 'off', true) AS synchronous_commit
FROM (VALUES (1)) AS one LEFT JOIN found ON true
"""

_RESERVE_PARAMS = ("user_id", "tokens", "idempotency_key", "description", "now", "expires_at")

#: Hold tokens and record the hold in one statement (see :func:`reserve_pg`).
PG_RESERVE = PgStatement(sql=_PG_RESERVE_STEPS + _PG_RESERVE_RESULT, params=_RESERVE_PARAMS)
#: :data:`PG_RESERVE` for a transaction that need not wait for the disk.
PG_RESERVE_RELAXED = PgStatement(
    sql=_PG_RESERVE_STEPS + _PG_RESERVE_RESULT_RELAXED, params=_RESERVE_PARAMS
)

#: A hold raced a concurrent insert of its key: give the hold back and return the first.
PG_RESERVE_RACED = PgStatement(
    sql=f"""
WITH undone AS (
    UPDATE token_accounts SET reserved = reserved - $2, updated_at = $4
    WHERE user_id = $1
    RETURNING user_id
)
SELECT {_column_list(RESERVATION_FIELDS, "r")}
FROM token_reservations AS r
WHERE r.user_id = (SELECT user_id FROM undone) AND r.idempotency_key = $3
""",
    params=("user_id", "tokens", "idempotency_key", "now"),
)

#: The hold's first statement: lock the account row, so that :data:`PG_RESERVE` starts
#: (and takes its snapshot) only after every writer of the account's lots has committed
#: (each locks the account first). Waiting for the account inside PG_RESERVE itself left
#: its lot reads to EvalPlanQual on a snapshot older than the lots, and about one run in
#: five of 200 concurrent charges held tokens a concurrent charge had just taken (which
#: step of the re-check went stale is not pinned down; with this lock none is needed).
#: A key that exists takes no lock (its hold is replayed; nothing waits on a sweeper).
PG_LOCK_ACCOUNT = PgStatement(
    sql="""
SELECT a.user_id FROM token_accounts AS a
WHERE a.user_id = $1 AND NOT EXISTS (
    SELECT FROM token_reservations WHERE user_id = $1 AND idempotency_key = $2
)
FOR UPDATE OF a
""",
    params=("user_id", "idempotency_key"),
)


def account_lock(
    user_id: ColumnElement[Any], idempotency_key: ColumnElement[Any], enabled: ColumnElement[Any]
) -> ColumnElement[Any]:
    """:data:`PG_LOCK_ACCOUNT` as a column of another statement: true when it locked the
    account row (``FOR UPDATE``) — only when ``enabled``, and unless a hold with
    ``idempotency_key`` exists (a replay takes no lock).

    For the statement a unit runs *before* its :func:`reserve_pg` (the chat's history read),
    which then passes ``account_locked=True`` and saves the lock's own round trip. What
    makes that safe is the same as for :data:`PG_LOCK_ACCOUNT`: the lock is taken in an
    earlier statement of the unit, so ``PG_RESERVE`` takes its snapshot after every writer
    of the account's lots has committed. On SQLite (writers are serial) it only reads.
    """
    key_exists = (
        select(reservations.c.id)
        .where(
            reservations.c.user_id == user_id,
            reservations.c.idempotency_key == idempotency_key,
        )
        .exists()
    )
    locked = (
        select(accounts.c.user_id)
        .where(enabled, accounts.c.user_id == user_id, ~key_exists)
        .with_for_update(of=accounts)
        .cte("account_lock")
    )
    return select(locked.c.user_id).exists()


#: What the account has available now (a refused hold's number, when its statement's
#: snapshot was older than the row version that refused it).
PG_AVAILABLE = PgStatement(
    sql="""
SELECT LEAST(a.balance - a.reserved, (
    SELECT COALESCE(SUM(l.remaining - l.held), 0) FROM token_lots AS l
    WHERE l.user_id = a.user_id AND (l.expires_at IS NULL OR l.expires_at > $2)
)) AS available
FROM token_accounts AS a WHERE a.user_id = $1
""",
    params=("user_id", "now"),
)

#: Resolve a pending, unexpired hold, move it from ``reserved`` to the balance and write
#: the ``deduction`` — one statement, which also returns the account's ``reserved`` after
#: it (with the entry's ``balance_after``: what is left to spend). ``resolved`` is false
#: when the hold was not pending and unexpired (resolves once, guarantee 6):
#: :data:`PG_COMMIT_REFUSED` then says why. ``$4`` charges less than the hold (a partial
#: commit; NULL charges it all): the whole hold leaves ``reserved``, ``$4`` leaves the
#: balance, and the rest is available again.
PG_COMMIT_PARAMS = ("reservation_id", "now", "description", "tokens")


def commit_steps(gate: str | None = None) -> str:
    """:data:`PG_COMMIT`'s steps (its CTEs, without ``WITH``), for another statement to
    ride on: the hold resolves only when ``gate`` (SQL over the rider's earlier CTEs)
    holds. ``$1``..``$4`` are :data:`PG_COMMIT_PARAMS`; the rider's parameters follow.
    Its outcome is read from the columns :data:`COMMIT_RESULT` names
    (:func:`commit_outcome_pg`)."""
    gate = "" if gate is None else f" AND {gate}"
    return f"""locked AS (
    -- Lock order: the account row first, then the hold and the lots, as everywhere in
    -- the ledger.
    SELECT a.user_id FROM token_accounts AS a
    WHERE a.user_id = (SELECT r.user_id FROM token_reservations AS r WHERE r.id = $1)
    FOR UPDATE
), resolved AS (
    UPDATE token_reservations SET status = {_COMMITTED}, resolved_at = $2
    WHERE id = $1 AND status = {_PENDING} AND expires_at > $2
      AND amount >= COALESCE($4::bigint, amount)
      AND EXISTS (SELECT FROM locked){gate}
    RETURNING id, user_id, amount, COALESCE($4::bigint, amount) AS charged
), backing AS (
    -- The hold's allocation, locked (so: newest versions) after the account. Its lots
    -- are not locked here: only their priority and expires_at are read, which never
    -- change, and lots_taken's UPDATE locks each and works on its newest version.
    SELECT rl.lot_id, rl.amount AS part, l.priority, l.expires_at
    FROM token_reservation_lots AS rl JOIN token_lots AS l ON l.id = rl.lot_id
    WHERE rl.reservation_id = (SELECT id FROM resolved) AND rl.amount > 0
    FOR UPDATE OF rl
), takes AS (
    -- The charge comes from the allocation in the spend order; all of it leaves held.
    SELECT b.lot_id, b.part, GREATEST(LEAST(b.part, s.charged - (b.upto - b.part)), 0) AS take
    FROM (
        SELECT lot_id, part,
               SUM(part) OVER (ORDER BY priority, expires_at NULLS LAST, lot_id) AS upto
        FROM backing
    ) AS b, resolved AS s
), lots_taken AS (
    UPDATE token_lots AS l SET remaining = l.remaining - t.take, held = l.held - t.part
    FROM takes AS t WHERE l.id = t.lot_id
), moved AS (
    -- One row at most (``id`` is the key): scalar subqueries keep this a key lookup of
    -- the account, where a join made the planner hash the whole accounts table.
    UPDATE token_accounts AS a
    SET balance = a.balance - (SELECT charged FROM resolved),
        reserved = a.reserved - (SELECT amount FROM resolved), updated_at = $2
    WHERE a.user_id = (SELECT user_id FROM resolved)
    RETURNING a.user_id, a.balance, a.reserved, $1::bigint AS reservation_id,
              (SELECT charged FROM resolved) AS amount
), posted AS (
    INSERT INTO token_transactions
        (user_id, transaction_type, amount, balance_after, description,
         idempotency_key, reservation_id, created_at)
    SELECT user_id, {_DEDUCTION}, -amount, balance, $3,
           {keys.committed_hold_sql("reservation_id")}, reservation_id, $2
    FROM moved
    ON CONFLICT DO NOTHING
    RETURNING {_TX}
), lot_moves AS (
    INSERT INTO token_lot_moves (lot_id, transaction_id, amount, created_at)
    SELECT t.lot_id, p.id, -t.take, $2 FROM takes AS t, posted AS p WHERE t.take > 0
)"""


#: What the commit's steps say: whether the hold resolved, the account's ``reserved``
#: after it, what the allocation fell short of the charge, and the entry (``posted``).
COMMIT_RESULT = """EXISTS (SELECT FROM resolved) AS resolved,
       (SELECT reserved FROM moved) AS reserved_after,
       (SELECT charged FROM resolved) - (SELECT COALESCE(SUM(take), 0) FROM takes) AS short"""

PG_COMMIT = PgStatement(
    sql=f"""
WITH {commit_steps()}
SELECT {COMMIT_RESULT},
       posted.*
FROM (VALUES (1)) AS one LEFT JOIN posted ON true
""",
    params=PG_COMMIT_PARAMS,
)

#: Why a commit resolved nothing: the hold's status now (a statement of its own, so it
#: sees what committed while the commit waited for the account's lock) and, for a
#: committed hold, its deduction — by its key, which the (user_id, idempotency_key)
#: index finds at once; nothing indexes reservation_id.
PG_COMMIT_REFUSED = PgStatement(
    sql=f"""
SELECT r.status AS reservation_status, {_column_list(ENTRY_FIELDS, "t")}
FROM token_reservations AS r
LEFT JOIN token_transactions AS t
    ON r.status = {_COMMITTED} AND t.user_id = r.user_id
   AND t.idempotency_key = {keys.committed_hold_sql("r.id")}
WHERE r.id = $1
""",
    params=("reservation_id",),
)

#: Give a pending hold back: lock the account, resolve the hold, lower ``reserved``, and
#: give its allocation back to its lots.
PG_RELEASE = PgStatement(
    sql=f"""
WITH locked AS (
    SELECT a.user_id FROM token_accounts AS a
    WHERE a.user_id = (SELECT r.user_id FROM token_reservations AS r WHERE r.id = $1)
    FOR UPDATE
), resolved AS (
    UPDATE token_reservations SET status = {_RELEASED}, resolved_at = $2
    WHERE id = $1 AND status = {_PENDING} AND EXISTS (SELECT FROM locked)
    RETURNING id, user_id, amount
), moved AS (
    UPDATE token_accounts AS a
    SET reserved = a.reserved - (SELECT amount FROM resolved), updated_at = $2
    WHERE a.user_id = (SELECT user_id FROM resolved)
    RETURNING a.user_id
), backing AS (
    SELECT lot_id, amount FROM token_reservation_lots
    WHERE reservation_id = (SELECT id FROM resolved) AND amount > 0
    FOR UPDATE
), unheld AS (
    UPDATE token_lots AS l SET held = l.held - b.amount
    FROM backing AS b WHERE l.id = b.lot_id
)
SELECT EXISTS (SELECT FROM moved) AS released
""",
    params=("reservation_id", "now"),
)

#: Why a release resolved nothing: the hold's status now, if it exists.
PG_RESERVATION_STATUS = PgStatement(
    sql="SELECT status FROM token_reservations WHERE id = $1", params=("reservation_id",)
)


#: A hold's amount (a partial commit is checked against it; the amount never changes).
PG_RESERVATION_AMOUNT = PgStatement(
    sql="SELECT amount FROM token_reservations WHERE id = $1", params=("reservation_id",)
)


async def reservation_amount(unit: Unit, reservation_id: int) -> int | None:
    """The hold's amount, in either kind of unit; None when there is no such hold."""
    if is_postgresql(unit):
        row = await PG_RESERVATION_AMOUNT.first(unit, reservation_id)
        return None if row is None else int(row["amount"])
    return await call_sync(unit, _reservation_amount_sqlite, reservation_id)


def _reservation_amount_sqlite(conn: Any, reservation_id: int) -> int | None:
    row = LITE_HOLD_BY_ID.first(conn, {"reservation_id": reservation_id})
    return None if row is None else int(row["amount"])


def is_postgresql(session: Unit) -> bool:
    if isinstance(session, DriverTransaction):
        return True
    if isinstance(session, SqliteTransaction):
        return False
    return session.get_bind().dialect.name == "postgresql"


async def reserve_pg(
    unit: Unit,
    user_id: int,
    tokens: int,
    idempotency_key: str,
    description: str,
    now: datetime,
    expires_at: datetime,
    *,
    durable: bool,
    account_locked: bool = False,
) -> ReserveOutcome:
    """PostgreSQL's reserve: the account's lock (:data:`PG_LOCK_ACCOUNT`, unless an earlier
    statement of the unit took it: ``account_locked``, see :func:`account_lock`), then one
    statement (two when the key races a concurrent hold)."""
    statement = PG_RESERVE if durable else PG_RESERVE_RELAXED
    args = (user_id, tokens, idempotency_key, description, now, expires_at)
    if not account_locked:
        await PG_LOCK_ACCOUNT.first(unit, user_id, idempotency_key)
    row = await statement.first(unit, *args)
    assert row is not None  # the statement always returns its one row
    if _stale_refusal(row, tokens):
        # Refused while the statement's own numbers say enough: its snapshot missed a
        # commit (a newer account version, or a new lot). Once more, with a new snapshot.
        row = await statement.first(unit, *args)
        assert row is not None
    if row["id"] is not None:
        if row["held"]:
            return Held(row)
        return Replayed(row) if row["amount"] == tokens else KeyReused(row)
    if row["held"]:
        first = await PG_RESERVE_RACED.first(unit, user_id, tokens, idempotency_key, now)
        if first is None:  # pragma: no cover - the unique index fired, so the row exists
            raise RuntimeError("reservation conflicted but cannot be found")
        return Replayed(first) if first["amount"] == tokens else KeyReused(first)
    if row["available"] is None:
        return NoAccount()
    available = min(int(row["available"]), int(row["lots_free"]))
    if _stale_refusal(row, tokens):
        # Still: read what is available now (a statement of its own sees every commit so
        # far), so the refusal reports a true number.
        now_row = await PG_AVAILABLE.first(unit, user_id, now)
        if now_row is None:
            return NoAccount()
        available = int(now_row["available"])
    return Refused(available=available, required=tokens)


def _stale_refusal(row: Mapping[str, Any], tokens: int) -> bool:
    """Refused, though the account (as the statement read it) had enough available."""
    return (
        row["id"] is None
        and not row["held"]
        and row["available"] is not None
        and int(row["available"]) >= tokens
    )


async def commit_pg(
    unit: Unit, reservation_id: int, description: str, now: datetime, tokens: int | None = None
) -> CommitOutcome:
    """PostgreSQL's commit: one statement; a second, on the driver too, says why not.

    ``tokens`` (at most the hold's amount; None: all of it) is what the deduction takes."""
    row = await PG_COMMIT.first(unit, reservation_id, now, description, tokens)
    assert row is not None
    return await commit_outcome_pg(unit, reservation_id, row)


async def commit_outcome_pg(
    unit: Unit, reservation_id: int, row: Mapping[str, Any]
) -> CommitOutcome:
    """The outcome of :func:`commit_steps` from its statement's row (:data:`COMMIT_RESULT`
    and the entry's columns); a second statement says why when nothing resolved."""
    if row["id"] is not None:
        return Committed(row, int(row["reserved_after"]), int(row["short"]))
    if row["resolved"]:
        return KeyTaken()
    why = await PG_COMMIT_REFUSED.first(unit, reservation_id)
    return _commit_refused(why)


def _commit_refused(why: Mapping[str, Any] | None) -> CommitOutcome:
    if why is None:
        return NotFound()
    status = why["reservation_status"]
    if status == ReservationStatus.COMMITTED:
        return Replayed(why)
    if status == ReservationStatus.RELEASED:
        return AlreadyResolved(status)
    return Expired()  # expired by the sweeper, or pending past its expires_at


async def release_pg(unit: Unit, reservation_id: int, now: datetime) -> ReleaseOutcome:
    """PostgreSQL's release: one statement; a second says why not."""
    row = await PG_RELEASE.first(unit, reservation_id, now)
    assert row is not None
    if row["released"]:
        return Released()
    current = await PG_RESERVATION_STATUS.first(unit, reservation_id)
    return NotFound() if current is None else AlreadyResolved(current["status"])


# --- SQLite: each step's statements in one trip to the connection (BEGIN IMMEDIATE:
# writers are serial) -------------------------------------------------------------------
#
# Each step is one synchronous function over the unit's connection, run by
# ``db.call_sync``: on SQLite's driver unit all its statements cost one trip to the
# connection's thread; in a session they run through ``run_sync``. The statements are
# compiled once, here.

_now = bindparam("now", type_=accounts.c.updated_at.type)

#: The one conditional UPDATE of a hold (guarantee 3): check and change in one statement.
LITE_HOLD = SqliteStatement(
    update(accounts)
    .where(
        accounts.c.user_id == bindparam("user_id"),
        accounts.c.balance - accounts.c.reserved >= bindparam("tokens"),
    )
    .values(reserved=accounts.c.reserved + bindparam("tokens"), updated_at=_now)
    .returning(accounts.c.balance)
)
#: Move ``balance`` and ``reserved`` unconditionally (a hold given back, a commit).
LITE_MOVE = SqliteStatement(
    update(accounts)
    .where(accounts.c.user_id == bindparam("user_id"))
    .values(
        balance=accounts.c.balance + bindparam("balance_delta"),
        reserved=accounts.c.reserved + bindparam("reserved_delta"),
        updated_at=_now,
    )
    .returning(accounts.c.balance, accounts.c.reserved)
)
LITE_INSERT_HOLD = SqliteStatement(
    sqlite.insert(reservations)
    .on_conflict_do_nothing()
    .values(
        user_id=bindparam("user_id"),
        amount=bindparam("tokens"),
        status=ReservationStatus.PENDING,
        idempotency_key=bindparam("idempotency_key"),
        description=bindparam("description"),
        expires_at=bindparam("expires_at", type_=reservations.c.expires_at.type),
        created_at=_now,
    )
    .returning(*RESERVATION_COLUMNS)
)
LITE_HOLD_BY_KEY = SqliteStatement(
    select(*RESERVATION_COLUMNS).where(
        reservations.c.user_id == bindparam("user_id"),
        reservations.c.idempotency_key == bindparam("idempotency_key"),
    )
)
LITE_HOLD_BY_ID = SqliteStatement(
    select(*RESERVATION_COLUMNS).where(reservations.c.id == bindparam("reservation_id"))
)
LITE_AVAILABLE = SqliteStatement(
    select((accounts.c.balance - accounts.c.reserved).label("available")).where(
        accounts.c.user_id == bindparam("user_id")
    )
)
#: Resolve a pending hold once (guarantee 6); the commit's also only while unexpired.
LITE_RESOLVE = SqliteStatement(
    update(reservations)
    .where(
        reservations.c.id == bindparam("reservation_id"),
        reservations.c.status == ReservationStatus.PENDING,
        reservations.c.expires_at > _now,
    )
    .values(status=bindparam("status"), resolved_at=_now)
    .returning(reservations.c.user_id, reservations.c.amount)
)
LITE_RESOLVE_ANY_TIME = SqliteStatement(
    update(reservations)
    .where(
        reservations.c.id == bindparam("reservation_id"),
        reservations.c.status == ReservationStatus.PENDING,
    )
    .values(status=bindparam("status"), resolved_at=_now)
    .returning(reservations.c.user_id, reservations.c.amount)
)
LITE_INSERT_DEDUCTION = SqliteStatement(
    sqlite.insert(transactions)
    .on_conflict_do_nothing()
    .values(
        user_id=bindparam("user_id"),
        transaction_type=TransactionType.DEDUCTION,
        amount=bindparam("amount"),
        balance_after=bindparam("balance_after"),
        description=bindparam("description"),
        idempotency_key=bindparam("idempotency_key"),
        reservation_id=bindparam("reservation_id"),
        created_at=_now,
    )
    .returning(*TX_COLUMNS)
)
#: An account's lots with free tokens (the live ones are chosen in Python: lots.allocate).
LITE_FREE_LOTS = SqliteStatement(
    select(
        lot_table.c.id,
        lot_table.c.remaining,
        lot_table.c.held,
        lot_table.c.priority,
        lot_table.c.expires_at,
    ).where(
        lot_table.c.user_id == bindparam("user_id"),
        lot_table.c.remaining > lot_table.c.held,
    )
)
LITE_INSERT_ALLOCATION = SqliteStatement(
    sqlite.insert(allocation_table).values(
        reservation_id=bindparam("reservation_id"),
        lot_id=bindparam("lot_id"),
        amount=bindparam("part"),
    )
)
#: Move a lot's ``remaining`` and ``held`` (a hold's allocation, a commit's take).
LITE_LOT_MOVE = SqliteStatement(
    update(lot_table)
    .where(lot_table.c.id == bindparam("lot_id"))
    .values(
        remaining=lot_table.c.remaining - bindparam("take"),
        held=lot_table.c.held + bindparam("held_delta"),
    )
)
LITE_INSERT_LOT_MOVE = SqliteStatement(
    sqlite.insert(lot_move_table).values(
        lot_id=bindparam("lot_id"),
        transaction_id=bindparam("transaction_id"),
        amount=bindparam("amount"),
        created_at=_now,
    )
)
#: A hold's allocation, with what the spend order needs of each lot.
LITE_ALLOCATION = SqliteStatement(
    select(
        lot_table.c.id,
        allocation_table.c.amount.label("part"),
        lot_table.c.priority,
        lot_table.c.expires_at,
    )
    .select_from(allocation_table.join(lot_table, lot_table.c.id == allocation_table.c.lot_id))
    .where(
        allocation_table.c.reservation_id == bindparam("reservation_id"),
        allocation_table.c.amount > 0,
    )
)
LITE_ENTRY_BY_KEY = SqliteStatement(
    select(*TX_COLUMNS).where(
        transactions.c.user_id == bindparam("user_id"),
        transactions.c.idempotency_key == bindparam("idempotency_key"),
    )
)


def _reserve_sqlite(
    conn: Any,
    user_id: int,
    tokens: int,
    idempotency_key: str,
    description: str,
    now: datetime,
    expires_at: datetime,
) -> ReserveOutcome:
    """SQLite's reserve: the conditional UPDATE, the live lots' free tokens, then the
    INSERT and its allocation (lots.allocate)."""
    values = {
        "user_id": user_id,
        "tokens": tokens,
        "idempotency_key": idempotency_key,
        "description": description,
        "now": now,
        "expires_at": expires_at,
    }
    on_hold = LITE_HOLD.first(conn, values) is not None
    parts = lots.allocate(LITE_FREE_LOTS.all(conn, values), tokens, now)
    lots_free = sum(part for _, part in parts)
    if on_hold and lots_free >= tokens:
        created = LITE_INSERT_HOLD.first(conn, values)
        if created is not None:
            for lot_id, part in parts:
                LITE_INSERT_ALLOCATION.first(
                    conn, {"reservation_id": created["id"], "lot_id": lot_id, "part": part}
                )
                LITE_LOT_MOVE.first(conn, {"lot_id": lot_id, "take": 0, "held_delta": part})
            return Held(created)
    if on_hold:
        # The key exists, or the lots cannot cover it: give back the hold taken a moment
        # ago in this transaction.
        LITE_MOVE.first(
            conn, {"user_id": user_id, "balance_delta": 0, "reserved_delta": -tokens, "now": now}
        )
    prior = LITE_HOLD_BY_KEY.first(conn, values)
    if prior is not None:
        return Replayed(prior) if prior["amount"] == tokens else KeyReused(prior)
    account = LITE_AVAILABLE.first(conn, values)
    if account is None:
        return NoAccount()
    return Refused(available=min(int(account["available"]), lots_free), required=tokens)


async def reserve_sqlite(
    unit: Unit,
    user_id: int,
    tokens: int,
    idempotency_key: str,
    description: str,
    now: datetime,
    expires_at: datetime,
) -> ReserveOutcome:
    """SQLite's reserve, one trip (see :func:`_reserve_sqlite`)."""
    return await call_sync(
        unit, _reserve_sqlite, user_id, tokens, idempotency_key, description, now, expires_at
    )


def _commit_sqlite(
    conn: Any, reservation_id: int, description: str, now: datetime, tokens: int | None
) -> CommitOutcome:
    """SQLite's commit: resolve the hold, move it to the balance, write the deduction
    (of ``tokens``, at most the hold's amount; None: all of it)."""
    values: dict[str, Any] = {
        "reservation_id": reservation_id,
        "status": ReservationStatus.COMMITTED,
        "now": now,
    }
    found = LITE_RESOLVE.first(conn, values)
    if found is None:
        return _commit_refused(_commit_refused_sqlite(conn, reservation_id))
    amount = int(found["amount"])
    charged = amount if tokens is None else tokens
    assert 0 < charged <= amount  # the service checked it against the hold
    moved = LITE_MOVE.first(
        conn,
        {
            "user_id": found["user_id"],
            "balance_delta": -charged,
            "reserved_delta": -amount,
            "now": now,
        },
    )
    assert moved is not None  # the hold's account exists (a foreign key)
    entry = LITE_INSERT_DEDUCTION.first(
        conn,
        {
            "user_id": found["user_id"],
            "amount": -charged,
            "balance_after": moved["balance"],
            "description": description,
            "idempotency_key": keys.committed_hold(reservation_id),
            "reservation_id": reservation_id,
            "now": now,
        },
    )
    if entry is None:
        return KeyTaken()
    allocation = LITE_ALLOCATION.all(conn, {"reservation_id": reservation_id})
    taken = 0
    for lot_id, part, take in lots.commit_takes(allocation, charged):
        LITE_LOT_MOVE.first(conn, {"lot_id": lot_id, "take": take, "held_delta": -part})
        if take:
            LITE_INSERT_LOT_MOVE.first(
                conn,
                {"lot_id": lot_id, "transaction_id": entry["id"], "amount": -take, "now": now},
            )
        taken += take
    return Committed(entry, int(moved["reserved"]), charged - taken)


async def commit_sqlite(
    unit: Unit,
    reservation_id: int,
    description: str,
    now: datetime,
    tokens: int | None = None,
) -> CommitOutcome:
    """SQLite's commit, one trip (see :func:`_commit_sqlite`)."""
    return await call_sync(unit, _commit_sqlite, reservation_id, description, now, tokens)


def _commit_refused_sqlite(conn: Any, reservation_id: int) -> Mapping[str, Any] | None:
    current = LITE_HOLD_BY_ID.first(conn, {"reservation_id": reservation_id})
    if current is None:
        return None
    if current["status"] != ReservationStatus.COMMITTED:
        return {"reservation_status": current["status"]}
    done = LITE_ENTRY_BY_KEY.first(
        conn,
        {"user_id": current["user_id"], "idempotency_key": keys.committed_hold(reservation_id)},
    )
    assert done is not None  # the deduction commits with the hold's status
    return {"reservation_status": ReservationStatus.COMMITTED, **done}


def _release_sqlite(conn: Any, reservation_id: int, now: datetime) -> ReleaseOutcome:
    """SQLite's release: resolve the hold, then lower ``reserved``."""
    values: dict[str, Any] = {
        "reservation_id": reservation_id,
        "status": ReservationStatus.RELEASED,
        "now": now,
    }
    row = LITE_RESOLVE_ANY_TIME.first(conn, values)
    if row is not None:
        LITE_MOVE.first(
            conn,
            {
                "user_id": row["user_id"],
                "balance_delta": 0,
                "reserved_delta": -int(row["amount"]),
                "now": now,
            },
        )
        for lot in LITE_ALLOCATION.all(conn, values):
            LITE_LOT_MOVE.first(conn, {"lot_id": lot["id"], "take": 0, "held_delta": -lot["part"]})
        return Released()
    current = LITE_HOLD_BY_ID.first(conn, values)
    return NotFound() if current is None else AlreadyResolved(str(current["status"]))


async def release_sqlite(unit: Unit, reservation_id: int, now: datetime) -> ReleaseOutcome:
    """SQLite's release, one trip (see :func:`_release_sqlite`)."""
    return await call_sync(unit, _release_sqlite, reservation_id, now)
