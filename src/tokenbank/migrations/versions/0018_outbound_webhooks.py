"""outbound webhooks: the operator's endpoints, the delivery outbox and its attempt log"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0018"
down_revision: str | None = "0017"

# Written out rather than imported: a migration must not change when the code does.
STATUSES = ("pending", "processing", "delivered", "failed", "dead", "canceled")
STATUS_KNOWN = _ops.in_list("status", STATUSES)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        _ops.id_column(),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("enabled_events", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("deleted_at", _ops.TS, nullable=True),
        _ops.pk("webhook_endpoints", "id"),
    )
    op.create_table(
        "webhook_deliveries",
        _ops.id_column(),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _ops.TS, nullable=True),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("claimed_until", _ops.TS, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("delivered_at", _ops.TS, nullable=True),
        sa.CheckConstraint(STATUS_KNOWN, name=op.f("ck_webhook_deliveries_status_known")),
        _ops.fk("webhook_deliveries", "endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        _ops.pk("webhook_deliveries", "id"),
    )
    op.create_index(
        "uq_webhook_deliveries_endpoint_event",
        "webhook_deliveries",
        ["endpoint_id", "event_id"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"]
    )
    op.create_table(
        "webhook_delivery_attempts",
        _ops.id_column(),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", _ops.TS, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ops.fk(
            "webhook_delivery_attempts", "delivery_id", "webhook_deliveries", ondelete="CASCADE"
        ),
        _ops.pk("webhook_delivery_attempts", "id"),
    )
    op.create_index(
        "ix_webhook_delivery_attempts_delivery_id", "webhook_delivery_attempts", ["delivery_id"]
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
