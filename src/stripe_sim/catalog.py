"""Products and Prices (the catalog subscriptions bill from).

As Stripe's: a ``lookup_key`` names at most one price (creating a second price with
it is refused unless ``transfer_lookup_key=true`` moves it), so a catalog is synced
idempotently by listing ``lookup_keys[]`` (or searching ``lookup_key:'…'``) before
creating. A product with prices cannot be deleted; prices are archived
(``active=false``), never deleted.
"""

from __future__ import annotations

from . import objects, search
from .errors import ParameterInvalid, ParameterMissing, ResourceMissing, StripeApiError
from .ids import new_id
from .objects import Obj
from .params import Params, apply_metadata
from .payment_intents import MIN_AMOUNTS
from .state import RequestContext, SimState, list_query

INTERVALS = ("day", "week", "month", "year")


def create_product(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    custom_id = p.text("id") or None
    name = p.text("name", required=True) or ""
    description = p.text("description") or None
    active = p.boolean("active")
    metadata = apply_metadata({}, p.metadata())
    price_data = p.nested("default_price_data")
    p.ignore("images", "marketing_features", "statement_descriptor", "tax_code", "unit_label")
    p.ignore("url", "shippable", "package_dimensions")
    if price_data is None:
        p.finish()
    if not name:
        raise ParameterMissing("name")
    if custom_id is not None and state.store.products.find(custom_id) is not None:
        raise StripeApiError("Product already exists.", code="resource_already_exists", param="id")
    now = state.now()
    product: Obj = {
        "id": custom_id or new_id("prod"),
        "object": "product",
        "active": True if active is None else active,
        "created": now,
        "default_price": None,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    state.store.products.add(product)
    state.emit("product.created", product, ctx)
    if price_data is not None:
        price = _new_price(state, price_data, product, None, {}, None)
        p.finish()
        product["default_price"] = price["id"]
        state.emit("price.created", price, ctx)
    return product


def retrieve_product(state: SimState, prod_id: str, p: Params) -> Obj:
    p.finish()
    product = state.store.products.get(prod_id)
    return objects.deleted(product) if prod_id in state.store.deleted else product


def update_product(state: SimState, prod_id: str, p: Params, ctx: RequestContext) -> Obj:
    product = _live_product(state, prod_id, "id")
    before = dict(product)
    for key in ("name", "description"):
        value = p.text(key)
        if value is not None:
            product[key] = value or None
    active = p.boolean("active")
    if active is not None:
        product["active"] = active
    product["metadata"] = apply_metadata(product["metadata"], p.metadata())
    default_price = p.text("default_price")
    p.ignore("images", "marketing_features", "statement_descriptor", "tax_code", "unit_label")
    p.finish()
    if default_price:
        price = state.store.prices.get(default_price, "default_price")
        if price["product"] != product["id"]:
            raise ParameterInvalid("The price must belong to this product.", "default_price")
        product["default_price"] = price["id"]
    changed = {k: v for k, v in before.items() if product.get(k) != v}
    if changed:
        product["updated"] = state.now()
        state.emit("product.updated", product, ctx, changed)
    return product


def delete_product(state: SimState, prod_id: str, p: Params, ctx: RequestContext) -> Obj:
    p.finish()
    product = _live_product(state, prod_id, "id")
    if any(price["product"] == prod_id for price in state.store.prices.all()):
        raise StripeApiError(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    state.store.deleted.add(prod_id)
    state.emit("product.deleted", product, ctx)
    return objects.deleted(product)


def list_products(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    active = p.boolean("active")
    ids = p.str_list("ids")
    p.finish()
    return state.store.products.page(
        query,
        lambda o: state.store.not_deleted(o) and (ids is None or o["id"] in ids),
        active=active,
    )


def create_price(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    prod_id = p.text("product") or None
    product_data = p.nested("product_data")
    lookup_key = p.text("lookup_key") or None
    transfer = p.boolean("transfer_lookup_key") or False
    metadata = apply_metadata({}, p.metadata())
    nickname = p.text("nickname") or None
    if prod_id is None and product_data is None:
        raise ParameterMissing("product")
    if product_data is not None:
        name = product_data.text("name", required=True) or ""
        product_metadata = apply_metadata({}, product_data.metadata())
        product_data.ignore("statement_descriptor", "tax_code", "unit_label", "active")
        product = _plain_product(state, name, product_metadata, ctx)
    else:
        assert prod_id is not None
        product = _live_product(state, prod_id, "product")
    price = _new_price(state, p, product, lookup_key, metadata, nickname, transfer=transfer)
    state.emit("price.created", price, ctx)
    return price


def retrieve_price(state: SimState, price_id: str, p: Params) -> Obj:
    p.finish()
    return state.store.prices.get(price_id)


def update_price(state: SimState, price_id: str, p: Params, ctx: RequestContext) -> Obj:
    price = state.store.prices.get(price_id)
    before = dict(price)
    lookup_key = p.text("lookup_key")
    transfer = p.boolean("transfer_lookup_key") or False
    active = p.boolean("active")
    nickname = p.text("nickname")
    price["metadata"] = apply_metadata(price["metadata"], p.metadata())
    p.ignore("tax_behavior", "currency_options")
    p.finish()
    if lookup_key is not None:
        _claim_lookup_key(state, lookup_key or None, price["id"], transfer)
        price["lookup_key"] = lookup_key or None
    if active is not None:
        price["active"] = active
    if nickname is not None:
        price["nickname"] = nickname or None
    changed = {k: v for k, v in before.items() if price.get(k) != v}
    if changed:
        state.emit("price.updated", price, ctx, changed)
    return price


def list_prices(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    active = p.boolean("active")
    product = p.text("product")
    price_type = p.text("type", choices=("one_time", "recurring"))
    currency = p.text("currency")
    lookup_keys = p.str_list("lookup_keys")
    p.finish()
    return state.store.prices.page(
        query,
        lambda o: (
            (not price_type or o["type"] == price_type)
            and (lookup_keys is None or o["lookup_key"] in lookup_keys)
        ),
        active=active,
        product=product,
        currency=None if currency is None else currency.lower(),
    )


def search_prices(state: SimState, p: Params) -> Obj:
    fields = ("lookup_key", "active", "product", "currency", "type")
    return search.search(state.store.prices, p, fields)


def search_products(state: SimState, p: Params) -> Obj:
    fields = ("name", "active", "description")
    return search.search(state.store.products, p, fields, state.store.not_deleted)


def _new_price(
    state: SimState,
    p: Params,
    product: Obj,
    lookup_key: str | None,
    metadata: dict[str, str],
    nickname: str | None,
    *,
    transfer: bool = False,
) -> Obj:
    currency = (p.text("currency", required=True) or "").lower()
    unit_amount = p.integer("unit_amount")
    recurring = p.nested("recurring")
    p.ignore("tax_behavior", "billing_scheme", "active")
    if currency not in MIN_AMOUNTS:
        raise ParameterInvalid(f"Invalid currency: {currency}.", "currency")
    if unit_amount is None:
        raise ParameterMissing("unit_amount")
    if unit_amount < 0:
        raise ParameterInvalid("unit_amount must be at least 0.", "unit_amount")
    recurring_obj = None
    if recurring is not None:
        interval = recurring.text("interval", required=True, choices=INTERVALS) or ""
        count = recurring.integer("interval_count") or 1
        recurring.text("usage_type", choices=("licensed",))
        if not interval:
            raise ParameterMissing("recurring[interval]")
        recurring_obj = {
            "interval": interval,
            "interval_count": count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    price: Obj = {
        "id": new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": state.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": metadata,
        "nickname": nickname,
        "product": product["id"],
        "recurring": recurring_obj,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring_obj else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    p.finish()
    _claim_lookup_key(state, lookup_key, price["id"], transfer)
    price["lookup_key"] = lookup_key
    return state.store.prices.add(price)


def _claim_lookup_key(state: SimState, key: str | None, price_id: str, transfer: bool) -> None:
    if key is None:
        return
    for other in state.store.prices.all():
        if other["lookup_key"] == key and other["id"] != price_id:
            if not transfer:
                raise StripeApiError(
                    f"A price (`{other['id']}`) already uses that lookup key.",
                    param="lookup_key",
                )
            other["lookup_key"] = None


def _plain_product(
    state: SimState, name: str, metadata: dict[str, str], ctx: RequestContext
) -> Obj:
    data: dict[str, object] = {"name": name}
    if metadata:
        data["metadata"] = metadata
    return create_product(state, Params(data), ctx)


def _live_product(state: SimState, prod_id: str, param: str) -> Obj:
    product = state.store.products.get(prod_id, param)
    if prod_id in state.store.deleted:
        raise ResourceMissing("product", prod_id, param)
    return product
