"""payments: status CHECKs, the mismatch shown to operators, the read time of the applied
Stripe state, and reconcile's events checkpoint
"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0006"
down_revision: str | None = "0004"

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


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_mismatch", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("stripe_read_at", _ops.TS, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_payments_status_known"), _ops.in_list("status", PAYMENT_STATUSES)
        )
        batch_op.create_check_constraint(
            op.f("ck_payments_dispute_status_known"),
            _ops.in_list("dispute_status", DISPUTE_STATES, nullable=True),
        )
        batch_op.create_check_constraint(
            op.f("ck_payments_stripe_mismatch_known"),
            _ops.in_list("stripe_mismatch", MISMATCHES, nullable=True),
        )

    op.create_table(
        "reconcile_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_s", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.pk("reconcile_checkpoints", "name"),
    )


def downgrade() -> None:
    op.drop_table("reconcile_checkpoints")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payments_stripe_mismatch_known"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_dispute_status_known"), type_="check")
        batch_op.drop_constraint(op.f("ck_payments_status_known"), type_="check")
        batch_op.drop_column("stripe_read_at")
        batch_op.drop_column("stripe_mismatch")
