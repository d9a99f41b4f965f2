"""The meter's holds as units of their own (they take ``Database``).

Reserve, commit and release each run as ONE unit through ``Database.run`` — on the
driver (asyncpg, or SQLite's own connection), the ledger's statements and the hold's
record between one ``BEGIN`` and ``COMMIT`` — as the service API's holds and a chat
reply's hold do: the hot path of every metered call."""

from __future__ import annotations

from tokenbank.config import Settings
from tokenbank.db import Database, unit_flow
from tokenbank.meter import service
from tokenbank.meter.errors import UnknownFeature
from tokenbank.meter.prices import feature_price
from tokenbank.pricing import flows as pricing

#: Reserve, commit and release: each the service function of the same name (its arguments
#: after the ``Database``) as one unit.
reserve = unit_flow(service.reserve)
commit_hold = unit_flow(service.commit_hold)
release_hold = unit_flow(service.release_hold)


async def unit_price(db: Database, settings: Settings, model: str, feature: str) -> int:
    """Tokens per unit of ``feature`` in the price book in force (its default model is the
    provider's ``model``); 404 ``unknown_feature`` when the book does not price it."""
    price = feature_price(await pricing.current(db, settings, model), feature)
    if price is None:
        raise UnknownFeature(feature)
    return price
