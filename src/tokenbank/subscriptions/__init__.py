"""Monthly plans on Stripe Billing: subscriptions, their invoices, and the tokens each
paid invoice allots (see :mod:`tokenbank.subscriptions.sync`)."""
