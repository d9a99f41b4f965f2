"""``tokenbank stripe-sim`` (what ``make run`` starts) runs the top-level stripe_sim."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_cli_command_serves_the_local_stripe_server() -> None:
    port = free_port()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokenbank.cli",
            "stripe-sim",
            "--port",
            str(port),
            "--api-key",
            "sk_test_cli",
            "--webhook-secret",
            "whsec_cli",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/_sim/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "tokenbank stripe-sim did not start"
                time.sleep(0.05)
            headers = {"Authorization": "Bearer sk_test_cli"}
            config = httpx.get(f"http://127.0.0.1:{port}/_sim/config", headers=headers).json()
            assert config["webhook_secret"] == "whsec_cli"
            customer = httpx.post(
                f"http://127.0.0.1:{port}/v1/customers", data={"email": "a@example.com"},
                headers=headers,
            )
            assert customer.status_code == 200 and customer.json()["object"] == "customer"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
