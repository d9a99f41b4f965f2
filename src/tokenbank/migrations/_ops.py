"""Pieces the migrations share: column types, constraint names, CHECK lists, and SQLite's
trigger-keeping table rebuild.

Frozen like the migrations themselves: every migration that calls one of these produces
its schema through it, so what a helper produces must never change (a new need gets a new
helper). Nothing here imports the application's models or enums, for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op

import tokenbank.types

#: Surrogate key: BIGINT on PostgreSQL, INTEGER on SQLite (its rowid alias).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = tokenbank.types.UTCDateTime(timezone=True)

TRANSACTION_TYPE_CHECK = "ck_token_transactions_transaction_type_known"
#: The ledger's transaction types as each of these migrations left them (written out rather
#: than imported from the code: a migration must not change when the code does).
TRANSACTION_TYPES_0010 = (
    "purchase",
    "deduction",
    "grant",
    "adjustment",
    "purchase_reversal",
    "purchase_reinstatement",
)
TRANSACTION_TYPES_0013 = (*TRANSACTION_TYPES_0010, "allotment", "allotment_reversal", "expiry")
TRANSACTION_TYPES_0017 = (*TRANSACTION_TYPES_0013, "refund")


def id_column() -> sa.Column[int]:
    """The surrogate key column ``id`` (a new one for each table)."""
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def in_list(column: str, values: Sequence[str], *, nullable: bool = False) -> str:
    """The CHECK condition "column is one of values" (or NULL, when ``nullable``)."""
    condition = "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))
    return f"{column} IS NULL OR {condition}" if nullable else condition


def pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def fk(table: str, column: str, target: str, **kw: Any) -> sa.ForeignKeyConstraint:
    """``table.column`` references ``target.id``, named by the metadata's convention."""
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), **kw
    )


@contextmanager
def sqlite_triggers_kept(table: str) -> Iterator[None]:
    """SQLite's batch mode rebuilds the table, and its triggers go with the old one (the
    append-only ones of 0002): make them again, as they were, on the rebuilt table."""
    bind = op.get_bind()
    kept: list[str] = []
    if bind.dialect.name == "sqlite":
        kept = [
            sql
            for (sql,) in bind.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            )
        ]
    yield
    for sql in kept:
        bind.exec_driver_sql(sql)


def transaction_types(values: Sequence[str] | None, *, drop: bool = True) -> None:
    """Set the ledger's transaction-type CHECK to ``values`` (``None``: no CHECK), dropping
    the one there first when ``drop``; the append-only triggers stay."""
    with (
        sqlite_triggers_kept("token_transactions"),
        op.batch_alter_table("token_transactions", schema=None) as batch_op,
    ):
        if drop:
            batch_op.drop_constraint(op.f(TRANSACTION_TYPE_CHECK), type_="check")
        if values is not None:
            batch_op.create_check_constraint(
                op.f(TRANSACTION_TYPE_CHECK), in_list("transaction_type", values)
            )
