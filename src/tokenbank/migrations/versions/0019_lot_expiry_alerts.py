"""notifications: which lots' coming expiry a person was told about (once per lot)

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tokenbank.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = tokenbank.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lot_expiry_alerts",
        sa.Column("lot_id", _ID, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["token_lots.id"],
            name=op.f("fk_lot_expiry_alerts_lot_id_token_lots"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_lot_expiry_alerts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_lot_expiry_alerts")),
    )


def downgrade() -> None:
    op.drop_table("lot_expiry_alerts")
