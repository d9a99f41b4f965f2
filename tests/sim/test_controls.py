"""The ``/_sim/`` controls answer only to the server's secret key and a JSON body,
and never to a web page (no CORS): they hold the webhook secret and change faults."""

from __future__ import annotations

import httpx
import pytest

from sim.sim_kit import PUBLISHABLE_KEY, SECRET_KEY
from stripe_sim import SimConfig, SimServer


def test_controls_need_a_secret_key(sim: SimServer) -> None:
    no_key = httpx.get(f"{sim.url}/_sim/config")
    publishable = httpx.get(
        f"{sim.url}/_sim/config", headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"}
    )
    secret = httpx.get(f"{sim.url}/_sim/config", headers={"Authorization": f"Bearer {SECRET_KEY}"})

    assert no_key.status_code == 401
    assert "webhook_secret" not in no_key.text
    assert publishable.status_code == 401
    assert publishable.json()["error"]["code"] == "secret_key_required"
    assert secret.status_code == 200
    assert secret.json()["webhook_secret"].startswith("whsec_")


def test_only_the_configured_key_when_one_is_set() -> None:
    with SimServer(SimConfig(api_key="sk_test_only_this")) as sim:
        other = httpx.get(f"{sim.url}/_sim/faults", headers={"Authorization": "Bearer sk_test_x"})
        assert other.status_code == 401
        assert other.json()["error"]["code"] == "api_key_invalid"
        assert sim.set_faults(delay_s=0.5)["delay_s"] == 0.5  # the helper sends the right key


def test_a_cross_site_text_plain_post_changes_nothing(sim: SimServer) -> None:
    """What a hostile page can send without a preflight: a text/plain POST."""
    forged = httpx.post(
        f"{sim.url}/_sim/faults",
        content='{"drop_all": true}',
        headers={
            "Content-Type": "text/plain",
            "Origin": "https://evil.example",
            "Authorization": f"Bearer {SECRET_KEY}",
        },
    )

    assert forged.status_code == 415
    assert forged.json()["error"]["code"] == "json_body_required"
    assert "access-control-allow-origin" not in forged.headers
    assert sim.set_faults()["drop_all"] is False  # still off
    malformed = httpx.post(
        f"{sim.url}/_sim/reset",
        content="{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert malformed.status_code == 400


@pytest.mark.parametrize("origin", ["http://localhost:5173", "https://evil.example"])
def test_no_cors_for_controls_from_any_origin(sim: SimServer, origin: str) -> None:
    preflight = httpx.options(
        f"{sim.url}/_sim/faults",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    read = httpx.get(
        f"{sim.url}/_sim/config",
        headers={"Origin": origin, "Authorization": f"Bearer {SECRET_KEY}"},
    )

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in read.headers


def test_health_stays_open_for_probes(sim: SimServer) -> None:
    response = httpx.get(f"{sim.url}/_sim/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


@pytest.mark.parametrize(("path", "param"), [("faults", "faults"), ("api_faults", "api_faults")])
def test_faults_the_simulator_cannot_read_are_refused_and_change_nothing(
    sim: SimServer, path: str, param: str
) -> None:
    url = f"{sim.url}/_sim/{path}"
    auth = {"Authorization": f"Bearer {SECRET_KEY}"}
    before = httpx.get(url, headers=auth).json()

    refused = httpx.post(url, headers=auth, json={"no_such_fault": 1})

    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param
    assert httpx.get(url, headers=auth).json() == before
