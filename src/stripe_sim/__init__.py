"""stripe_sim: a stateful local Stripe test-mode server.

The official ``stripe`` SDK talks to it through its API base
(``stripe.StripeClient(key, base_addresses={"api": url})`` or
``stripe.api_base = url``). It understands Stripe's test cards, keeps
PaymentIntents, Charges, Refunds, Disputes, Customers and their PaymentMethods,
SetupIntents, Products, Prices, Subscriptions, Invoices, test clocks and Events
in memory, delivers signed webhooks with retries and injectable faults, and serves
a Stripe.js stand-in at ``/v3/``. See :mod:`stripe_sim.control` for its own
``/_sim/`` control API.
"""

from .app import create_sim_app
from .config import SimConfig, WebhookFaults
from .server import SimServer, SimServerError, WebhooksNotIdle, run_sim

__all__ = [
    "SimConfig",
    "SimServer",
    "SimServerError",
    "WebhookFaults",
    "WebhooksNotIdle",
    "create_sim_app",
    "run_sim",
]
