"""ledger entries are append-only: the database refuses UPDATE and DELETE"""

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION token_transactions_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'token_transactions is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER token_transactions_append_only
            BEFORE UPDATE OR DELETE ON token_transactions
            FOR EACH ROW EXECUTE FUNCTION token_transactions_append_only()
            """
        )
        return
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


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER token_transactions_append_only ON token_transactions")
        op.execute("DROP FUNCTION token_transactions_append_only()")
        return
    op.execute("DROP TRIGGER token_transactions_no_update")
    op.execute("DROP TRIGGER token_transactions_no_delete")
