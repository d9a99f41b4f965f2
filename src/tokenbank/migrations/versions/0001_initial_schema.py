"""initial schema: accounts, ledger, payments, chats, rate limits"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("window_start", _ops.TS, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        _ops.pk("rate_limit_buckets", "key", "window_start"),
    )
    op.create_table(
        "users",
        _ops.id_column(),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        _ops.pk("users", "id"),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _ops.TS, nullable=False),
        sa.Column("processed_at", _ops.TS, nullable=True),
        _ops.pk("webhook_events", "id"),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_events_status_received_at", ["status", "received_at"], unique=False
        )

    op.create_table(
        "chats",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.fk("chats", "user_id", "users"),
        _ops.pk("chats", "id"),
    )
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.create_index("ix_chats_user_id_id", ["user_id", "id"], unique=False)

    op.create_table(
        "payments",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tokens_credited", sa.BigInteger(), nullable=False),
        sa.Column("reversed_tokens", sa.BigInteger(), nullable=False),
        sa.Column("amount_refunded_cents", sa.BigInteger(), nullable=False),
        sa.Column("dispute_status", sa.String(length=32), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.fk("payments", "user_id", "users"),
        _ops.pk("payments", "id"),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name=op.f("uq_payments_stripe_payment_intent_id")
        ),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_status", ["status"], unique=False)
        batch_op.create_index("ix_payments_user_id_id", ["user_id", "id"], unique=False)
        batch_op.create_index(
            "uq_payments_user_idempotency", ["user_id", "idempotency_key"], unique=True
        )

    op.create_table(
        "token_accounts",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_token_accounts_reserved_non_negative")),
        _ops.fk("token_accounts", "user_id", "users", ondelete="RESTRICT"),
        _ops.pk("token_accounts", "user_id"),
    )
    op.create_table(
        "token_reservations",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("expires_at", _ops.TS, nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("resolved_at", _ops.TS, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_token_reservations_amount_positive")),
        _ops.fk("token_reservations", "user_id", "users"),
        _ops.pk("token_reservations", "id"),
    )
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_token_reservations_status_expires_at", ["status", "expires_at"], unique=False
        )
        batch_op.create_index(
            "uq_token_reservations_user_idempotency", ["user_id", "idempotency_key"], unique=True
        )

    op.create_table(
        "token_transactions",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_type", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("reservation_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_token_transactions_amount_non_zero")),
        _ops.fk("token_transactions", "user_id", "users"),
        _ops.pk("token_transactions", "id"),
    )
    with op.batch_alter_table("token_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_token_transactions_user_id_id", ["user_id", "id"], unique=False)
        batch_op.create_index(
            "uq_token_transactions_purchase_pi",
            ["stripe_payment_intent_id"],
            unique=True,
            sqlite_where=sa.text("transaction_type = 'purchase'"),
            postgresql_where=sa.text("transaction_type = 'purchase'"),
        )
        batch_op.create_index(
            "uq_token_transactions_user_idempotency", ["user_id", "idempotency_key"], unique=True
        )

    op.create_table(
        "messages",
        _ops.id_column(),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tokens_charged", sa.Integer(), nullable=False),
        sa.Column("reply_to_id", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        _ops.fk("messages", "chat_id", "chats", ondelete="CASCADE"),
        _ops.pk("messages", "id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_chat_id_id", ["chat_id", "id"], unique=False)
        batch_op.create_index(
            "uq_messages_chat_role_idempotency", ["chat_id", "role", "idempotency_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("uq_messages_chat_role_idempotency")
        batch_op.drop_index("ix_messages_chat_id_id")

    op.drop_table("messages")
    with op.batch_alter_table("token_transactions", schema=None) as batch_op:
        batch_op.drop_index("uq_token_transactions_user_idempotency")
        batch_op.drop_index(
            "uq_token_transactions_purchase_pi",
            sqlite_where=sa.text("transaction_type = 'purchase'"),
            postgresql_where=sa.text("transaction_type = 'purchase'"),
        )
        batch_op.drop_index("ix_token_transactions_user_id_id")

    op.drop_table("token_transactions")
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.drop_index("uq_token_reservations_user_idempotency")
        batch_op.drop_index("ix_token_reservations_status_expires_at")

    op.drop_table("token_reservations")
    op.drop_table("token_accounts")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("uq_payments_user_idempotency")
        batch_op.drop_index("ix_payments_user_id_id")
        batch_op.drop_index("ix_payments_status")

    op.drop_table("payments")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_index("ix_chats_user_id_id")

    op.drop_table("chats")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_status_received_at")

    op.drop_table("webhook_events")
    op.drop_table("users")
    op.drop_table("rate_limit_buckets")
