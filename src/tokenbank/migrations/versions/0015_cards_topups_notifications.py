"""payments: auto top-up settings and attempts (one in flight per user); notifications"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0015"
down_revision: str | None = "0014"

_IN_FLIGHT = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "auto_topup_settings",
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("paused_reason", sa.String(length=64), nullable=True),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("monthly_max_count", sa.Integer(), nullable=False),
        sa.Column("monthly_max_amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("action_url", sa.Text(), nullable=True),
        sa.Column("updated_at", _ops.TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('off', 'active', 'paused')",
            name=op.f("ck_auto_topup_settings_state_known"),
        ),
        sa.CheckConstraint(
            "threshold >= 0", name=op.f("ck_auto_topup_settings_threshold_non_negative")
        ),
        sa.CheckConstraint(
            "monthly_max_count >= 0", name=op.f("ck_auto_topup_settings_max_count_non_negative")
        ),
        sa.CheckConstraint(
            "monthly_max_amount >= 0",
            name=op.f("ck_auto_topup_settings_max_amount_non_negative"),
        ),
        _ops.fk("auto_topup_settings", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("auto_topup_settings", "user_id"),
    )
    op.create_table(
        "auto_topups",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("resolved_at", _ops.TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'succeeded', 'failed', 'action_required')",
            name=op.f("ck_auto_topups_state_known"),
        ),
        _ops.fk("auto_topups", "user_id", "users", ondelete="CASCADE"),
        _ops.fk("auto_topups", "payment_id", "payments"),
        _ops.pk("auto_topups", "id"),
    )
    op.create_index(
        "uq_auto_topups_one_in_flight",
        "auto_topups",
        ["user_id"],
        unique=True,
        postgresql_where=_IN_FLIGHT,
        sqlite_where=_IN_FLIGHT,
    )
    op.create_index("ix_auto_topups_user_id_created_at", "auto_topups", ["user_id", "created_at"])
    op.create_index("uq_auto_topups_payment_id", "auto_topups", ["payment_id"], unique=True)
    op.create_table(
        "notifications",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("read_at", _ops.TS, nullable=True),
        sa.Column("email_state", sa.String(length=16), nullable=False),
        sa.Column("emailed_at", _ops.TS, nullable=True),
        sa.CheckConstraint(
            "kind IN ('balance_low', 'topup_succeeded', 'topup_failed', 'topup_paused', "
            "'topup_disabled', 'lots_expiring', 'renewal_failed', 'subscription_renewed')",
            name=op.f("ck_notifications_kind_known"),
        ),
        sa.CheckConstraint(
            "email_state IN ('pending', 'sending', 'sent', 'skipped', 'failed')",
            name=op.f("ck_notifications_email_state_known"),
        ),
        _ops.fk("notifications", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("notifications", "id"),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])
    op.create_index("ix_notifications_email_state", "notifications", ["email_state"])
    op.create_table(
        "notification_settings",
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("low_balance_thresholds", sa.JSON(), nullable=False),
        sa.Column("email_alerts", sa.Boolean(), nullable=False),
        sa.Column("fired_thresholds", sa.JSON(), nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.fk("notification_settings", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("notification_settings", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("notification_settings")
    op.drop_index("ix_notifications_email_state", table_name="notifications")
    op.drop_index("ix_notifications_user_id_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("uq_auto_topups_payment_id", table_name="auto_topups")
    op.drop_index("ix_auto_topups_user_id_created_at", table_name="auto_topups")
    op.drop_index("uq_auto_topups_one_in_flight", table_name="auto_topups")
    op.drop_table("auto_topups")
    op.drop_table("auto_topup_settings")
