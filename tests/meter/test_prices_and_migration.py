"""The price of a metered feature, and migration 0017 down and up on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from tokenbank.meter.prices import feature_price
from tokenbank.migrate import downgrade, upgrade
from tokenbank.pricing import book as pb
from tokenbank.pricing.errors import PriceBookConfigInvalid
from tokenbank.pricing.service import configured_book
from v1.test_migration import _run, _tables

from conftest import make_settings

REFUSED = "refused"


def _price_of(book: dict[str, Any] | None, feature: str = "tts_clip") -> int | None | str:
    settings = make_settings("sqlite:///unused.db", price_book=book)
    try:
        configured = configured_book(settings, "offline")
    except PriceBookConfigInvalid:
        return REFUSED  # the app refuses to start with it
    return feature_price(pb.parse(configured, 1), feature)


@pytest.mark.parametrize(
    ("book", "price"),
    [
        ({"features": {"tts_clip": 20}}, 20),
        ({}, None),
        (None, None),
        ({"features": {"image": 3}}, None),
        ({"features": {"tts_clip": -5}}, REFUSED),
        ({"features": {"tts_clip": 2.5}}, REFUSED),
        ({"features": {"tts_clip": True}}, REFUSED),
        ({"features": {"tts_clip": "20"}}, REFUSED),
        ({"features": ["tts_clip"]}, REFUSED),
        ({"models": {"tts_clip": {"per_reply": 1}}}, None),
    ],
)
def test_a_feature_costs_its_whole_price_per_unit_or_the_book_is_refused(
    book: dict[str, Any] | None, price: int | None | str
) -> None:
    """A price book that only prices features keeps the per-reply model prices."""
    assert _price_of(book) == price


def test_a_feature_priced_zero_is_not_metered() -> None:
    assert _price_of({"features": {"tts_clip": 0}}) in (None, REFUSED)


def test_price_book_comes_from_json_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICE_BOOK", '{"features": {"tts_clip": 20}}')
    settings = make_settings("sqlite:///unused.db")
    book = pb.parse(configured_book(settings, "offline"), 1)
    assert feature_price(book, "tts_clip") == 20
    assert book.price("offline") is not None  # the reply's own price stays per reply


def test_0017_downgrades_and_upgrades_and_the_database_knows_refund(db_url: str) -> None:
    """Sync: the migration runner starts its own event loop."""
    new = {"reply_refunds", "meter_holds"}
    assert new <= asyncio.run(_tables(db_url))
    asyncio.run(_run(db_url, "INSERT INTO users (username, email, password_hash, is_admin, "
                             "created_at, locale) VALUES ('u', 'u@x.test', '-', false, "
                             "CURRENT_TIMESTAMP, 'en')"))
    refund = ("INSERT INTO token_transactions (user_id, transaction_type, amount, balance_after,"
              " description, created_at) SELECT id, '{}', 1, 1, '', CURRENT_TIMESTAMP FROM users")
    with pytest.raises((IntegrityError, DBAPIError)):
        asyncio.run(_run(db_url, refund.format("refunded")))  # a word the code does not know
    downgrade(db_url, "0011")
    assert not new & asyncio.run(_tables(db_url))
    with pytest.raises((IntegrityError, DBAPIError)):
        asyncio.run(_run(db_url, refund.format("refund")))
    upgrade(db_url)
    assert new <= asyncio.run(_tables(db_url))
    asyncio.run(_run(db_url, refund.format("refund")))
    with pytest.raises((IntegrityError, DBAPIError)):  # still append-only after the rebuilds
        asyncio.run(_run(db_url, "UPDATE token_transactions SET amount = 2"))
