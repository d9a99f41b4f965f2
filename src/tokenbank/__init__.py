"""tokenbank: prepaid AI tokens on Stripe, with a ledger that is right to the token."""

__version__ = "0.1.0"
