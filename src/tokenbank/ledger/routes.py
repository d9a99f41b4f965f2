from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tokenbank.deps import SessionDep, UserIdDep
from tokenbank.errors import error_responses
from tokenbank.ledger import service
from tokenbank.ledger.schemas import LotList, TokenBalance, TransactionPage

router = APIRouter(tags=["tokens"], responses=error_responses(401, 404, 422, 503))


@router.get("/api/payment/user/tokens", operation_id="get_token_balance")
async def get_token_balance(session: SessionDep, user_id: UserIdDep) -> TokenBalance:
    return TokenBalance.model_validate(await service.balance(session, user_id))


@router.get("/api/user/tokens", operation_id="get_token_balance_alias", include_in_schema=True)
async def get_token_balance_alias(session: SessionDep, user_id: UserIdDep) -> TokenBalance:
    return TokenBalance.model_validate(await service.balance(session, user_id))


@router.get("/api/payment/user/transactions", operation_id="list_transactions")
async def list_transactions(
    session: SessionDep,
    user_id: UserIdDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> TransactionPage:
    page = await service.history(session, user_id, limit=limit, before=before)
    return TransactionPage.model_validate(page)


@router.get("/api/payment/user/lots", operation_id="list_lots")
async def list_lots(
    session: SessionDep,
    user_id: UserIdDep,
    active: Annotated[bool, Query(description="Only lots with tokens left, not expired")] = False,
) -> LotList:
    """The user's token lots, newest first: where the balance came from, what is left of
    each credit and when it expires (spent and expired lots too, with ``remaining`` 0,
    unless ``active``)."""
    return LotList.of(await service.list_lots(session, user_id, active=active))
