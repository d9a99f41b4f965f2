"""Typed errors, named after the rule they guard, rendered once as JSON.

Every error crossing the API is ``{"error": {"code": ..., "message": ..., **extra}}``.
Each domain has one base error deriving from :class:`AppError`, one class per error
code; :func:`install_error_handlers` is the only place an error becomes a response.
The whole tree (status, then ``code`` where it is not the class name in snake case)::

    AppError (400 bad_request)
    ├── NotFound (404)
    │   └── ClockRouteOff (404)           tokenbank.subscriptions.errors (dev clock route)
    ├── IdempotencyKeyReused (409)        one key, two different requests (every domain)
    ├── Unavailable (503, Retry-After)    nothing was changed: send the same request again
    │   ├── DatabaseUnavailable (503)
    │   └── RetryLater (503)              a deadlock or serialization failure rolled back
    ├── InvalidInput (422)                the database refused the data (a NUL, a surrogate)
    ├── InternalError (500)               anything unexpected (logged; the socket is closed)
    ├── LedgerError                       tokenbank.ledger.errors
    │   ├── InsufficientTokens (402)      counted (metric) where the ledger refuses
    │   ├── InvalidAmount (422)
    │   ├── AccountNotFound (404), ReservationNotFound (404)
    │   └── ReservationNotPending (409)
    │       └── ReservationExpired (409)
    ├── AuthError (401 not_authenticated) tokenbank.auth.errors
    │   ├── InvalidCredentials, InvalidToken, SessionRevoked,
    │   │   RefreshTokenInvalid, RefreshTokenReused (401)
    │   ├── AdminRequired (403), UserNotFound (404)
    │   ├── UsernameTaken, EmailTaken (409)
    │   ├── EmailLinkInvalid, WrongCurrentPassword (400)
    │   └── LoginLocked, SignupLimitReached (429, Retry-After)
    ├── PaymentError                      tokenbank.payments.errors
    │   ├── UnknownTier (422)
    │   ├── PaymentNotFound (404)
    │   │   ├── PaymentMethodNotFound (404)
    │   │   └── StripeObjectUnusable (404 payment_not_found)
    │   ├── NoSavedCard (409)
    │   ├── WebhookSignatureInvalid (400 invalid_signature)
    │   ├── WebhookPayloadInvalid (400 invalid_payload)
    │   ├── PaymentsNotConfigured (503), StripeUnavailable (503, Retry-After)
    │   └── StripeRequestRefused (502 stripe_error)
    ├── ChatError                         tokenbank.chat.errors
    │   ├── ChatNotFound (404), MessageNotFound (404)
    │   ├── MessageEmpty, MessageTooLong (422 validation_error)
    │   ├── AIUnavailable (502)
    │   ├── GenerationInProgress, GenerationRetriesExhausted (409)
    │   ├── ReplyNotRefundable, AlreadyRefunded (409)
    │   └── RefundLimitReached (429)
    ├── MeterError                        tokenbank.meter.errors
    │   └── UnknownFeature (404)
    ├── ApiKeyError (401 invalid_api_key) tokenbank.apikeys.errors
    │   ├── ApiKeyMissing (401 api_key_required), ApiKeyRevoked (401)
    │   ├── InsufficientScope (403), ApiKeyNotFound (404), ApiKeyNotActive (409)
    │   └── InvalidScopes, InvalidKeyName (422)
    ├── V1Error                           tokenbank.v1.errors (the service API, widgets)
    │   ├── CustomerNotFound, HoldNotFound (404), CustomerConflict (409)
    │   ├── ReturnUrlNotAllowed (422)
    │   ├── WidgetTokenInvalid (401 invalid_widget_token),
    │   │   CheckoutTokenInvalid (401 invalid_checkout_token)
    │   └── WidgetsNotConfigured (404)
    │       └── JwksUnavailable (503)
    ├── OutboundError                     tokenbank.outbound.errors (webhooks we send)
    │   ├── WebhookEndpointNotFound, WebhookDeliveryNotFound (404)
    │   └── WebhookUrlRefused, UnknownEventType (422)
    ├── SubscriptionError                 tokenbank.subscriptions.errors
    │   ├── UnknownPlan (422), SubscriptionNotFound (404)
    │   └── SubscriptionExists, PortalUnavailable (409)
    ├── PricingError                      tokenbank.pricing.errors
    │   └── PriceBookInvalid, UnknownModel, CostCapTooLow (422)
    ├── RateLimited (429, Retry-After)    tokenbank.ratelimit.service
    └── MetricsForbidden (403)            tokenbank.health

    ConfigError                           the process refuses to start; never a response
    ├── ProductionConfigError             tokenbank.config
    ├── UnsupportedDatabaseURL            tokenbank.db
    ├── ProviderNotConfigured             tokenbank.chat.providers
    ├── HoldShorterThanAITimeout          tokenbank.chat.errors
    └── PriceBookConfigInvalid            tokenbank.pricing.errors

Not ``AppError`` and still answered here: request validation (422 ``validation_error``),
Starlette's HTTP errors, database errors (a data exception is :class:`InvalidInput`, an
unreachable database :class:`DatabaseUnavailable`, a deadlock :class:`RetryLater`) and
anything else (:class:`InternalError`). Metrics are counted by the domain that decides,
never here.
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

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """Settings the process cannot run with; raised at start-up, never answered to a client.

    Subclasses also keep the builtin base they always had (``ValueError`` or
    ``RuntimeError``), so code catching those still does.
    """


class AppError(Exception):
    """Base of every error the API reports on purpose.

    A subclass says what it answers in its class line, and inherits what it leaves out::

        class ChatNotFound(ChatError, status=404, code="chat_not_found", message="No such chat."):
            ...

    Every class name, status and code is part of the API (the OpenAPI enum of codes, the
    clients' translations), so each stays one named class.
    """

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "The request could not be processed."

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if code is not None:
            cls.code = code
        if message is not None:
            cls.message = message

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.detail = message or self.message
        self.extra = extra
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.detail, **self.extra}

    headers: dict[str, str] | None = None


class NotFound(AppError, status=404, code="not_found", message="Not found."): ...


class IdempotencyKeyReused(
    AppError,
    status=409,
    code="idempotency_key_reused",
    message="This idempotency key was already used for a different request.",
):
    """The same idempotency key came back with a different request (another amount, tier,
    message or reason); a retry of the same request returns the first result instead."""


class Unavailable(AppError, status=503, code="unavailable"):
    """503: a dependency will not serve us now. Nothing was changed, so the same request
    may simply be sent again after ``Retry-After``."""

    retry_after_s: ClassVar[int] = 2

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers = {"Retry-After": str(self.retry_after_s)}


class DatabaseUnavailable(
    Unavailable,
    code="database_unavailable",
    message="The database is not answering; try again shortly.",
):
    ...


class RetryLater(
    Unavailable,
    code="retry_later",
    message="A concurrent request got in the way; nothing was changed. Please retry.",
):
    """A deadlock or serialization failure rolled the whole transaction back."""

    retry_after_s = 1


class InvalidInput(
    AppError,
    status=422,
    code="invalid_input",
    message="The request contains characters or values that cannot be stored.",
):
    """The input itself cannot be stored (a NUL character, an unpaired surrogate)."""


class InternalError(
    AppError, status=500, code="internal_error", message="Something went wrong on our side."
):
    """A bug: the request failed on our side (logged with its request id)."""


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


def app_error_response(exc: AppError) -> JSONResponse:
    """The one rendering of an :class:`AppError` (every 503 body included)."""
    return JSONResponse(
        status_code=exc.status_code, content={"error": exc.to_dict()}, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return app_error_response(exc)

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
            return app_error_response(InvalidInput())
        if sqlstate in ("40P01", "40001"):
            # A deadlock or serialization failure rolled the transaction back whole:
            # nothing happened, and the same request may simply be sent again.
            log.warning("transaction aborted by the database (%s); client may retry", sqlstate)
            return app_error_response(RetryLater())
        if is_connection_error(exc):
            log.warning("database unavailable: %s", type(exc.orig).__name__)
            return app_error_response(DatabaseUnavailable())
        raise exc

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_request: Request, _exc: UnicodeEncodeError) -> JSONResponse:
        unencodable = InvalidInput("The request contains characters that cannot be stored.")
        return app_error_response(unencodable)

    @app.exception_handler(PoolTimeoutError)
    async def _pool(_request: Request, _exc: PoolTimeoutError) -> JSONResponse:
        return app_error_response(DatabaseUnavailable())

    @app.exception_handler(OSError)
    async def _os(_request: Request, exc: OSError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return app_error_response(DatabaseUnavailable())

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        # The server drops the connection after an unhandled error; saying so lets the
        # client open a new one instead of failing its next request on this one.
        return error_response(
            500, InternalError.code, InternalError.message, headers={"Connection": "close"}
        )
