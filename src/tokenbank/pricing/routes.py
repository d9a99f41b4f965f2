"""``/api/admin/price-book``: the versioned price book (admins only)."""

from __future__ import annotations

from fastapi import APIRouter

from tokenbank.deps import AdminId, DatabaseDep, ProviderDep, SettingsDep
from tokenbank.errors import error_responses
from tokenbank.pricing import flows
from tokenbank.pricing.schemas import PriceBookIn, PriceBookOut
from tokenbank.pricing.service import VersionInfo

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 422, 503),
)


def _out(info: VersionInfo) -> PriceBookOut:
    return PriceBookOut.model_validate(info, from_attributes=True)


@router.get("/price-book", operation_id="admin_get_price_book")
async def get_price_book(
    _admin: AdminId, db: DatabaseDep, settings: SettingsDep, provider: ProviderDep
) -> PriceBookOut:
    # The configured provider's model prices the default book (no PRICE_BOOK).
    return _out(await flows.book_in_force(db, settings, provider.model))


@router.put("/price-book", operation_id="admin_put_price_book")
async def put_price_book(
    body: PriceBookIn,
    admin_id: AdminId,
    db: DatabaseDep,
    settings: SettingsDep,
    provider: ProviderDep,
) -> PriceBookOut:
    """Write a new version (``price_book_invalid`` if it does not parse). New replies are
    charged at it; replies already held keep the version they were held at."""
    written = await flows.put_book(
        db, settings, provider.model, body.book, admin_id=admin_id
    )
    return _out(written)
