"""What PaymentIntents and SetupIntents share: the client secret check and 3D Secure's
``next_action`` (the simulator's challenge page, by redirect or through Stripe.js)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from urllib.parse import urlencode

from .errors import ClientSecretMismatch, ParameterMissing, StripeApiError, doc_url
from .ids import new_id
from .objects import Obj
from .params import Params
from .state import RequestContext, SimState
from .store import Collection

_NAMES = {"payment_intent": "PaymentIntent", "setup_intent": "SetupIntent"}


def check_client_secret(intent: Obj, client_secret: str | None, ctx: RequestContext) -> None:
    """A publishable key must show the intent's secret; a secret key may omit it."""
    if client_secret is None:
        if ctx.publishable:
            raise ParameterMissing("client_secret")
        return
    if client_secret != intent["client_secret"]:
        raise ClientSecretMismatch()


def retrieve(intents: Collection, intent_id: str, p: Params, ctx: RequestContext) -> Obj:
    """The intent ``intent_id`` of ``intents``; a publishable key must show its secret."""
    intent = intents.get(intent_id, "intent")
    check_client_secret(intent, p.text("client_secret"), ctx)
    p.finish()
    return intent


def check_awaits_challenge(
    intent: Obj, client_secret: str | None, unexpected_state: Callable[[str], StripeApiError]
) -> None:
    """Only the intent's own client secret (when one is shown) answers its 3D Secure
    challenge, and only while it waits for one (else ``unexpected_state(message)``)."""
    if client_secret is not None and client_secret != intent["client_secret"]:
        raise ClientSecretMismatch()
    if intent["status"] != "requires_action":
        raise unexpected_state(
            f"This {_NAMES[intent['object']]} has no pending 3D Secure authentication "
            f"(status {intent['status']})."
        )


def three_d_secure_action(
    intent: Obj, return_url: str | None, use_stripe_sdk: bool, ctx: RequestContext
) -> Obj:
    """The ``next_action`` that sends the customer to the 3D Secure challenge of ``intent``."""
    query = {"client_secret": intent["client_secret"]}
    if return_url:
        query["return_url"] = return_url
    url = f"{ctx.base_url}/_sim/3ds/{intent['id']}?{urlencode(query)}"
    if return_url and not use_stripe_sdk:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": return_url, "url": url},
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "stripe_js": url,
            "source": new_id("src"),
        },
    }


def fail_authentication(
    state: SimState,
    intent: Obj,
    pm: Obj,
    ctx: RequestContext,
    *,
    error_field: str,
    code: str,
    message: str,
    event: str,
) -> Obj:
    """The customer failed the challenge: the intent wants a payment method again,
    ``error_field`` (``last_payment_error`` | ``last_setup_error``) says why, and ``event``
    tells the webhooks."""
    error = {
        "code": code,
        "doc_url": doc_url(code),
        "message": message,
        "payment_method": copy.deepcopy(pm),
        "type": "invalid_request_error",
    }
    intent.update(
        {
            "status": "requires_payment_method",
            "payment_method": None,
            "next_action": None,
            error_field: error,
        }
    )
    state.emit(event, intent, ctx)
    return intent
