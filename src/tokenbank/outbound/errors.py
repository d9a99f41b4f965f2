"""Outbound webhook errors.

OutboundError
├── WebhookEndpointNotFound (404 webhook_endpoint_not_found)
├── WebhookDeliveryNotFound (404 webhook_delivery_not_found)
├── WebhookUrlRefused (422 webhook_url_refused)      not https, or an internal address
└── UnknownEventType (422 unknown_event_type)
"""

from __future__ import annotations

from tokenbank.errors import AppError


class OutboundError(AppError):
    """Base of every outbound webhook rule."""


class WebhookEndpointNotFound(
    OutboundError,
    status=404,
    code="webhook_endpoint_not_found",
    message="No such webhook endpoint.",
):
    ...


class WebhookDeliveryNotFound(
    OutboundError,
    status=404,
    code="webhook_delivery_not_found",
    message="No such webhook delivery.",
):
    ...


class WebhookUrlRefused(
    OutboundError,
    status=422,
    code="webhook_url_refused",
    message="Webhook endpoints must be public https URLs.",
):
    """Events go to public https URLs only (outside development): a URL on this machine
    or a private network would let whoever configures it reach internal services (SSRF)."""


class UnknownEventType(
    OutboundError, status=422, code="unknown_event_type", message="Unknown event type."
):
    ...
