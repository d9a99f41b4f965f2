from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/chats", tags=["chats"])
