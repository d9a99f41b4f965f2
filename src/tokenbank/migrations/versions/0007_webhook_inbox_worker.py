"""webhook inbox applied by a worker: claims, backoff, dead letters, known statuses"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0007"
down_revision: str | None = "0006"

# Written out rather than imported: a migration must not change when the code does.
STATUSES = ("received", "processing", "handled", "ignored", "failed", "unprocessable", "dead")
STATUS_KNOWN = _ops.in_list("status", STATUSES)


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_charge_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", _ops.TS, nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", _ops.TS, nullable=True))
        batch_op.create_check_constraint(op.f("ck_webhook_events_status_known"), STATUS_KNOWN)
        batch_op.create_check_constraint(
            op.f("ck_webhook_events_attempts_non_negative"), "attempts >= 0"
        )
        batch_op.create_index(
            "ix_webhook_events_status_next_attempt_at",
            ["status", "next_attempt_at"],
            unique=False,
        )
    # Events recorded before the worker existed and not done yet: due now.
    op.execute(
        "UPDATE webhook_events SET next_attempt_at = received_at "
        "WHERE status IN ('received', 'failed')"
    )


def downgrade() -> None:
    op.execute("UPDATE webhook_events SET status = 'failed' WHERE status IN ('processing', 'dead')")
    op.execute("UPDATE webhook_events SET status = 'ignored' WHERE status = 'unprocessable'")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_status_next_attempt_at")
        batch_op.drop_constraint(op.f("ck_webhook_events_attempts_non_negative"), type_="check")
        batch_op.drop_constraint(op.f("ck_webhook_events_status_known"), type_="check")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("stripe_charge_id")
