"""Token billing for the chat through tokenbank's Python SDK: everything it takes."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, FastAPI
from users import User, current_user

from tokenbank_client import AsyncTokenbank, customer_token
from tokenbank_client.fastapi import hold_tokens, install

billing = AsyncTokenbank()  # TOKENBANK_URL and TOKENBANK_API_KEY from the environment
router = APIRouter(prefix="/api/billing")


def customer_id(user: User = Depends(current_user)) -> str:
    return f"chat-{user.id}"  # our user id is tokenbank's external id


async def on_sign_up(user: User) -> None:
    await billing.upsert_customer(customer_id(user), name=user.username)


# Every reply holds its price first (402 when the tokens are not there), commits when the
# reply is made, releases if the model fails.
reply_hold = hold_tokens(int(os.environ.get("TOKENS_PER_REPLY", "1")), customer_id)


@router.get("/widget")
async def widget(external_id: str = Depends(customer_id)) -> dict[str, str]:
    token = customer_token(os.environ["TOKENBANK_WIDGET_SECRET"], external_id)
    return {"token": token, "tokenbank_url": billing.settings.base_url}


@router.post("/buy")
async def buy(tier: str, external_id: str = Depends(customer_id)) -> dict[str, str]:
    back = os.environ.get("EXAMPLE_ORIGIN", "http://127.0.0.1:8100") + "/?paid=1"
    return {"url": (await billing.purchase(external_id, tier, return_url=back)).hosted_url}


def add_billing(app: FastAPI) -> None:
    install(app, billing)
    app.include_router(router)
