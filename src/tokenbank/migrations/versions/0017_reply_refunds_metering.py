"""reply refunds (a `refund` ledger entry per refunded AI reply) and metered features' holds

Revision ID: 0017
Revises: 0011
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import tokenbank.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = tokenbank.types.UTCDateTime(timezone=True)

# Written out rather than imported: a migration must not change when the code does.
TRANSACTION_TYPES_BEFORE = (
    "purchase",
    "deduction",
    "grant",
    "adjustment",
    "purchase_reversal",
    "purchase_reinstatement",
    "allotment",
    "allotment_reversal",
    "expiry",
)
TRANSACTION_TYPES = (*TRANSACTION_TYPES_BEFORE, "refund")
REFUND_REASONS = ("wrong", "incomplete", "harmful", "other")
_TYPE_CHECK = "ck_token_transactions_transaction_type_known"


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


def _transaction_types(values: tuple[str, ...]) -> None:
    with (
        _sqlite_triggers_kept("token_transactions"),
        op.batch_alter_table("token_transactions", schema=None) as batch_op,
    ):
        batch_op.drop_constraint(op.f(_TYPE_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(_TYPE_CHECK), _in("transaction_type", values))


def upgrade() -> None:
    _transaction_types(TRANSACTION_TYPES)
    op.create_table(
        "reply_refunds",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("tokens > 0", name=op.f("ck_reply_refunds_tokens_positive")),
        sa.CheckConstraint(
            _in("reason", REFUND_REASONS), name=op.f("ck_reply_refunds_reason_known")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_reply_refunds_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reply_refunds_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["token_transactions.id"],
            name=op.f("fk_reply_refunds_transaction_id_token_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_refunds")),
        sa.UniqueConstraint("message_id", name=op.f("uq_reply_refunds_message_id")),
    )
    op.create_index(
        "ix_reply_refunds_user_id_created_at", "reply_refunds", ["user_id", "created_at"]
    )
    op.create_index("ix_reply_refunds_created_at", "reply_refunds", ["created_at"])
    op.create_table(
        "meter_holds",
        sa.Column("reservation_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_meter_holds_quantity_positive")),
        sa.CheckConstraint("unit_tokens > 0", name=op.f("ck_meter_holds_unit_tokens_positive")),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["token_reservations.id"],
            name=op.f("fk_meter_holds_reservation_id_token_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_meter_holds_user_id_users")
        ),
        sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_meter_holds")),
    )


def downgrade() -> None:
    op.drop_table("meter_holds")
    op.drop_index("ix_reply_refunds_created_at", table_name="reply_refunds")
    op.drop_index("ix_reply_refunds_user_id_created_at", table_name="reply_refunds")
    op.drop_table("reply_refunds")
    # Refund entries must go before the CHECK can refuse them; the ledger is append-only,
    # so a downgrade with refunds recorded fails here rather than losing them.
    _transaction_types(TRANSACTION_TYPES_BEFORE)
