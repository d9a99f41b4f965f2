"""service API: API keys, and customers known by the host app's own ids"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0011"
down_revision: str | None = "0010"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        _ops.id_column(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("revoked_at", _ops.TS, nullable=True),
        sa.Column("rotated_from_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("length(scopes) > 0", name=op.f("ck_api_keys_scopes_present")),
        _ops.fk("api_keys", "rotated_from_id", "api_keys", ondelete="SET NULL"),
        _ops.fk("api_keys", "created_by_user_id", "users", ondelete="SET NULL"),
        _ops.pk("api_keys", "id"),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_table(
        "customers",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.fk("customers", "user_id", "users", ondelete="RESTRICT"),
        _ops.pk("customers", "user_id"),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
    )


def downgrade() -> None:
    op.drop_table("customers")
    op.drop_table("api_keys")
