"""payments: status CHECKs, the mismatch shown to operators, the read time of the applied
Stripe state, and reconcile's events checkpoint

Revision ID: 0006
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tokenbank.types

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here (a migration must not change when the code's enums do).
PAYMENT_STATUSES = (
    "created",
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
    "failed",
)
DISPUTE_STATES = ("inquiry", "open", "funds_withdrawn", "won", "lost", "closed", "unknown")
MISMATCHES = ("amount_mismatch", "currency_mismatch", "metadata_mismatch")


def _in(column: str, values: Sequence[str], *, nullable: bool = False) -> str:
    condition = f"{column} IN ({', '.join(repr(v) for v in values)})"
    return f"{column} IS NULL OR {condition}" if nullable else condition


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_mismatch", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("stripe_read_at", tokenbank.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            op.f("ck_payments_status_known"), _in("status", PAYMENT_STATUSES)
        )
        batch_op.create_check_constraint(
            op.f("ck_payments_dispute_status_known"),
            _in("dispute_status", DISPUTE_STATES, nullable=True),
        )
        batch_op.create_check_constraint(
            op.f("ck_payments_stripe_mismatch_known"),
            _in("stripe_mismatch", MISMATCHES, nullable=True),
        )

    op.create_table(
        "reconcile_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_s", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", tokenbank.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reconcile_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_checkpoints")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_stripe_mismatch_known"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_dispute_status_known"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_status_known"), type_="check")
        batch_op.drop_column("stripe_read_at")
        batch_op.drop_column("stripe_mismatch")
