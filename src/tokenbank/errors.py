"""Typed errors, named after the rule they guard, rendered once as JSON.

Every error crossing the API is ``{"error": {"code": ..., "message": ..., **extra}}``.
Each domain has one base error (``LedgerError``, ``AuthError``, ...) deriving from
:class:`AppError`; the handlers here are the only place an error becomes a response.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenbank.observability import INSUFFICIENT

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error the API reports on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.detail = message or self.message
        self.extra = extra
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.detail, **self.extra}

    headers: dict[str, str] | None = None


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class DatabaseUnavailable(AppError):
    status_code = 503
    code = "database_unavailable"
    message = "The database is not answering; try again shortly."


class InvalidInput(AppError):
    """The input itself cannot be stored (a NUL character, an unpaired surrogate)."""

    status_code = 422
    code = "invalid_input"
    message = "The request contains characters or values that cannot be stored."


class RetryLater(AppError):
    """A deadlock or serialization failure rolled the transaction back whole."""

    status_code = 503
    code = "retry_later"
    message = "A concurrent request got in the way; nothing was changed. Please retry."


class InternalError(AppError):
    status_code = 500
    code = "internal_error"
    message = "Something went wrong on our side."


def error_response(
    status_code: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content={"error": {"code": code, "message": message, **extra}},
        headers=headers,
    )


def error_codes() -> list[str]:
    """Every ``code`` an error response can carry, sorted.

    The codes of every :class:`AppError` subclass (walked when the schema is built, so
    each domain's errors are counted once their module is imported) and the codes the
    handlers below give to framework errors. Clients translate exactly this list.
    """
    codes = {VALIDATION_ERROR, HTTP_ERROR, *_HTTP_CODES.values()}
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return sorted(codes)


def _code_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = error_codes()


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(
        json_schema_extra=_code_enum,
        description="Machine-readable; the enum lists every code the API answers with.",
    )
    message: str


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", ...}}``."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in, or the token is invalid",
    402: "Not enough tokens",
    403: "Forbidden",
    404: "Not found (or not yours)",
    409: "Conflict",
    422: "Invalid input",
    429: "Rate limited (see Retry-After)",
    502: "AI provider failed",
    503: "A dependency (database, Stripe) is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error statuses a router's routes answer."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


#: Codes of errors raised by the framework rather than by an AppError.
VALIDATION_ERROR = "validation_error"
HTTP_ERROR = "http_error"
_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def _validation_message(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "Invalid request."
    first = errors[0]
    where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
    return f"{where}: {first['msg']}" if where else first["msg"]


#: SQLSTATEs of a server that is up but will not serve us now: too many clients (53300),
#: shutting down or starting up (57P01-57P03), a database refusing connections
#: (``ALLOW_CONNECTIONS false``: 55000, which the app's own statements never raise).
_UNAVAILABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03", "55000"})


def is_unavailable_sqlstate(sqlstate: str) -> bool:
    """Class 08 (connection exception) or a server refusing to serve connections."""
    return sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES


def is_connection_error(exc: BaseException) -> bool:
    """True when the database could not be reached (as opposed to a bad statement)."""
    if isinstance(exc, DBAPIError) and is_unavailable_sqlstate(
        str(getattr(exc.orig, "sqlstate", "") or "")
    ):
        return True
    if isinstance(exc, PoolTimeoutError | ConnectionError | OSError):
        return True
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        markers = (
            "connect",
            "connection",
            "terminating",
            "shutting down",
            "closed",
            "database is locked",
            "unable to open",
        )
        return any(m in text for m in markers)
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, ConnectionError | OSError)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        if exc.code == "insufficient_tokens":
            INSUFFICIENT.inc()
        return JSONResponse(
            status_code=exc.status_code, content={"error": exc.to_dict()}, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        return error_response(422, VALIDATION_ERROR, _validation_message(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, HTTP_ERROR)
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(DBAPIError)
    async def _dbapi(_request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        if sqlstate.startswith("22"):
            # Class 22 (data exception): the input itself cannot be stored, e.g. a NUL
            # character or an unpaired surrogate in a text field.
            return error_response(422, InvalidInput.code, InvalidInput.message)
        if sqlstate in ("40P01", "40001"):
            # A deadlock or serialization failure rolled the transaction back whole:
            # nothing happened, and the same request may simply be sent again.
            log.warning("transaction aborted by the database (%s); client may retry", sqlstate)
            return error_response(
                503, RetryLater.code, RetryLater.message, headers={"Retry-After": "1"}
            )
        if is_connection_error(exc):
            log.warning("database unavailable: %s", type(exc.orig).__name__)
            return error_response(
                503,
                DatabaseUnavailable.code,
                DatabaseUnavailable.message,
                headers={"Retry-After": "2"},
            )
        raise exc

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_request: Request, _exc: UnicodeEncodeError) -> JSONResponse:
        return error_response(
            422, InvalidInput.code, "The request contains characters that cannot be stored."
        )

    @app.exception_handler(PoolTimeoutError)
    async def _pool(_request: Request, _exc: PoolTimeoutError) -> JSONResponse:
        return error_response(
            503, DatabaseUnavailable.code, DatabaseUnavailable.message, headers={"Retry-After": "2"}
        )

    @app.exception_handler(OSError)
    async def _os(_request: Request, exc: OSError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(
            503, DatabaseUnavailable.code, DatabaseUnavailable.message, headers={"Retry-After": "2"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        # The server drops the connection after an unhandled error; saying so lets the
        # client open a new one instead of failing its next request on this one.
        return error_response(
            500, InternalError.code, InternalError.message, headers={"Connection": "close"}
        )
