"""Subscription errors, each named after the rule it guards.

SubscriptionError
├── UnknownPlan (422)
├── SubscriptionNotFound (404)      the caller has no live subscription to change
├── SubscriptionExists (409)        one live subscription per user
├── PortalUnavailable (409)         the Customer Portal exists on Stripe itself only
└── TestClocksOff (404 not_found)   the dev clock route outside development
"""

from __future__ import annotations

from tokenbank.errors import AppError, NotFound


class SubscriptionError(AppError):
    """Base of every subscription rule violation."""


class UnknownPlan(
    SubscriptionError, status=422, code="unknown_plan", message="No such subscription plan."
):
    """The client names a plan; prices and tokens only ever come from the server's plans."""


class SubscriptionNotFound(
    SubscriptionError,
    status=404,
    code="subscription_not_found",
    message="You have no active subscription.",
):
    ...


class SubscriptionExists(
    SubscriptionError,
    status=409,
    code="subscription_exists",
    message="You already have a subscription; change its plan instead.",
):
    """One live subscription per user: change its plan instead of subscribing again."""


class PortalUnavailable(
    SubscriptionError,
    status=409,
    code="portal_unavailable",
    message="The billing portal is not available on this server.",
):
    ...


class ClockRouteOff(NotFound):
    """Outside development with test clocks the route does not exist."""
