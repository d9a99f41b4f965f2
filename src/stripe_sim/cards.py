"""Stripe's documented test cards and test PaymentMethods, and card validation.

A card number decides what happens when a PaymentIntent is confirmed with it:
succeed, decline (with Stripe's code and decline_code), require 3D Secure, or
succeed and then be disputed. Luhn-valid numbers that are not test cards are
declined with ``test_mode_live_card``, as Stripe's test mode does.
"""

from __future__ import annotations

import enum
import hashlib
import time
from dataclasses import dataclass

from .errors import CardError, ParameterMissing


class Behaviour(enum.Enum):
    SUCCEED = "succeed"
    DECLINE = "decline"
    AUTHENTICATE = "authenticate"  # every payment needs 3D Secure, saved or not
    # 3D Secure on every on-session payment; off-session only until the card is set up
    # (a SetupIntent, or a PaymentIntent with setup_future_usage, authenticated it)
    AUTHENTICATE_UNLESS_SET_UP = "authenticate_unless_set_up"
    CHARGE_FAIL = "charge_fail"  # attaches to a Customer, every charge declines
    DISPUTE = "dispute"  # succeeds, then a fraudulent chargeback
    DISPUTE_NOT_RECEIVED = "dispute_not_received"  # succeeds, then a product_not_received one
    DISPUTE_INQUIRY = "dispute_inquiry"  # succeeds, then an inquiry (no money moves)
    MULTIPLE_DISPUTES = "multiple_disputes"  # succeeds, then two disputes
    EARLY_FRAUD_WARNING = "early_fraud_warning"  # succeeds, then an early fraud warning
    PENDING_REFUND = "pending_refund"  # refunds start pending, later succeed
    REFUND_FAIL = "refund_fail"  # refunds succeed, later fail


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    param: str | None = None

    @property
    def seller_message(self) -> str:
        if self.decline_code == "generic_decline":
            return "The bank did not return any further details with this decline."
        return f"The bank returned the decline code `{self.decline_code}`."


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = Decline(
    "card_declined", "insufficient_funds", "Your card has insufficient funds."
)
LOST_CARD = Decline("card_declined", "lost_card", "Your card was declined.")
STOLEN_CARD = Decline("card_declined", "stolen_card", "Your card was declined.")
EXPIRED_CARD = Decline("expired_card", "expired_card", "Your card has expired.", "exp_month")
INCORRECT_CVC = Decline(
    "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"
)
PROCESSING_ERROR = Decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
)
LIVE_CARD = Decline(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test "
    "(live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


@dataclass(frozen=True)
class SimCard:
    number: str
    behaviour: Behaviour
    decline: Decline | None = None
    funding: str = "credit"
    # Stripe's "already set up" card: saved for off-session use from the start.
    set_up: bool = False


_CARDS = [
    SimCard("4242424242424242", Behaviour.SUCCEED),
    SimCard("4000056655665556", Behaviour.SUCCEED, funding="debit"),
    SimCard("5555555555554444", Behaviour.SUCCEED),
    SimCard("2223003122003222", Behaviour.SUCCEED),
    SimCard("5200828282828210", Behaviour.SUCCEED, funding="debit"),
    SimCard("5105105105105100", Behaviour.SUCCEED, funding="prepaid"),
    SimCard("378282246310005", Behaviour.SUCCEED),
    SimCard("371449635398431", Behaviour.SUCCEED),
    SimCard("6011111111111117", Behaviour.SUCCEED),
    SimCard("3056930009020004", Behaviour.SUCCEED),
    SimCard("3566002020360505", Behaviour.SUCCEED),
    SimCard("6200000000000005", Behaviour.SUCCEED),
    SimCard("4000000000003055", Behaviour.SUCCEED),
    SimCard("4000000000000002", Behaviour.DECLINE, GENERIC),
    SimCard("4000000000009995", Behaviour.DECLINE, INSUFFICIENT_FUNDS),
    SimCard("4000000000009987", Behaviour.DECLINE, LOST_CARD),
    SimCard("4000000000009979", Behaviour.DECLINE, STOLEN_CARD),
    SimCard("4000000000000069", Behaviour.DECLINE, EXPIRED_CARD),
    SimCard("4000000000000127", Behaviour.DECLINE, INCORRECT_CVC),
    SimCard("4000000000000119", Behaviour.DECLINE, PROCESSING_ERROR),
    SimCard("4000002500003155", Behaviour.AUTHENTICATE_UNLESS_SET_UP),
    SimCard("4000002760003184", Behaviour.AUTHENTICATE),
    SimCard("4000000000003220", Behaviour.AUTHENTICATE),
    SimCard("4000000000000259", Behaviour.DISPUTE),
    SimCard("4000000000002685", Behaviour.DISPUTE_NOT_RECEIVED),
    SimCard("4000000000001976", Behaviour.DISPUTE_INQUIRY),
    SimCard("4000000404000079", Behaviour.MULTIPLE_DISPUTES),
    SimCard("4000000000005423", Behaviour.EARLY_FRAUD_WARNING),
    SimCard("4000000000007726", Behaviour.PENDING_REFUND),
    SimCard("4000000000005126", Behaviour.REFUND_FAIL),
    SimCard("4000000000000341", Behaviour.CHARGE_FAIL, GENERIC),
    SimCard("4000003800000446", Behaviour.AUTHENTICATE_UNLESS_SET_UP, set_up=True),
]
TEST_CARDS: dict[str, SimCard] = {card.number: card for card in _CARDS}

# Stripe's test PaymentMethod ids; each use materialises a fresh ``pm_...``.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_threeDSecureOptional": "4000000000003055",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
    "pm_card_createDisputeInquiry": "4000000000001976",
    "pm_card_createMultipleDisputes": "4000000404000079",
    "pm_card_createIssuerFraudRecord": "4000000000005423",
    "pm_card_pendingRefund": "4000000000007726",
    "pm_card_refundFail": "4000000000005126",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequiredSetupForOffSession": "4000003800000446",
}
# Legacy tokens (``card[token]=tok_visa``) name the same cards.
TEST_TOKENS: dict[str, str] = {
    "tok_" + name.removeprefix("pm_card_"): number for name, number in TEST_PAYMENT_METHODS.items()
}


