"""After an unexpected error (a 500) the server closes the connection; the response says
so (``Connection: close``), so a keep-alive client opens a new one instead of losing its
next request on a dead socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reliability.harness import REPO, free_port, wait_until

HERE = Path(__file__).resolve().parent


@pytest.fixture
def failing_app(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = os.environ | {
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path}/app.db",
        "DATA_DIR": str(tmp_path),
        "BACKGROUND_JOBS": "false",
        "JSON_LOGS": "true",
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("STRIPE_SECRET_KEY", None)
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "failing_app:create", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )

    def answering() -> bool:
        assert proc.poll() is None, (tmp_path / "app.log").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/payment/pricing-tiers").is_success
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, 60, "the app to answer")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _exchange(sock: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    """One keep-alive request; the response's status, headers and body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response to {path}: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_a_500_says_connection_close_and_then_closes(failing_app: int) -> None:
    with socket.create_connection(("127.0.0.1", failing_app), timeout=10) as sock:
        status, headers, _ = _exchange(sock, "/api/payment/pricing-tiers")
        assert status == 200 and headers.get("connection", "").lower() != "close"

        status, headers, body = _exchange(sock, "/api/test-only/fail")
        assert status == 500 and b'"internal_error"' in body
        assert headers.get("connection", "").lower() == "close"
        # The server keeps its word: the socket is closed, not left half-alive.
        assert sock.recv(1) == b""


def test_a_keep_alive_client_carries_on_after_a_500(failing_app: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{failing_app}", timeout=10) as client:
        assert client.get("/api/test-only/fail").status_code == 500
        for _ in range(3):
            assert client.get("/api/payment/pricing-tiers").status_code == 200
