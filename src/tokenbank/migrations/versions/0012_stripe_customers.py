"""payments: one Stripe Customer per user (subscriptions and saved cards hang off it)

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tokenbank.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = tokenbank.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stripe_customers",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("test_clock_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stripe_customers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_stripe_customers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_stripe_customers_customer_id")),
    )


def downgrade() -> None:
    op.drop_table("stripe_customers")