def card_for(number: str) -> SimCard:
    known = TEST_CARDS.get(number)
    if known is not None:
        return known
    return SimCard(number, Behaviour.DECLINE, LIVE_CARD)


def brand_of(number: str) -> str:
    two, four = int(number[:2]), int(number[:4])
    if number.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649:
        return "discover"
    if two in (30, 36, 38, 39):
        return "diners"
    if two == 35:
        return "jcb"
    if two == 62:
        return "unionpay"
    return "unknown"


def display_brand(brand: str) -> str:
    return {"amex": "american_express", "diners": "diners_club"}.get(brand, brand)


def fingerprint(number: str) -> str:
    digest = hashlib.sha256(f"stripe_sim:{number}".encode()).hexdigest()
    return digest[:16]


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


@dataclass(frozen=True)
class CardDetails:
    number: str
    exp_month: int
    exp_year: int
    cvc: str | None


def _card_error(code: str, message: str, param: str) -> CardError:
    return CardError(message, code=code, param=param)


def validate_card(
    number: str | None,
    exp_month: str | None,
    exp_year: str | None,
    cvc: str | None,
    now: float | None = None,
) -> CardDetails:
    """Check card details as typed in a browser; raise Stripe's ``card_error``."""
    if not number:
        raise ParameterMissing("card[number]")
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise _card_error(
            "invalid_number", "The card number is not a valid credit card number.", "card[number]"
        )
    if not luhn_valid(digits):
        raise _card_error("incorrect_number", "Your card number is incorrect.", "card[number]")
    if exp_month is None:
        raise ParameterMissing("card[exp_month]")
    if exp_year is None:
        raise ParameterMissing("card[exp_year]")
    month = _expiry_month(exp_month)
    year = _expiry_year(exp_year)
    today = time.gmtime(now)
    if year < today.tm_year or year > today.tm_year + 100:
        raise _card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "card[exp_year]"
        )
    if year == today.tm_year and month < today.tm_mon:
        raise _card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "card[exp_month]"
        )
    if cvc is not None and cvc != "":
        wanted = 4 if brand_of(digits) == "amex" else 3
        if not cvc.isdigit() or len(cvc) != wanted:
            raise _card_error("invalid_cvc", "Your card's security code is invalid.", "card[cvc]")
    return CardDetails(digits, month, year, cvc or None)


def _expiry_month(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 12:
        raise _card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "card[exp_month]"
        )
    return int(raw)


def _expiry_year(raw: str) -> int:
    if not raw.isdigit() or len(raw) not in (2, 4):
        raise _card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "card[exp_year]"
        )
    year = int(raw)
    return 2000 + year if year < 100 else year
