"""A small chat app with its own users and its own AI call, billed in tokens by tokenbank.

The lines marked ``# billing`` and ``billing.py`` are all the billing there is (see the
README's count); the rest is what the app had before it charged anything.
"""

from __future__ import annotations

from pathlib import Path

from billing import add_billing, on_sign_up, reply_hold  # billing
from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from users import User, current_user, sign_in, sign_up

from tokenbank_client import ActiveHold  # billing

STATIC = Path(__file__).parent / "static"
app = FastAPI(title="fastapi-chat example")
add_billing(app)  # billing
app.mount("/widgets", StaticFiles(directory=STATIC / "widgets"), name="widgets")  # billing


class Credentials(BaseModel):
    username: str = Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=200)


class Message(BaseModel):
    content: str = Field(min_length=1, max_length=4000)


async def model_reply(prompt: str) -> str:
    """The app's own AI call (an echo model stands in for a real one)."""
    return f"You said: {prompt}"


@app.post("/api/signup")
async def signup(body: Credentials) -> dict[str, str]:
    user, token = sign_up(body.username, body.password)
    await on_sign_up(user)  # billing
    return {"token": token, "username": user.username}


@app.post("/api/login")
async def login(body: Credentials) -> dict[str, str]:
    user, token = sign_in(body.username, body.password)
    return {"token": token, "username": user.username}


@app.post("/api/chat")
async def chat(
    body: Message,
    user: User = Depends(current_user),
    hold: ActiveHold = reply_hold,  # billing
) -> dict[str, str]:
    return {"reply": await model_reply(body.content)}


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")
