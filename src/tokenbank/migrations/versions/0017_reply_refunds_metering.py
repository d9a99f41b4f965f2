"""reply refunds (a `refund` ledger entry per refunded AI reply) and metered features' holds"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0017"
down_revision: str | None = "0016"


# Written out rather than imported: a migration must not change when the code does.
REFUND_REASONS = ("wrong", "incomplete", "harmful", "other")


def upgrade() -> None:
    _ops.transaction_types(_ops.TRANSACTION_TYPES_0017)
    op.create_table(
        "reply_refunds",
        _ops.id_column(),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.CheckConstraint("tokens > 0", name=op.f("ck_reply_refunds_tokens_positive")),
        sa.CheckConstraint(
            _ops.in_list("reason", REFUND_REASONS), name=op.f("ck_reply_refunds_reason_known")
        ),
        _ops.fk("reply_refunds", "message_id", "messages", ondelete="CASCADE"),
        _ops.fk("reply_refunds", "user_id", "users"),
        _ops.fk("reply_refunds", "transaction_id", "token_transactions"),
        _ops.pk("reply_refunds", "id"),
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
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_meter_holds_quantity_positive")),
        sa.CheckConstraint("unit_tokens > 0", name=op.f("ck_meter_holds_unit_tokens_positive")),
        _ops.fk("meter_holds", "reservation_id", "token_reservations", ondelete="CASCADE"),
        _ops.fk("meter_holds", "user_id", "users"),
        _ops.pk("meter_holds", "reservation_id"),
    )


def downgrade() -> None:
    op.drop_table("meter_holds")
    op.drop_index("ix_reply_refunds_created_at", table_name="reply_refunds")
    op.drop_index("ix_reply_refunds_user_id_created_at", table_name="reply_refunds")
    op.drop_table("reply_refunds")
    # Refund entries must go before the CHECK can refuse them; the ledger is append-only,
    # so a downgrade with refunds recorded fails here rather than losing them.
    _ops.transaction_types(_ops.TRANSACTION_TYPES_0013)
