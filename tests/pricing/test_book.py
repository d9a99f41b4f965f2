"""The price book: what parses, the arithmetic of a price, and each process's cache."""

from __future__ import annotations

from typing import Any

import pytest

from tokenbank.auth.models import User
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.pricing import book as pb
from tokenbank.pricing import flows, service
from tokenbank.pricing.errors import PriceBookConfigInvalid, PriceBookInvalid

from conftest import make_settings

USAGE: dict[str, Any] = {"per_1k_input": 500, "per_1k_output": 1000, "per_1k_cached": 100}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ([], "must be an object"),
        ({"models": {}}, "at least one model"),
        ({"models": {"m": {"per_reply": -1}}}, "between 0"),
        ({"models": {"m": {"per_reply": 1.5}}}, "whole number"),
        ({"models": {"m": {"per_reply": True}}}, "whole number"),
        ({"models": {"m": {"per_reply": 1, "per_1k_input": 1}}}, "not both"),
        ({"models": {"m": {"per_1k_input": 1}}}, "per_1k_output"),
        ({"models": {"m": {**USAGE, "per_1k_output": 0}}}, "between 1"),
        ({"models": {"m": {"per_reply": 1, "colour": "red"}}}, "unknown field"),
        ({"models": {"m": {"per_reply": 1}}, "extra": 1}, "unknown field"),
        ({"models": {"m": {"per_reply": 1}}, "features": {"tts": -20}}, "between 0"),
        ({"models": {" m": {"per_reply": 1}}}, "a model id"),
    ],
)
def test_a_book_that_cannot_be_used_is_refused_with_its_reason(raw: object, why: str) -> None:
    with pytest.raises(pb.BookInvalid, match=why):
        pb.parse(raw)


def test_a_usage_price_is_the_ceiling_of_the_sum_never_below_its_minimum() -> None:
    price = pb.parse({"models": {"m": {**USAGE, "minimum": 2}}}).models["m"]
    assert isinstance(price, pb.UsagePrice)
    assert pb.usage_cost(price, pb.Usage(1000, 1000)) == 1500
    assert pb.usage_cost(price, pb.Usage(1, 1)) == 2  # 1.5 -> 2, and the minimum is 2
    assert pb.usage_cost(price, pb.Usage(3, 1)) == 3  # 2.5 -> 3
    assert pb.usage_cost(price, pb.Usage(1000, 0, cached_tokens=1000)) == 100
    # Nonsense from a provider counts as nothing, never as a credit.
    assert pb.usage_cost(price, pb.Usage(-5, -5, cached_tokens=99)) == 2


def test_a_quote_fits_the_output_to_the_cap_and_the_charge_stays_within_the_hold() -> None:
    price = pb.UsagePrice(100, 1000, 10, 1)
    prompt = ["x" * 300]  # 3 + 4 + 100 = 107 tokens: 10.7 tokens of input
    assert pb.quote(price, prompt, max_output_tokens=50, cap=None) == pb.Quote(12, 61, None, 50, 107)
    capped = pb.quote(price, prompt, max_output_tokens=50, cap=20)
    assert capped == pb.Quote(12, 20, 20, 9, 107)  # 10.7 + 9 = 19.7 -> 20
    with pytest.raises(pb.CapTooLow):
        pb.quote(price, prompt, max_output_tokens=50, cap=11)
    held = capped.max
    assert pb.charge_for(price, held, pb.Usage(107, 500), input_estimate=107, delivered="") == 20
    assert pb.charge_for(price, held, pb.Usage(0, 0), input_estimate=107, delivered="") == 1
    assert pb.charge_for(price, held, None, input_estimate=107, delivered="abcdef") == 13
    flat = pb.PerReply(3)
    assert pb.quote(flat, prompt, max_output_tokens=50, cap=None) == pb.Quote(3, 3, None, None, 0)
    assert pb.charge_for(flat, 3, pb.Usage(10**6, 10**6), input_estimate=0, delivered="") == 3


def test_the_estimate_counts_bytes_so_non_latin_text_is_not_underestimated() -> None:
    assert pb.estimate_tokens("hello world!") == 4  # 12 bytes
    assert pb.estimate_tokens("日本語のテキスト") == 8  # 8 characters, 24 bytes


def _settings(db_url: str, **overrides: Any) -> Settings:
    return make_settings(db_url, price_book_cache_s=0, **overrides)


def test_a_bad_configured_book_stops_the_start() -> None:
    settings = make_settings("sqlite:///unused.db", price_book={"models": {}})
    with pytest.raises(PriceBookConfigInvalid):
        service.configured_book(settings, "m")


@pytest.mark.anyio
async def test_versions_are_seeded_from_configuration_and_seen_by_every_process(
    db_url: str, db: Database
) -> None:
    first = _settings(db_url, reply_cost_tokens=2)
    mine = flows.PriceBooks(service.configured_book(first, "m"), check_every_s=0)
    theirs = flows.PriceBooks(service.configured_book(first, "m"), check_every_s=0)
    book = await mine.current(db)
    assert (book.version, book.models) == (1, {"m": pb.PerReply(2)})
    assert (await theirs.current(db)).version == 1  # seeded once, not twice

    # A process configured otherwise charges its own configuration, as a version of its own
    # (the benchmark runs a free and a paid server on one database).
    changed = flows.PriceBooks(
        service.configured_book(_settings(db_url, reply_cost_tokens=3), "m"), check_every_s=0
    )
    assert (await changed.current(db)).version == 2
    assert (await changed.current(db)).models == {"m": pb.PerReply(3)}
    assert (await mine.current(db)).models == {"m": pb.PerReply(2)}
    assert (await mine.current(db)).version == 1

    # An admin's version wins over configuration from then on.
    async with db.transaction() as session:
        admin = User(username="admin", email="admin@example.com", password_hash="unused")
        session.add(admin)
        await session.flush()
        admin_id = admin.id
    written = await flows.put_book(db, first, "m", {"models": {"n": USAGE}}, admin_id=admin_id)
    assert written.version == 3
    assert (await theirs.current(db)).price("n") == pb.UsagePrice(500, 1000, 100, 1)
    assert (await changed.current(db)).version == 3  # an admin's version applies to all
    again = flows.PriceBooks(service.configured_book(first, "m"), check_every_s=0)
    assert (await again.current(db)).version == 3
    assert (await again.at(db, 1)).models == {"m": pb.PerReply(2)}
    with pytest.raises(PriceBookInvalid):
        await flows.put_book(db, first, "m", {"models": {"n": {}}}, admin_id=admin_id)

