"""Accounts and sessions over HTTP (``/api/auth``).

The access token travels in JSON and the ``Authorization`` header; the refresh token
only in an HttpOnly, SameSite=Strict cookie whose paths are ``/api/auth/refresh`` and
``/api/auth/logout``, so no other request (and no script) ever carries it. The cookie is
``Secure`` in production and on https requests; plain-http development and tests cannot
store a Secure cookie, so there it is not (``REFRESH_COOKIE_SECURE`` overrides).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Cookie, Request, Response, status

from tokenbank.auth import flows, service
from tokenbank.auth.errors import InvalidToken
from tokenbank.auth.models import User
from tokenbank.auth.schemas import (
    Accepted,
    AuthResponse,
    ChangePasswordRequest,
    LoginRequest,
    PasswordResetComplete,
    PasswordResetRequest,
    RegisterRequest,
    UpdateMeRequest,
    UserMe,
    UserPublic,
    VerifyEmailRequest,
    VerifyEmailResponse,
)
from tokenbank.auth.security import decode_access_claims
from tokenbank.client_address import request_client_key
from tokenbank.config import Settings
from tokenbank.deps import CurrentUser, DatabaseDep, SessionDep, SettingsDep, UserIdDep, limit
from tokenbank.errors import error_responses
from tokenbank.mail import sender, templates
from tokenbank.types import utcnow

router = APIRouter(
    prefix="/api/auth", tags=["auth"], responses=error_responses(400, 401, 409, 422, 429, 503)
)

REFRESH_COOKIE = "tb_refresh"
REFRESH_COOKIE_PATHS = ("/api/auth/refresh", "/api/auth/logout")
RefreshCookie = Annotated[str | None, Cookie(alias=REFRESH_COOKIE, include_in_schema=False)]


def _public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        locale="zh" if user.locale == "zh" else "en",
    )


def _cookie_secure(request: Request, settings: Settings) -> bool:
    if settings.refresh_cookie_secure is not None:
        return settings.refresh_cookie_secure
    return settings.is_production or request.url.scheme == "https"


def _signed_in(
    request: Request, response: Response, settings: Settings, signed_in: service.SignedIn
) -> AuthResponse:
    user, issued = signed_in.user, signed_in.issued
    for path in REFRESH_COOKIE_PATHS:
        response.set_cookie(
            REFRESH_COOKIE,
            issued.refresh_token,
            max_age=settings.refresh_token_ttl_s,
            path=path,
            secure=_cookie_secure(request, settings),
            httponly=True,
            samesite="strict",
        )
    response.headers["Cache-Control"] = "no-store"
    return AuthResponse(
        access_token=issued.access_token, expires_in=settings.jwt_expires_s, user=_public(user)
    )


def _signed_out(request: Request, response: Response, settings: Settings) -> None:
    for path in REFRESH_COOKIE_PATHS:
        response.delete_cookie(
            REFRESH_COOKIE,
            path=path,
            secure=_cookie_secure(request, settings),
            httponly=True,
            samesite="strict",
        )


def _link(request: Request, settings: Settings, page: str, token: str) -> str:
    """The emailed link that opens the app's ``page`` with ``token``."""
    # Production requires APP_ORIGIN: a link built from the Host header could point anywhere.
    origin = (settings.app_origin or str(request.base_url)).rstrip("/")
    return f"{origin}/{page}?token={token}"


def _locale_from(request: Request, chosen: str | None) -> str:
    if chosen:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


async def _send_verification(request: Request, settings: Settings, user: User, token: str) -> None:
    """After the response: the transaction that made the link has committed."""
    mail = templates.verify_email(
        user.locale,
        username=user.username,
        link=_link(request, settings, "verify-email", token),
        bonus=settings.signup_bonus_tokens,
        ttl_s=settings.email_verify_ttl_s,
    )
    await sender.send(settings, user.email, mail)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    operation_id="register",
    dependencies=[limit("register")],
)
async def register(
    body: RegisterRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
) -> AuthResponse:
    """Sign up. The welcome bonus comes once the emailed link is followed."""
    signed_up = await service.sign_up(
        session,
        username=body.username,
        email=body.email,
        password=body.password,
        locale=_locale_from(request, body.locale),
        client_key=request_client_key(request),
        settings=settings,
        now=utcnow(),
    )
    token = signed_up.verification_token
    background.add_task(_send_verification, request, settings, signed_up.user, token)
    return _signed_in(request, response, settings, signed_up)


