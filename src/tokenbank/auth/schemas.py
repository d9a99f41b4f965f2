from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128


Locale = Literal["en", "zh"]


def check_new_password(value: str) -> str:
    if not any(c.isalpha() for c in value) or not any(c.isdigit() for c in value):
        raise ValueError("password must contain at least one letter and one digit")
    if value.strip() != value:
        raise ValueError("password must not start or end with whitespace")
    return value


#: A password being set (sign-up, change, reset): its length, then check_new_password.
NewPassword = Annotated[
    str,
    Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX),
    AfterValidator(check_new_password),
]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=False, extra="ignore")

    username: Annotated[str, Field(min_length=3, max_length=32, examples=["ada"])]
    email: EmailStr
    password: NewPassword
    locale: Locale | None = Field(
        default=None, description="Language of the person's emails; else from Accept-Language."
    )

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


class LoginRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=254, description="Username or email")]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]


class UserPublic(BaseModel):
    id: int
    username: str
    email: str
    email_verified: bool = False
    locale: Locale = "en"


class UserMe(UserPublic):
    is_admin: bool
    created_at: datetime


class AuthResponse(BaseModel):
    """The access token (short-lived) is in the body; the refresh token is set as an
    HttpOnly cookie that only ``/api/auth/refresh`` and ``/api/auth/logout`` receive."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserPublic


class ChangePasswordRequest(BaseModel):
    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]
    new_password: NewPassword


class VerifyEmailRequest(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class VerifyEmailResponse(BaseModel):
    verified: Literal[True] = True
    bonus_tokens: int = Field(description="The sign-up bonus (granted once, on verification).")


class PasswordResetRequest(BaseModel):
    email: EmailStr


class PasswordResetComplete(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: NewPassword


class Accepted(BaseModel):
    """The request was taken; what happens is not told (no account enumeration)."""

    accepted: Literal[True] = True


class UpdateMeRequest(BaseModel):
    locale: Locale
