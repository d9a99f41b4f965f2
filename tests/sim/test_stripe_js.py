"""The Stripe.js stand-in: served, valid JavaScript, CORS for browsers, a working flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import stripe

from sim.sim_kit import PUBLISHABLE_KEY, new_intent
from stripe_sim import SimServer

NODE = shutil.which("node")
ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "client" / "node_modules"


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("path", ["/v3/", "/v3", "/js/v3"])
def test_served_script_is_valid_javascript(sim: SimServer, path: str, tmp_path: Path) -> None:
    response = httpx.get(sim.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "window.Stripe = Stripe" in response.text
    script = tmp_path / "stripe.js"
    script.write_text(response.text)
    checked = subprocess.run([str(NODE), "--check", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_cors_allows_localhost_origins_and_preflight(sim: SimServer) -> None:
    origin = "http://localhost:5173"
    preflight = httpx.options(
        f"{sim.url}/v1/payment_methods",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    challenge = httpx.options(
        f"{sim.url}/v1/3ds2/challenge_complete",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert challenge.headers["access-control-allow-origin"] == origin
    stranger = httpx.get(
        f"{sim.url}/v1/payment_intents",
        headers={"Origin": "https://evil.example", "Authorization": "Bearer sk_test_x"},
    )
    assert "access-control-allow-origin" not in stranger.headers


def test_configured_origins_are_allowed() -> None:
    from stripe_sim import SimConfig

    with SimServer(SimConfig(allowed_origins=["https://shop.example"])) as sim:
        response = httpx.get(
            f"{sim.url}/v1/events",
            headers={"Origin": "https://shop.example", "Authorization": "Bearer sk_test_x"},
        )
        assert response.headers["access-control-allow-origin"] == "https://shop.example"


@pytest.mark.skipif(
    NODE is None
    or not (NODE_MODULES / "jsdom").is_dir()
    or not (NODE_MODULES / "@stripe" / "stripe-js").is_dir(),
    reason="needs node, jsdom and @stripe/stripe-js from the web client's node_modules",
)
def test_payment_element_flow_in_a_dom(client: stripe.StripeClient, sim: SimServer) -> None:
    three_ds = new_intent(client, amount=2000)
    declined = new_intent(client, amount=500)
    card_element = new_intent(client, amount=700)
    customer = client.v1.customers.create({"email": "ada@example.com"})
    setup = client.v1.setup_intents.create(
        {"customer": customer.id, "payment_method_types": ["card"]}
    )

    run = subprocess.run(
        [
            str(NODE),
            str(Path(__file__).parent / "js" / "stripe_js_flow.cjs"),
            sim.url,
            PUBLISHABLE_KEY,
            str(three_ds.client_secret),
            str(declined.client_secret),
            str(card_element.client_secret),
            str(setup.client_secret),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )

    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["missing"] == []
    assert seen["loadStripeWarnings"] == []
    assert seen["changes"][-1] == {"complete": True, "empty": False}  # no error key
    assert seen["changes"][0] == {"complete": False, "empty": False, "error": "incomplete_expiry"}
    assert seen["threeDs"] == "succeeded"
    assert seen["declined"] == {
        "type": "card_error",
        "decline_code": "generic_decline",
        "pi": "requires_payment_method",
    }
    assert seen["cardElement"] == {"postalShown": False, "status": "succeeded"}
    assert seen["setup"] == "succeeded"  # confirmSetup, 3D Secure answered in the dialog
    saved = client.v1.customers.payment_methods.list(customer.id).data
    assert [pm.card.last4 for pm in saved] == ["3155"]  # type: ignore[union-attr]
    assert seen["labelsLeft"] == 0  # destroy() removed the fields
    assert client.v1.payment_intents.retrieve(three_ds.id).status == "succeeded"
    charge = client.v1.charges.list({"payment_intent": three_ds.id}).data[0]
    assert charge.billing_details.address is not None
    assert charge.billing_details.address.postal_code == "94103"
