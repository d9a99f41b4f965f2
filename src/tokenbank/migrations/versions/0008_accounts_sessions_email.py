"""accounts: sessions with rotating refresh tokens, email links, sign-in throttle, locale"""

import sqlalchemy as sa
from alembic import op

from tokenbank.migrations import _ops

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locale", sa.String(length=8), server_default="en", nullable=False)
        )
        batch_op.add_column(sa.Column("email_verified_at", _ops.TS, nullable=True))
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=43), nullable=False),
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("last_used_at", _ops.TS, nullable=False),
        sa.Column("expires_at", _ops.TS, nullable=False),
        sa.Column("revoked_at", _ops.TS, nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        _ops.fk("auth_sessions", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("auth_sessions", "id"),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"])
    op.create_table(
        "auth_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=43), nullable=False),
        sa.Column("issued_at", _ops.TS, nullable=False),
        sa.Column("used_at", _ops.TS, nullable=True),
        _ops.fk("auth_refresh_tokens", "session_id", "auth_sessions", ondelete="CASCADE"),
        _ops.pk("auth_refresh_tokens", "token_hash"),
    )
    op.create_index(
        op.f("ix_auth_refresh_tokens_session_id"), "auth_refresh_tokens", ["session_id"]
    )
    op.create_table(
        "auth_email_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ops.ID, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("expires_at", _ops.TS, nullable=False),
        sa.Column("used_at", _ops.TS, nullable=True),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password')",
            name=op.f("ck_auth_email_tokens_purpose_known"),
        ),
        _ops.fk("auth_email_tokens", "user_id", "users", ondelete="CASCADE"),
        _ops.pk("auth_email_tokens", "token_hash"),
    )
    op.create_index(op.f("ix_auth_email_tokens_user_id"), "auth_email_tokens", ["user_id"])
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("locked_until", _ops.TS, nullable=True),
        sa.Column("updated_at", _ops.TS, nullable=False),
        _ops.pk("auth_throttle", "key"),
    )


def downgrade() -> None:
    op.drop_table("auth_throttle")
    op.drop_index(op.f("ix_auth_email_tokens_user_id"), table_name="auth_email_tokens")
    op.drop_table("auth_email_tokens")
    op.drop_index(op.f("ix_auth_refresh_tokens_session_id"), table_name="auth_refresh_tokens")
    op.drop_table("auth_refresh_tokens")
    op.drop_index(op.f("ix_auth_sessions_user_id"), table_name="auth_sessions")
    op.drop_table("auth_sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("locale")
