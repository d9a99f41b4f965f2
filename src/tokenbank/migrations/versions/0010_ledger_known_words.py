"""ledger: CHECK constraints for transaction types and reservation statuses

Revision ID: 0010
Revises: 0008
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported: a migration must not change when the code does.
TRANSACTION_TYPES = (
    "purchase",
    "deduction",
    "grant",
    "adjustment",
    "purchase_reversal",
    "purchase_reinstatement",
)
RESERVATION_STATUSES = ("pending", "committed", "released", "expired")


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


@contextmanager
def _sqlite_triggers_kept(table: str) -> Iterator[None]:
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


def upgrade() -> None:
    with (
        _sqlite_triggers_kept("token_transactions"),
        op.batch_alter_table("token_transactions", schema=None) as batch_op,
    ):
        batch_op.create_check_constraint(
            op.f("ck_token_transactions_transaction_type_known"),
            _in("transaction_type", TRANSACTION_TYPES),
        )
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_token_reservations_status_known"), _in("status", RESERVATION_STATUSES)
        )


def downgrade() -> None:
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_token_reservations_status_known"), type_="check")
    with (
        _sqlite_triggers_kept("token_transactions"),
        op.batch_alter_table("token_transactions", schema=None) as batch_op,
    ):
        batch_op.drop_constraint(
            op.f("ck_token_transactions_transaction_type_known"), type_="check"
        )
