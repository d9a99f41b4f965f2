""""Is this live mode?" has one answer, asked the same way by the payment config, the
admin's dashboard links and the refusal to start with live keys outside production."""

from __future__ import annotations

import pytest

from tokenbank.config import Settings, is_live_key
from tokenbank.payments.catalog import cards_for, stripe_mode

LIVE = "sk_live_" + "a" * 24
RESTRICTED_LIVE = "rk_live_" + "b" * 24
TEST = "sk_test_" + "c" * 24


@pytest.mark.parametrize(
    ("key", "live"),
    [(LIVE, True), (RESTRICTED_LIVE, True), ("pk_live_" + "d" * 24, True), (TEST, False),
     ("pk_test_" + "e" * 24, False), (None, False), ("", False),
     ("sk_test_has_live_inside", False)],
)
def test_a_key_is_live_by_its_prefix_alone(key: str | None, live: bool) -> None:
    assert is_live_key(key) is live


def test_the_mode_shown_and_the_refusal_outside_production_agree() -> None:
    for key in (LIVE, RESTRICTED_LIVE, TEST):
        settings = Settings(_env_file=None, app_env="development", stripe_secret_key=key)  # type: ignore[call-arg]
        live = settings.stripe_live
        assert stripe_mode(settings) == ("live" if live else "test")
        assert (cards_for(settings) == ()) is live  # no test cards shown to live customers
        assert ("STRIPE_SECRET_KEY" in settings.live_keys_outside_production()) is live
