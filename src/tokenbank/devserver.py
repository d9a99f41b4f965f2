"""``tokenbank dev`` (what ``make run`` calls): the whole app on one machine.

It starts a local SMTP server that catches every email (shown at ``/dev/mail``) unless
``SMTP_HOST`` is set. With no ``STRIPE_SECRET_KEY`` set it starts the local Stripe
server beside the app, wires both with freshly generated test keys and webhook secret,
and the app runs in simulated test mode. With real keys set it simply serves against Stripe.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any


def _port_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def simulated_stripe_env(app_port: int, sim_port: int) -> dict[str, str]:
    sim_url = f"http://127.0.0.1:{sim_port}"
    return {
        "STRIPE_SECRET_KEY": f"sk_test_local_{secrets.token_hex(12)}",
        "STRIPE_PUBLISHABLE_KEY": f"pk_test_local_{secrets.token_hex(12)}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_local{secrets.token_hex(16)}",
        "STRIPE_API_BASE": sim_url,
        "STRIPE_JS_URL": f"{sim_url}/v3/",
        "APP_ORIGIN": f"http://127.0.0.1:{app_port}",
    }


def start_mail_sink(env: dict[str, str]) -> Any:
    """A local SMTP server catching the app's mail (shown at /dev/mail), unless SMTP_HOST
    is set. Returns the running aiosmtpd controller, or None."""
    if env.get("SMTP_HOST"):
        return None
    from tokenbank.mail.devsink import start_sink

    mail_dir = Path(env.get("DEV_MAIL_DIR") or "data/dev-mail").resolve()
    port = 1025 if _port_free(1025) else _free_port()
    sink = start_sink(mail_dir, port)
    env.update(
        {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_TLS": "none",
            "SMTP_USER": "",
            "SMTP_PASSWORD": "",
            "DEV_MAIL_DIR": str(mail_dir),
        }
    )
    return sink


def run_dev(host: str, port: int, sim_port: int = 12111) -> int:
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    env.setdefault("APP_ORIGIN", f"http://127.0.0.1:{port}")
    sink = start_mail_sink(env)
    if sink is not None:
        print(
            f"development mail: caught by a local SMTP server on 127.0.0.1:{env['SMTP_PORT']}, "
            f"shown at http://127.0.0.1:{port}/dev/mail"
        )
    if not env.get("STRIPE_SECRET_KEY"):
        if not _port_free(sim_port):
            sim_port = _free_port()
        env.update(simulated_stripe_env(port, sim_port))
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokenbank.cli",
                "stripe-sim",
                "--port",
                str(sim_port),
                "--webhook-url",
                f"http://127.0.0.1:{port}/api/payment/webhook",
                "--webhook-secret",
                env["STRIPE_WEBHOOK_SECRET"],
                "--api-key",
                env["STRIPE_SECRET_KEY"],
                "--publishable-key",
                env["STRIPE_PUBLISHABLE_KEY"],
                "--allow-origin",
                env["APP_ORIGIN"],
                "--allow-origin",
                f"http://localhost:{port}",
            ],
            env=env,
        )
        children.append(sim)
        if not _wait_listening(sim_port, 30):
            print("the local Stripe server did not start", file=sys.stderr)
            sim.terminate()
            return 1
        print(f"simulated Stripe test mode: local Stripe server on http://127.0.0.1:{sim_port}")
    app = subprocess.Popen(
        [sys.executable, "-m", "tokenbank.cli", "serve", "--host", host, "--port", str(port)],
        env=env,
    )
    children.append(app)

    def _stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    try:
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if sink is not None:
            sink.stop()
