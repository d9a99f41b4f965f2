from __future__ import annotations

from fastapi import APIRouter, status

from tokenbank.auth import service
from tokenbank.auth.models import User
from tokenbank.auth.schemas import AuthResponse, LoginRequest, RegisterRequest, UserMe, UserPublic
from tokenbank.auth.security import create_access_token
from tokenbank.config import Settings
from tokenbank.deps import CurrentUser, SessionDep, SettingsDep
from tokenbank.errors import error_responses
from tokenbank.ratelimit.deps import limit

router = APIRouter(
    prefix="/api/auth", tags=["auth"], responses=error_responses(400, 401, 409, 422, 429, 503)
)


def _auth_response(user: User, settings: Settings) -> AuthResponse:
    token = create_access_token(user.id, settings.effective_jwt_secret, settings.jwt_expires_s)
    return AuthResponse(
        access_token=token,
        user=UserPublic(id=user.id, username=user.username, email=user.email),
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    operation_id="register",
    dependencies=[limit("register")],
)
async def register(
    body: RegisterRequest, session: SessionDep, settings: SettingsDep
) -> AuthResponse:
    user = await service.register(
        session,
        username=body.username,
        email=body.email,
        password=body.password,
        signup_bonus_tokens=settings.signup_bonus_tokens,
    )
    return _auth_response(user, settings)


@router.post("/login", operation_id="login", dependencies=[limit("login")])
async def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> AuthResponse:
    user = await service.authenticate(session, body.username, body.password)
    return _auth_response(user, settings)


@router.get("/me", operation_id="me")
async def me(user: CurrentUser) -> UserMe:
    return UserMe(
        id=user.id,
        username=user.username,
        email=user.email,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )
