"""ledger: token lots (what each credit has left, its priority and expiry)

Every existing positive balance becomes ONE non-expiring lot of source "adjustment"
(the tokens' origin before lots is not recorded anywhere reliable), and the pending
holds of the account are allocated to it, oldest first, as far as it goes (a hold
beyond it stays unallocated; its commit takes what it finds, as after a refund).
The new transaction types "allotment", "allotment_reversal" and "expiry" join the
type CHECK.
"""

import sqlalchemy as sa
from alembic import op

import tokenbank.types
from tokenbank.migrations import _ops

revision: str = "0013"
down_revision: str | None = "0012"


# Written out rather than imported: a migration must not change when the code does.
LOT_SOURCES = ("purchase", "allotment", "grant", "adjustment", "reinstatement")
#: The default priority of an "adjustment" lot (tokenbank.ledger.lots.DEFAULT_PRIORITIES).
ADJUSTMENT_PRIORITY = 50


def upgrade() -> None:
    _ops.transaction_types(_ops.TRANSACTION_TYPES_0013)
    op.create_table(
        "token_lots",
        _ops.id_column(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("expires_at", _ops.TS, nullable=True),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("expired_transaction_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_token_lots_amount_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_token_lots_remaining_in_amount")
        ),
        sa.CheckConstraint(
            "held >= 0 AND held <= remaining", name=op.f("ck_token_lots_held_in_remaining")
        ),
        sa.CheckConstraint(
            _ops.in_list("source", LOT_SOURCES), name=op.f("ck_token_lots_source_known")
        ),
        _ops.fk("token_lots", "user_id", "users"),
        _ops.pk("token_lots", "id"),
    )
    op.create_index("ix_token_lots_user_id_id", "token_lots", ["user_id", "id"])
    op.create_index("ix_token_lots_expires_at", "token_lots", ["expires_at"])
    op.create_index("ix_token_lots_transaction_id", "token_lots", ["transaction_id"])
    op.create_table(
        "token_lot_moves",
        _ops.id_column(),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ops.TS, nullable=False),
        sa.CheckConstraint("amount < 0", name=op.f("ck_token_lot_moves_amount_negative")),
        _ops.fk("token_lot_moves", "lot_id", "token_lots"),
        _ops.pk("token_lot_moves", "id"),
    )
    op.create_index("ix_token_lot_moves_lot_id", "token_lot_moves", ["lot_id"])
    op.create_table(
        "token_reservation_lots",
        sa.Column("reservation_id", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "amount >= 0", name=op.f("ck_token_reservation_lots_amount_non_negative")
        ),
        _ops.fk("token_reservation_lots", "reservation_id", "token_reservations"),
        _ops.fk("token_reservation_lots", "lot_id", "token_lots"),
        _ops.pk("token_reservation_lots", "reservation_id", "lot_id"),
    )
    _backfill()


def _backfill() -> None:
    """One non-expiring lot per positive balance; pending holds allocated to it, oldest
    first, as far as it goes."""
    bind = op.get_bind()
    now = tokenbank.types.utcnow()
    lots = sa.table(
        "token_lots",
        sa.column("id", sa.BigInteger()),
        sa.column("user_id", sa.BigInteger()),
        sa.column("source", sa.String()),
        sa.column("amount", sa.BigInteger()),
        sa.column("remaining", sa.BigInteger()),
        sa.column("held", sa.BigInteger()),
        sa.column("priority", sa.Integer()),
        sa.column("created_at", _ops.TS),
    )
    allocations = sa.table(
        "token_reservation_lots",
        sa.column("reservation_id", sa.BigInteger()),
        sa.column("lot_id", sa.BigInteger()),
        sa.column("amount", sa.BigInteger()),
    )
    accounts = bind.execute(
        sa.text("SELECT user_id, balance FROM token_accounts WHERE balance > 0 ORDER BY user_id")
    ).all()
    for user_id, balance in accounts:
        holds = bind.execute(
            sa.text(
                "SELECT id, amount FROM token_reservations WHERE user_id = :u "
                "AND status = 'pending' ORDER BY id"
            ),
            {"u": user_id},
        ).all()
        left = int(balance)
        parts: list[tuple[int, int]] = []
        for hold_id, amount in holds:
            part = min(int(amount), left)
            if part <= 0:
                break
            parts.append((int(hold_id), part))
            left -= part
        lot_id = bind.execute(
            sa.insert(lots)
            .values(
                user_id=user_id,
                source="adjustment",
                amount=int(balance),
                remaining=int(balance),
                held=int(balance) - left,
                priority=ADJUSTMENT_PRIORITY,
                created_at=now,
            )
            .returning(lots.c.id)
        ).scalar_one()
        for hold_id, part in parts:
            bind.execute(
                sa.insert(allocations).values(reservation_id=hold_id, lot_id=lot_id, amount=part)
            )


def downgrade() -> None:
    op.drop_table("token_reservation_lots")
    op.drop_index("ix_token_lot_moves_lot_id", table_name="token_lot_moves")
    op.drop_table("token_lot_moves")
    op.drop_index("ix_token_lots_transaction_id", table_name="token_lots")
    op.drop_index("ix_token_lots_expires_at", table_name="token_lots")
    op.drop_index("ix_token_lots_user_id_id", table_name="token_lots")
    op.drop_table("token_lots")
    _ops.transaction_types(_ops.TRANSACTION_TYPES_0010)
