from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tokenbank.deps import SessionDep, UserIdDep
from tokenbank.errors import error_responses
from tokenbank.ledger import service
from tokenbank.ledger.schemas import TokenBalance, TransactionOut, TransactionPage

router = APIRouter(tags=["tokens"], responses=error_responses(401, 404, 422, 503))


def balance_out(b: service.Balance) -> TokenBalance:
    return TokenBalance(
        user_id=b.user_id,
        balance=b.balance,
        reserved=b.reserved,
        available=b.available,
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


def transaction_out(e: service.Entry) -> TransactionOut:
    return TransactionOut(
        id=e.id,
        transaction_type=e.transaction_type,
        amount=e.amount,
        balance_after=e.balance_after,
        description=e.description,
        stripe_payment_intent_id=e.stripe_payment_intent_id,
        created_at=e.created_at,
    )


@router.get("/api/payment/user/tokens", operation_id="get_token_balance")
async def get_token_balance(session: SessionDep, user_id: UserIdDep) -> TokenBalance:
    return balance_out(await service.balance(session, user_id))


@router.get("/api/user/tokens", operation_id="get_token_balance_alias", include_in_schema=True)
async def get_token_balance_alias(session: SessionDep, user_id: UserIdDep) -> TokenBalance:
    return balance_out(await service.balance(session, user_id))


@router.get("/api/payment/user/transactions", operation_id="list_transactions")
async def list_transactions(
    session: SessionDep,
    user_id: UserIdDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> TransactionPage:
    page = await service.history(session, user_id, limit=limit, before=before)
    return TransactionPage(
        items=[transaction_out(e) for e in page.items], next_before=page.next_before
    )
