from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, or_, select

from tokenbank.auth import service as users
from tokenbank.auth.models import User
from tokenbank.deps import AdminUser, SessionDep
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenAccount
from tokenbank.ledger.routes import balance_out, transaction_out
from tokenbank.ledger.schemas import AdminTokensRequest, AdminTokensResponse

router = APIRouter(prefix="/api/admin", tags=["admin"])


class AdminUserOut(BaseModel):
    id: int
    username: str
    email: str
    is_admin: bool
    balance: int
    reserved: int
    available: int


@router.post("/users/{user_id}/tokens", operation_id="admin_adjust_tokens")
async def admin_adjust_tokens(
    user_id: int, body: AdminTokensRequest, session: SessionDep, admin: AdminUser
) -> AdminTokensResponse:
    """A positive amount is a ``grant``; a negative one an ``adjustment``; both keep the reason
    and the admin's id."""
    await users.get_user(session, user_id)
    if body.amount > 0:
        entry = await ledger.grant(
            session, user_id, body.amount, body.reason, actor_user_id=admin.id
        )
    else:
        entry = await ledger.adjust(
            session, user_id, body.amount, body.reason, actor_user_id=admin.id
        )
    return AdminTokensResponse(
        transaction=transaction_out(entry),
        balance=balance_out(await ledger.balance(session, user_id)),
    )


@router.get("/users", operation_id="admin_list_users")
async def admin_list_users(
    session: SessionDep,
    _admin: AdminUser,
    query: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminUserOut]:
    stmt = (
        select(User, TokenAccount.balance, TokenAccount.reserved)
        .join(TokenAccount, TokenAccount.user_id == User.id, isouter=True)
        .order_by(User.id)
        .limit(limit)
    )
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(func.lower(User.username).like(like), User.email.like(like)))
    rows = (await session.execute(stmt)).all()
    return [
        AdminUserOut(
            id=u.id,
            username=u.username,
            email=u.email,
            is_admin=u.is_admin,
            balance=bal or 0,
            reserved=res or 0,
            available=(bal or 0) - (res or 0),
        )
        for u, bal, res in rows
    ]
