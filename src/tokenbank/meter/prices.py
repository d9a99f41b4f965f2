"""What a metered feature costs: the one place the meter reads a price.

Today the prices are the ``features`` object of the configuration's ``PRICE_BOOK``
(``{"features": {"tts_clip": 20}}``: tokens per unit). When the price book becomes
versioned and editable, :func:`feature_price` is the one function to point at it.
"""

from __future__ import annotations

from tokenbank.config import Settings

#: A feature's name in the URL and the price book: lower-case letters, digits, ``_.-``,
#: up to 64 characters, never a ``:`` (it sits inside ledger keys before the caller's own).
FEATURE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def feature_price(settings: Settings, feature: str) -> int | None:
    """Tokens per unit of ``feature``; None when the feature is not priced (unknown).

    A price that is not a whole number of at least one token is no price: such a feature
    is not metered.
    """
    features = settings.price_book.get("features")
    if not isinstance(features, dict):
        return None
    price = features.get(feature)
    if isinstance(price, bool) or not isinstance(price, int) or price < 1:
        return None
    return price
