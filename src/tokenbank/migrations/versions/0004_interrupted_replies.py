"""messages.interrupted: a reply cut short (client gone or provider failed mid-stream)
after some of its text was sent, charged and saved as far as it got
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("interrupted", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("interrupted")
