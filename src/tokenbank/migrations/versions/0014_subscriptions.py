"""subscriptions: our mirror of Stripe subscriptions and their invoices (one allotment
per paid invoice)
"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0014"
down_revision: str | None = "0013"


_SUB_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
_INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_PROBLEMS = ("payment_failed", "requires_action")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("scheduled_plan", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("problem", sa.String(length=32), nullable=True),
        sa.Column("current_period_start", _ops.TS, nullable=True),
        sa.Column("current_period_end", _ops.TS, nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("latest_invoice_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_read_at", _ops.TS, nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        sa.CheckConstraint(
            _ops.in_list("status", _SUB_STATUSES), name=op.f("ck_subscriptions_status_known")
        ),
        sa.CheckConstraint(
            _ops.in_list("problem", _PROBLEMS, nullable=True),
            name=op.f("ck_subscriptions_problem_known"),
        ),
        _ops.fk("subscriptions", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("subscriptions", "id"),
    )
    op.create_index("ix_subscriptions_user_id", "subscriptions", ["user_id"])
    op.create_table(
        "subscription_invoices",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("billing_reason", sa.String(length=64), nullable=True),
        sa.Column("plan", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("amount_returned", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("tokens_granted", sa.BigInteger(), nullable=False),
        sa.Column("reversed_tokens", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", _ops.TS, nullable=True),
        sa.Column("stripe_read_at", _ops.TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        sa.CheckConstraint(
            _ops.in_list("status", _INVOICE_STATUSES),
            name=op.f("ck_subscription_invoices_status_known"),
        ),
        _ops.fk("subscription_invoices", "subscription_id", "subscriptions", ondelete="CASCADE"),
        _ops.fk("subscription_invoices", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("subscription_invoices", "id"),
    )
    op.create_index(
        "ix_subscription_invoices_subscription_id", "subscription_invoices", ["subscription_id"]
    )
    op.create_index(
        "ix_subscription_invoices_payment_intent_id",
        "subscription_invoices",
        ["payment_intent_id"],
    )


def downgrade() -> None:
    op.drop_table("subscription_invoices")
    op.drop_table("subscriptions")
