"""ledger: CHECK constraints for transaction types and reservation statuses

Revision ID: 0010
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported: a migration must not change when the code does.
TRANSACTION_TYPES = (
    "purchase",
    "deduction",
    "grant",
    "adjustment",
    "purchase_reversal",
    "purchase_reinstatement",
)
RESERVATION_STATUSES = ("pending", "committed", "released", "expired")


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def _sqlite_append_only_triggers() -> None:
    # SQLite's batch mode rebuilds the table, and its triggers go with the old one: put
    # back the ones 0002 made, so the ledger stays append-only.
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"""
            CREATE TRIGGER token_transactions_no_{action.lower()}
            BEFORE {action} ON token_transactions
            BEGIN
                SELECT RAISE(ABORT, 'token_transactions is append-only');
            END
            """
        )


def upgrade() -> None:
    with op.batch_alter_table("token_transactions", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_token_transactions_transaction_type_known"),
            _in("transaction_type", TRANSACTION_TYPES),
        )
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_token_reservations_status_known"), _in("status", RESERVATION_STATUSES)
        )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_append_only_triggers()


def downgrade() -> None:
    with op.batch_alter_table("token_reservations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_token_reservations_status_known"), type_="check")
    with op.batch_alter_table("token_transactions", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_token_transactions_transaction_type_known"), type_="check"
        )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_append_only_triggers()
