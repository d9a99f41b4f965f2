"""What can be bought and how the browser pays: tiers from configuration, Stripe mode.

Prices live only here, on the server: the client sends a tier id, never an amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokenbank.config import Settings, Tier
from tokenbank.payments.errors import UnknownTier

DEFAULT_STRIPE_JS_URL = "https://js.stripe.com/v3/"

Mode = Literal["simulated", "test", "live"]


@dataclass(frozen=True)
class DocumentedCard:
    number: str
    brand: str
    description: str


#: Stripe's documented test cards (https://docs.stripe.com/testing), shown in test modes.
TEST_CARDS: tuple[DocumentedCard, ...] = (
    DocumentedCard("4242 4242 4242 4242", "visa", "Succeeds"),
    DocumentedCard("5555 5555 5555 4444", "mastercard", "Succeeds"),
    DocumentedCard("4000 0000 0000 0002", "visa", "Declined (generic_decline)"),
    DocumentedCard("4000 0000 0000 9995", "visa", "Declined (insufficient_funds)"),
    DocumentedCard("4000 0000 0000 0069", "visa", "Declined (expired_card)"),
    DocumentedCard("4000 0000 0000 0127", "visa", "Declined (incorrect_cvc)"),
    DocumentedCard("4000 0025 0000 3155", "visa", "Requires 3D Secure, then succeeds or fails"),
    DocumentedCard("4000 0027 6000 3184", "visa", "Always requires 3D Secure"),
    DocumentedCard("4000 0000 0000 0259", "visa", "Succeeds, then a dispute withdraws the funds"),
)


def find_tier(settings: Settings, tier_id: str) -> Tier:
    tier = settings.pricing_tiers.get(tier_id)
    if tier is None:
        raise UnknownTier(f"No pricing tier {tier_id[:64]!r}.", tier=tier_id[:64])
    return tier


def stripe_mode(settings: Settings) -> Mode:
    """``simulated`` with the local Stripe server, else Stripe's own test or live mode."""
    if settings.stripe_simulated:
        return "simulated"
    return "live" if settings.stripe_live else "test"


def stripe_js_url(settings: Settings) -> str:
    return settings.stripe_js_url or DEFAULT_STRIPE_JS_URL


def cards_for(settings: Settings) -> tuple[DocumentedCard, ...]:
    """Test card numbers are useless (and confusing) to customers in live mode."""
    return () if stripe_mode(settings) == "live" else TEST_CARDS
