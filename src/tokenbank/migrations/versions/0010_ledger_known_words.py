"""ledger: CHECK constraints for transaction types and reservation statuses"""

from alembic import op

from tokenbank.migrations import _ops

revision: str = "0010"
down_revision: str | None = "0008"

# Written out rather than imported: a migration must not change when the code does.
RESERVATION_STATUSES = ("pending", "committed", "released", "expired")


def upgrade() -> None:
    _ops.transaction_types(_ops.TRANSACTION_TYPES_0010, drop=False)
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_token_reservations_status_known"), _ops.in_list("status", RESERVATION_STATUSES)
        )


def downgrade() -> None:
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_token_reservations_status_known"), type_="check")
    _ops.transaction_types(None)
