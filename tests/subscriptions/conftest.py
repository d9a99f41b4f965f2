"""The payments bench (the app on a real port, the local Stripe server, the SDK), with
Stripe test clocks on: subscriptions move through months in seconds."""

from __future__ import annotations

from payments.conftest import env, pay_settings, sim

__all__ = ["env", "pay_settings", "sim"]
