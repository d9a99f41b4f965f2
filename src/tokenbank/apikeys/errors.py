"""API key errors: each class line says its status, code and message; the whole tree is in
:mod:`tokenbank.errors`.
"""

from __future__ import annotations

from tokenbank.errors import AppError


class ApiKeyError(
    AppError, status=401, code="invalid_api_key", message="The API key is not valid."
):
    """Base of every API key rule; also: the key is not one of ours."""

    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"}


class ApiKeyMissing(
    ApiKeyError, code="api_key_required", message="Send an API key: Authorization: Bearer tbk_..."
):
    ...


class ApiKeyRevoked(ApiKeyError, code="api_key_revoked", message="This API key was revoked."):
    ...


class _NotAChallenge(ApiKeyError):
    """The key itself was fine: no ``WWW-Authenticate`` challenge on the answer."""

    headers = None


class InsufficientScope(
    _NotAChallenge,
    status=403,
    code="insufficient_scope",
    message="This API key lacks the scope this request needs.",
):
    def __init__(self, needed: str) -> None:
        super().__init__(f"This API key lacks the {needed!r} scope.", required_scope=needed)


class ApiKeyNotFound(
    _NotAChallenge, status=404, code="api_key_not_found", message="No such API key."
):
    ...


class InvalidScopes(
    _NotAChallenge,
    status=422,
    code="invalid_scopes",
    message="Scopes are one or more of: read, charge, grant, checkout.",
):
    ...


class InvalidKeyName(
    _NotAChallenge,
    status=422,
    code="invalid_key_name",
    message="A key's name is 1 to 100 characters.",
):
    ...


class ApiKeyNotActive(
    _NotAChallenge,
    status=409,
    code="api_key_not_active",
    message="This API key was revoked; create a new one instead.",
):
    ...
