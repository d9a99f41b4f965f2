"""Idempotency keys: one format per event, never two events on one key."""

from __future__ import annotations

import inspect
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.test_service import new_account
from tokenbank.auth import service as auth
from tokenbank.db import Database
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.meter.prices import FEATURE_PATTERN

FORMATS: dict[str, Callable[..., str]] = {
    name: fn
    for name, fn in vars(keys).items()
    if inspect.isfunction(fn) and not name.startswith("_") and not name.endswith("_sql")
}

ids = st.integers(min_value=1, max_value=2**62)
stripe_ids = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=40)
client_keys = st.text(min_size=1, max_size=60)
features = st.from_regex(FEATURE_PATTERN, fullmatch=True)
ARGUMENTS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "purchase": st.tuples(stripe_ids),
    "committed_hold": st.tuples(ids),
    "reversal": st.tuples(stripe_ids, st.integers(0, 10**6)),
    "reinstatement": st.tuples(stripe_ids, st.integers(0, 10**6)),
    "signup": st.tuples(ids),
    "admin": st.tuples(ids, client_keys),
    "generation": st.tuples(ids, st.integers(1, 100), client_keys),
    "reply_refund": st.tuples(ids),
    "meter_hold": st.tuples(features, client_keys),
    "meter_charge": st.tuples(features, client_keys),
    "allotment": st.tuples(stripe_ids),
    "allotment_reversal": st.tuples(stripe_ids, st.integers(0, 10**6)),
    "allotment_reinstatement": st.tuples(stripe_ids, st.integers(0, 10**6)),
    "lot_expiry": st.tuples(ids),
}
a_key = st.sampled_from(sorted(ARGUMENTS)).flatmap(
    lambda name: ARGUMENTS[name].map(lambda args: (name, args))
)


def test_every_format_has_its_own_prefix_and_none_starts_another() -> None:
    assert set(FORMATS) == set(ARGUMENTS), "a new format needs arguments in this test"
    assert len(set(keys.PREFIXES)) == len(keys.PREFIXES)
    for a in keys.PREFIXES:
        for b in keys.PREFIXES:
            assert a == b or not b.startswith(a), (a, b)


@given(a_key, a_key)
def test_two_keys_are_equal_only_for_the_same_event(
    a: tuple[str, tuple[Any, ...]], b: tuple[str, tuple[Any, ...]]
) -> None:
    key_a, key_b = FORMATS[a[0]](*a[1]), FORMATS[b[0]](*b[1])
    assert (key_a == key_b) == (a == b)
    assert key_a.startswith(keys.PREFIXES)


@pytest.mark.anyio
async def test_each_ledger_path_writes_the_key_of_its_format(db: Database) -> None:
    """The keys in the database are the ones :mod:`keys` makes, from Python and from the
    PostgreSQL charge path's SQL text alike."""
    user_id = await new_account(db)
    async with db.transaction() as session:
        await auth.grant_signup_bonus(session, user_id, 10)
        bought = await ledger.credit_purchase(session, user_id, 5, "pi_K", "pack")
        reversed_ = await ledger.reverse_purchase(
            session, user_id, 2, "pi_K", "refund", idempotency_key=keys.reversal("pi_K", 1)
        )
        held = await ledger.reserve(session, user_id, 1, idempotency_key="h", ttl_s=60)
    async with db.transaction() as session:
        committed = await ledger.commit(session, held.id, "reply")
        page = await ledger.history(session, user_id)
    by_type = {e.transaction_type: e.idempotency_key for e in page.items}
    assert by_type == {
        "grant": keys.signup(user_id),
        "purchase": keys.purchase("pi_K"),
        "purchase_reversal": keys.reversal("pi_K", 1),
        "deduction": keys.committed_hold(held.id),
    }
    assert (bought.idempotency_key, reversed_.reservation_id) == (keys.purchase("pi_K"), None)
    # A replay by the key finds the first entry, whichever dialect wrote the key.
    async with db.transaction() as session:
        again = await ledger.commit(session, held.id, "reply")
    assert again.replayed and again.id == committed.id
