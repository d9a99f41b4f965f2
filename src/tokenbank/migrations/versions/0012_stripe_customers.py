"""payments: one Stripe Customer per user (subscriptions and saved cards hang off it)"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0012"
down_revision: str | None = "0011"


def upgrade() -> None:
    op.create_table(
        "stripe_customers",
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("test_clock_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        _ops.fk("stripe_customers", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("stripe_customers", "user_id"),
        sa.UniqueConstraint("customer_id", name=op.f("uq_stripe_customers_customer_id")),
    )


def downgrade() -> None:
    op.drop_table("stripe_customers")