@router.post("/login", operation_id="login", dependencies=[limit("login")])
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
) -> AuthResponse:
    """Sign in. Besides the per-address limit, each account allows a few failures, then
    waits longer after each (``login_locked`` with ``Retry-After``)."""
    signed_in = await flows.sign_in(db, body.username, body.password, settings)
    return _signed_in(request, response, settings, signed_in)


@router.post("/refresh", operation_id="refreshSession")
async def refresh(
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
    refresh_token: RefreshCookie = None,
) -> AuthResponse:
    """A new access token and the next refresh token, from the refresh cookie.

    A refresh token works once; presenting a used one ends its whole session.
    """
    signed_in = await flows.refresh(db, refresh_token, settings)
    return _signed_in(request, response, settings, signed_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, operation_id="logout")
async def logout(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    refresh_token: RefreshCookie = None,
) -> Response:
    """End this session (the one named by the refresh cookie or the access token).

    Needs no valid access token: an expired one must not stop a sign-out."""
    session_ids: set[str] = set()
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer:
        try:
            claims = decode_access_claims(bearer.strip(), settings.effective_jwt_secret)
            session_ids.add(claims.session_id)
        except InvalidToken:
            pass
    await service.sign_out(session, session_ids, refresh_token, utcnow())
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _signed_out(request, response, settings)
    return response


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, operation_id="logoutAll")
async def logout_all(
    request: Request, session: SessionDep, settings: SettingsDep, user_id: UserIdDep
) -> Response:
    """Sign out everywhere: every session of this account ends now."""
    await service.sign_out_everywhere(session, user_id, utcnow())
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _signed_out(request, response, settings)
    return response


@router.post("/change-password", operation_id="changePassword")
async def change_password(
    body: ChangePasswordRequest,
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
    user_id: UserIdDep,
) -> AuthResponse:
    """New password (the current one is required, and throttled like a sign-in). Every
    session ends, this one included; the answer carries a new session for this browser."""
    signed_in = await flows.change_password(
        db, user_id, body.current_password, body.new_password, settings
    )
    return _signed_in(request, response, settings, signed_in)


@router.post("/verify-email", operation_id="verifyEmail")
async def verify_email(
    body: VerifyEmailRequest, session: SessionDep, settings: SettingsDep
) -> VerifyEmailResponse:
    """Follow the emailed link: the address is verified and the welcome bonus granted once."""
    await service.verify_email(session, body.token, settings, utcnow())
    return VerifyEmailResponse(bonus_tokens=settings.signup_bonus_tokens)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="resendVerification",
)
async def resend_verification(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user_id: UserIdDep,
    background: BackgroundTasks,
) -> Accepted:
    user, token = await service.resend_verification(session, user_id, settings, utcnow())
    if token is not None:
        background.add_task(_send_verification, request, settings, user, token)
    return Accepted()


async def _send_reset(request: Request, settings: Settings, user: User, token: str) -> None:
    mail = templates.reset_password(
        user.locale,
        username=user.username,
        link=_link(request, settings, "reset-password", token),
        ttl_s=settings.password_reset_ttl_s,
    )
    await sender.send(settings, user.email, mail)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="requestPasswordReset",
    dependencies=[limit("login")],
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
) -> Accepted:
    """Email a reset link if the address has an account; the answer is the same either way."""
    found = await service.request_password_reset(session, body.email, settings, utcnow())
    if found is not None:
        user, token = found
        background.add_task(_send_reset, request, settings, user, token)
    return Accepted()


@router.post("/password-reset/complete", operation_id="completePasswordReset")
async def complete_password_reset(
    body: PasswordResetComplete,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> AuthResponse:
    """Set a new password from the emailed link (once). Every session ends; this browser
    is signed in afresh."""
    signed_in = await service.reset_password_and_sign_in(
        session, body.token, body.new_password, settings, utcnow()
    )
    return _signed_in(request, response, settings, signed_in)


def _me(user: User) -> UserMe:
    return UserMe(**_public(user).model_dump(), is_admin=user.is_admin, created_at=user.created_at)


@router.get("/me", operation_id="me")
async def me(user: CurrentUser) -> UserMe:
    return _me(user)


@router.patch("/me", operation_id="updateMe")
async def update_me(body: UpdateMeRequest, user: CurrentUser) -> UserMe:
    """The person's language, used for the emails we send them."""
    return _me(service.set_locale(user, body.locale))
