"""``/api/admin/price-book``: the versioned price book (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tokenbank.deps import AdminId, DatabaseDep, SettingsDep
from tokenbank.errors import error_responses
from tokenbank.pricing import flows
from tokenbank.pricing.schemas import PriceBookIn, PriceBookOut
from tokenbank.pricing.service import VersionInfo

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 422, 503),
)


def _default_model(request: Request) -> str:
    # The configured provider's model prices the default book (no PRICE_BOOK).
    return str(request.app.state.ai_provider.model)


def _out(info: VersionInfo) -> PriceBookOut:
    return PriceBookOut(
        version=info.version,
        book=dict(info.book),
        created_at=info.created_at,
        created_by=info.created_by,
    )


@router.get("/price-book", operation_id="admin_get_price_book")
async def get_price_book(
    request: Request, _admin: AdminId, db: DatabaseDep, settings: SettingsDep
) -> PriceBookOut:
    return _out(await flows.book_in_force(db, settings, _default_model(request)))


@router.put("/price-book", operation_id="admin_put_price_book")
async def put_price_book(
    request: Request, body: PriceBookIn, admin_id: AdminId, db: DatabaseDep, settings: SettingsDep
) -> PriceBookOut:
    """Write a new version (``price_book_invalid`` if it does not parse). New replies are
    charged at it; replies already held keep the version they were held at."""
    written = await flows.put_book(
        db, settings, _default_model(request), body.book, admin_id=admin_id
    )
    return _out(written)
