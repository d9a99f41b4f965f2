"""Accounts and sessions errors.

AuthError (401 not_authenticated)
├── InvalidCredentials (401)      ├── SessionRevoked (401)
├── InvalidToken (401)            ├── RefreshTokenInvalid (401)
├── AdminRequired (403)           ├── RefreshTokenReused (401)
├── UsernameTaken (409)           ├── EmailLinkInvalid (400)
├── EmailTaken (409)              ├── WrongCurrentPassword (400)
├── UserNotFound (404)            ├── LoginLocked (429, Retry-After)
                                  └── SignupLimitReached (429, Retry-After)
"""

from __future__ import annotations

from tokenbank.errors import AppError


class AuthError(AppError, status=401, code="not_authenticated", message="Sign in to continue."):
    """Base of every authentication and authorisation rule."""


class InvalidCredentials(
    AuthError, code="invalid_credentials", message="Wrong username or password."
):
    """Uniform for unknown user and wrong password: never tell which."""


class InvalidToken(
    AuthError, code="invalid_token", message="The access token is invalid or expired."
):
    ...


class AdminRequired(
    AuthError, status=403, code="admin_required", message="This needs an administrator."
):
    ...


class UsernameTaken(
    AuthError, status=409, code="username_taken", message="That username is taken."
):
    ...


class EmailTaken(
    AuthError, status=409, code="email_taken", message="That email is already registered."
):
    ...


class UserNotFound(AuthError, status=404, code="user_not_found", message="No such user."): ...


class SessionRevoked(
    AuthError, code="session_revoked", message="This session has ended; sign in again."
):
    """The access token's session was signed out (logout, sign-out everywhere, a password
    change or reset, or a reused refresh token)."""


class RefreshTokenInvalid(
    AuthError, code="refresh_token_invalid", message="The session cannot be renewed; sign in again."
):
    ...


class RefreshTokenReused(
    AuthError,
    code="refresh_token_reused",
    message="This session was ended for safety; sign in again.",
):
    """A refresh token was presented a second time: someone else may hold a copy, so the
    whole session (every token descended from the first sign-in) is revoked."""


class EmailLinkInvalid(
    AuthError,
    status=400,
    code="email_link_invalid",
    message="This link is invalid, expired or already used.",
):
    """Unknown, expired or already used link (never says which)."""


class WrongCurrentPassword(
    AuthError,
    status=400,
    code="wrong_current_password",
    message="The current password is not right.",
):
    """Not 401: the session is fine, only the password typed to confirm it is wrong."""


class _TooMany(AuthError, status=429):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s=retry_after_s)
        self.headers = {"Retry-After": str(retry_after_s)}


class LoginLocked(
    _TooMany,
    code="login_locked",
    message="Too many failed sign-ins for this account; wait and try again.",
):
    """Too many failed sign-ins for this account; the wait doubles with each failure."""


class SignupLimitReached(
    _TooMany,
    code="signup_limit_reached",
    message="Too many accounts were created from this network today.",
):
    ...
