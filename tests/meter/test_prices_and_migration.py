"""The price of a metered feature, and migration 0017 down and up on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from tokenbank.meter.prices import feature_price
from tokenbank.migrate import downgrade, upgrade
from v1.test_migration import _run, _tables

from conftest import make_settings


@pytest.mark.parametrize(
    ("book", "price"),
    [
        ({"features": {"tts_clip": 20}}, 20),
        ({}, None),
        ({"features": {"image": 3}}, None),
        ({"features": {"tts_clip": 0}}, None),
        ({"features": {"tts_clip": -5}}, None),
        ({"features": {"tts_clip": 2.5}}, None),
        ({"features": {"tts_clip": True}}, None),
        ({"features": {"tts_clip": "20"}}, None),
        ({"features": ["tts_clip"]}, None),
        ({"models": {"tts_clip": {"per_reply": 1}}}, None),
    ],
)
def test_a_feature_costs_its_whole_price_per_unit_or_is_not_metered(
    book: dict[str, Any], price: int | None
) -> None:
    settings = make_settings("sqlite:///unused.db", price_book=book)
    assert feature_price(settings, "tts_clip") == price


def test_price_book_comes_from_json_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICE_BOOK", '{"features": {"tts_clip": 20}}')
    settings = make_settings("sqlite:///unused.db")
    assert feature_price(settings, "tts_clip") == 20


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
