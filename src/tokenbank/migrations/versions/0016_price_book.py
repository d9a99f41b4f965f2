"""price book: versioned prices, a chat's model and cost cap, a reply's end and price version"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0016"
down_revision: str | None = "0015"

FINISH_REASONS = ("stop", "length", "content_filter", "error", "cut")


def upgrade() -> None:
    op.create_table(
        "price_versions",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("book", sa.JSON(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _ops.fk("price_versions", "created_by", "users", ondelete="SET NULL"),
        _ops.pk("price_versions", "id"),
    )
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("cost_cap", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_chats_cost_cap_positive"), "cost_cap IS NULL OR cost_cap >= 1"
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finish_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("price_version", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_messages_finish_reason_known"),
            _ops.in_list("finish_reason", FINISH_REASONS, nullable=True),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_finish_reason_known"), type_="check")
        batch_op.drop_column("price_version")
        batch_op.drop_column("finish_reason")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chats_cost_cap_positive"), type_="check")
        batch_op.drop_column("cost_cap")
        batch_op.drop_column("model")
    op.drop_table("price_versions")
