"""API key errors.

ApiKeyError (401 invalid_api_key)
├── ApiKeyMissing (401 api_key_required)
├── ApiKeyRevoked (401 api_key_revoked)
├── InsufficientScope (403 insufficient_scope)
├── ApiKeyNotFound (404 api_key_not_found)
├── ApiKeyNotActive (409 api_key_not_active)
├── InvalidScopes (422 invalid_scopes)
└── InvalidKeyName (422 invalid_key_name)
"""

from __future__ import annotations

from tokenbank.errors import AppError


class ApiKeyError(AppError):
    """Base of every API key rule; also: the key is not one of ours."""

    status_code = 401
    code = "invalid_api_key"
    message = "The API key is not valid."

    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"}


class ApiKeyMissing(ApiKeyError):
    code = "api_key_required"
    message = "Send an API key: Authorization: Bearer tbk_..."


class ApiKeyRevoked(ApiKeyError):
    code = "api_key_revoked"
    message = "This API key was revoked."


class InsufficientScope(ApiKeyError):
    status_code = 403
    code = "insufficient_scope"
    message = "This API key lacks the scope this request needs."

    def __init__(self, needed: str) -> None:
        super().__init__(f"This API key lacks the {needed!r} scope.", required_scope=needed)
        self.headers = None


class ApiKeyNotFound(ApiKeyError):
    status_code = 404
    code = "api_key_not_found"
    message = "No such API key."
    headers = None


class InvalidScopes(ApiKeyError):
    status_code = 422
    code = "invalid_scopes"
    message = "Scopes are one or more of: read, charge, grant, checkout."
    headers = None


class InvalidKeyName(ApiKeyError):
    status_code = 422
    code = "invalid_key_name"
    message = "A key's name is 1 to 100 characters."
    headers = None


class ApiKeyNotActive(ApiKeyError):
    status_code = 409
    code = "api_key_not_active"
    message = "This API key was revoked; create a new one instead."
    headers = None
