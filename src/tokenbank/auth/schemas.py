from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128


class RegisterRequest(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=False, extra="ignore")

    username: Annotated[str, Field(min_length=3, max_length=32, examples=["ada"])]
    email: EmailStr
    password: Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME_RE.fullmatch(value):
            raise ValueError("username may use 3-32 letters, digits, '.', '_' or '-' and no spaces")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        if not any(c.isalpha() for c in value) or not any(c.isdigit() for c in value):
            raise ValueError("password must contain at least one letter and one digit")
        if value.strip() != value:
            raise ValueError("password must not start or end with whitespace")
        return value


class LoginRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=254, description="Username or email")]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]


class UserPublic(BaseModel):
    id: int
    username: str
    email: str


class UserMe(UserPublic):
    is_admin: bool
    created_at: datetime


class AuthResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    user: UserPublic
