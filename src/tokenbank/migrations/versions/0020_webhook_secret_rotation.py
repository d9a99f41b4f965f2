"""outbound webhooks: a rolled endpoint secret keeps signing beside the new one until it
expires
"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0020"
down_revision: str | None = "0019"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", _ops.TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
