"""subscriptions: our mirror of Stripe subscriptions and their invoices (one allotment
per paid invoice)

Revision ID: 0014
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tokenbank.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = tokenbank.types.UTCDateTime(timezone=True)

_SUB_STATUSES = (
    "incomplete", "incomplete_expired", "trialing", "active",
    "past_due", "canceled", "unpaid", "paused",
)
_INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_PROBLEMS = ("payment_failed", "requires_action")


def _in(column: str, values: Sequence[str], nullable: bool = False) -> str:
    condition = f"{column} IN ({', '.join(repr(v) for v in values)})"
    return f"{column} IS NULL OR {condition}" if nullable else condition


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("scheduled_plan", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("problem", sa.String(length=32), nullable=True),
        sa.Column("current_period_start", _TS, nullable=True),
        sa.Column("current_period_end", _TS, nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("latest_invoice_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_read_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            _in("status", _SUB_STATUSES), name=op.f("ck_subscriptions_status_known")
        ),
        sa.CheckConstraint(
            _in("problem", _PROBLEMS, nullable=True), name=op.f("ck_subscriptions_problem_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index("ix_subscriptions_user_id", "subscriptions", ["user_id"])
    op.create_table(
        "subscription_invoices",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
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
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("stripe_read_at", _TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            _in("status", _INVOICE_STATUSES), name=op.f("ck_subscription_invoices_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"],
            name=op.f("fk_subscription_invoices_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscription_invoices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_invoices")),
    )
    op.create_index(
        "ix_subscription_invoices_subscription_id", "subscription_invoices", ["subscription_id"]
    )
    op.create_index(
        "ix_subscription_invoices_payment_intent_id", "subscription_invoices",
        ["payment_intent_id"],
    )


def downgrade() -> None:
    op.drop_table("subscription_invoices")
    op.drop_table("subscriptions")
