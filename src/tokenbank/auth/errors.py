from __future__ import annotations

from tokenbank.errors import AppError


class AuthError(AppError):
    """Base of every authentication and authorisation rule."""

    status_code = 401
    code = "not_authenticated"
    message = "Sign in to continue."


class InvalidCredentials(AuthError):
    """Uniform for unknown user and wrong password: never tell which."""

    code = "invalid_credentials"
    message = "Wrong username or password."


class InvalidToken(AuthError):
    code = "invalid_token"
    message = "The access token is invalid or expired."


class AdminRequired(AuthError):
    status_code = 403
    code = "admin_required"
    message = "This needs an administrator."


class UsernameTaken(AuthError):
    status_code = 409
    code = "username_taken"
    message = "That username is taken."


class EmailTaken(AuthError):
    status_code = 409
    code = "email_taken"
    message = "That email is already registered."


class UserNotFound(AuthError):
    status_code = 404
    code = "user_not_found"
    message = "No such user."
