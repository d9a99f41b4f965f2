from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tokenbank.apikeys.models import ApiKeyScope


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, examples=["chat backend"])]
    scopes: Annotated[list[ApiKeyScope], Field(min_length=1, max_length=4)]


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The secret's first characters, to recognise it")
    scopes: list[ApiKeyScope]
    created_at: datetime
    revoked_at: datetime | None
    rotated_from_id: int | None
    active: bool


class ApiKeyCreated(BaseModel):
    key: ApiKeyOut
    secret: str = Field(description="The key itself. Shown this once; store it now.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
