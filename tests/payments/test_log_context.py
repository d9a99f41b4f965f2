"""Log lines written while a payment is synced name its PaymentIntent (and the request's
caller, when there is one), as the operations docs promise."""

from __future__ import annotations

import pytest

from payments.kit import PayEnv

from support import LogLines

pytestmark = pytest.mark.anyio


async def test_a_sync_log_line_carries_the_payment_intent_id(
    env: PayEnv, log_lines: LogLines
) -> None:
    # An intent made at Stripe outside the app: the sync looks at it and logs why it
    # leaves it alone.
    stranger = await env.server.v1.payment_intents.create_async(
        {"amount": 700, "currency": "usd", "metadata": {"type": "something_else"}}
    )
    event = {
        "id": "evt_log_context_1", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": stranger.id, "object": "payment_intent"}},
    }
    r = await env.post_event(event)
    assert r.status_code == 200, r.text
    env.settle()  # the local Stripe server's own events for it, too
    lines = [x for x in log_lines.lines if x["msg"].startswith(f"ignoring {stranger.id}")]
    assert lines
    for line in lines:
        # Applied by the webhook worker, after the request: no request id, the intent's id.
        assert line["payment_intent_id"] == stranger.id
    # Only while that payment is the subject: no other line names it.
    assert all(
        x.get("payment_intent_id") in (None, stranger.id) for x in log_lines.lines
    )
