"""notifications: which lots' coming expiry a person was told about (once per lot)"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0019"
down_revision: str | None = "0018"


def upgrade() -> None:
    op.create_table(
        "lot_expiry_alerts",
        sa.Column("lot_id", _ops.ID, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        _ops.fk("lot_expiry_alerts", "lot_id", "token_lots", ondelete="CASCADE"),
        _ops.fk("lot_expiry_alerts", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("lot_expiry_alerts", "lot_id"),
    )


def downgrade() -> None:
    op.drop_table("lot_expiry_alerts")
