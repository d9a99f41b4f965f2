"""`tokenbank serve` keeps an idle connection open longer than its clients keep theirs.

When a server closes an idle keep-alive connection at the moment a client reuses it, the
request dies before any answer (httpx: ``ReadError``), and a POST cannot safely be sent
again. httpx and our SDKs drop idle connections after 5 s and load balancers after 60 s, so
the server must keep them open longer (uvicorn's own default, 5 s, races httpx's exactly).
"""

from __future__ import annotations

import http.client
import select
import time
from contextlib import closing
from pathlib import Path

import pytest

from reliability.harness import AppProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: How long httpx (and so the SDKs) keeps an idle connection in its pool.
CLIENT_IDLE_S = 5.0


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "BACKGROUND_JOBS": "false",
            **extra}


def _health(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/health")
    response = conn.getresponse()
    response.read()
    return response.status


def _closed_by_server_within(conn: http.client.HTTPConnection, seconds: float) -> bool:
    """Whether the server closes the idle connection before ``seconds`` pass (EOF)."""
    assert conn.sock is not None
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([conn.sock], [], [], left)
        if readable:
            return conn.sock.recv(1) == b""
    return False


def test_an_idle_connection_outlives_the_clients_own_idle_limit(tmp_path: Path) -> None:
    app = AppProcess(_env(tmp_path)).start(migrate=True)
    try:
        with closing(http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)) as conn:
            assert _health(conn) == 200
            first = conn.sock
            assert not _closed_by_server_within(conn, CLIENT_IDLE_S + 1.5)
            assert _health(conn) == 200
            assert conn.sock is first, "the request went over the same connection"
    finally:
        app.stop()


def test_the_idle_limit_is_set_by_http_keep_alive_s(tmp_path: Path) -> None:
    app = AppProcess(_env(tmp_path, HTTP_KEEP_ALIVE_S="1")).start(migrate=True)
    try:
        with closing(http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)) as conn:
            assert _health(conn) == 200
            assert _closed_by_server_within(conn, 10)
    finally:
        app.stop()
