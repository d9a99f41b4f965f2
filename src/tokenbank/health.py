from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from tokenbank.deps import DatabaseDep, SettingsDep
from tokenbank.errors import AppError, DatabaseUnavailable, error_responses
from tokenbank.observability import registry

router = APIRouter(tags=["health"], responses=error_responses(403, 503))


class Health(BaseModel):
    status: str


@router.get("/health", operation_id="health")
async def health(db: DatabaseDep) -> Health:
    """200 once the database answers; 503 ``database_unavailable`` otherwise."""
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer means "not healthy", by definition
        raise DatabaseUnavailable() from exc
    return Health(status="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus metrics. With ``METRICS_TOKEN`` set, a matching bearer token is required;
    without one, only loopback callers are answered (bind an internal address for scrapes)."""
    if settings.metrics_token:
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied, f"Bearer {settings.metrics_token}"):
            raise MetricsForbidden()
    elif (request.client.host if request.client else "") not in _LOOPBACK:
        raise MetricsForbidden()
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class MetricsForbidden(
    AppError,
    status=403,
    code="metrics_forbidden",
    message="Metrics need the metrics token (or a loopback caller).",
):
    ...


_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
