"""``python -m stripe_sim`` starts a usable server and says where."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import stripe

from sim.sim_kit import WEBHOOK_SECRET, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_module_entry_point_serves_the_api() -> None:
    port = free_port()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_sim",
            "--port",
            str(port),
            "--webhook-url",
            "http://127.0.0.1:1/hook",
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first_line = proc.stdout.readline()
            assert f"http://127.0.0.1:{port}" in first_line

            def healthy() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/_sim/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout_s=15, what="the CLI server")
            config = httpx.get(
                f"http://127.0.0.1:{port}/_sim/config",
                headers={"Authorization": "Bearer sk_test_cli"},
            ).json()
            assert config["webhook_secret"] == WEBHOOK_SECRET
            assert config["webhook_url"] == "http://127.0.0.1:1/hook"
            client = stripe.StripeClient(
                "sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"}
            )
            pi = client.v1.payment_intents.create(
                {
                    "amount": 500,
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "payment_method_types": ["card"],
                    "confirm": True,
                }
            )
            assert pi.status == "succeeded"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
