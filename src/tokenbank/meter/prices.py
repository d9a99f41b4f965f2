"""What a metered feature costs: the one place the meter reads a price.

The prices are the ``features`` object of the price book in force (``{"features":
{"tts_clip": 20}}``: tokens per unit; seeded from ``PRICE_BOOK``, versioned and edited by
admins, see :mod:`tokenbank.pricing`). A hold records the price it was made at.
"""

from __future__ import annotations

from tokenbank.pricing.book import Book

#: A feature's name in the URL and the price book: lower-case letters, digits, ``_.-``,
#: up to 64 characters, never a ``:`` (it sits inside ledger keys before the caller's own).
FEATURE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def feature_price(book: Book, feature: str) -> int | None:
    """Tokens per unit of ``feature``; None when the feature is not priced (unknown).

    A price that is not a whole number of at least one token is no price: such a feature
    is not metered.
    """
    price = book.features.get(feature)
    if isinstance(price, bool) or not isinstance(price, int) or price < 1:
        return None
    return price
