from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PriceBookOut(BaseModel):
    version: int
    book: dict[str, Any] = Field(
        description='`{"models": {"<model>": {"per_reply": n} | {"per_1k_input", '
        '"per_1k_output", "per_1k_cached", "minimum"}}, "features": {"<feature>": n}}`'
    )
    created_at: datetime
    created_by: int | None = Field(description="The admin who wrote it; null: configuration.")


class PriceBookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    book: dict[str, Any]
