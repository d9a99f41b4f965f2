"""Kit for the SDK tests: a TCP proxy between an SDK and a tokenbank server that misbehaves on request.

The network the SDK meets in production cuts connections at the worst moment: after the
server committed a write and before its answer arrived. This proxy does exactly that
(``cut_next_response``), or answers in the server's place (``answer_next``: a 503 or a 429
from a load balancer), and otherwise forwards bytes unchanged.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reliability.harness import REPO, free_port
from tokenbank_client import AsyncTokenbank

if TYPE_CHECKING:
    from e2e.conftest import Stack

#: The host app beside tokenbank (examples/fastapi-chat in the browser test): purchases
#: may return to it, its page may call the widget routes with tokens it signs.
HOST_PORT = free_port()
HOST_ORIGIN = f"http://127.0.0.1:{HOST_PORT}"
WIDGET_SECRET = "sdk-test-widget-secret-0123456789abcdef"
HOST_ENV = {"WIDGET_ALLOWED_ORIGINS": HOST_ORIGIN, "WIDGET_TOKEN_SECRET": WIDGET_SECRET}

REQUEST_START = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1\r\n")


class FaultyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._cuts = 0
        self._answers: list[bytes] = []
        self.requests: list[str] = []  # "METHOD path" of each request seen, in order
        self.cut_count = 0
        self._stopped = False
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_next_response(self, times: int = 1) -> None:
        """The next ``times`` responses reach the proxy and are dropped with the connection."""
        with self._lock:
            self._cuts += times

    def answer_next(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        """The next request is answered by the proxy itself, never reaching the server."""
        body = b'{"error": {"code": "upstream", "message": "from the proxy"}}'
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        with self._lock:
            self._answers.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def start(self) -> FaultyProxy:
        threading.Thread(target=self._accept, daemon=True, name=f"proxy:{self.port}").start()
        return self

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        for s in list(self._sockets):
            _close(s)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client), daemon=True).start()

    def _to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        while chunk := _recv(client):
            match = REQUEST_START.match(chunk)
            if match:
                with self._lock:
                    self.requests.append(f"{match[1].decode()} {match[2].decode()}")
                    answer = self._answers.pop(0) if self._answers else None
                if answer is not None:
                    client.sendall(answer)
                    break
            try:
                upstream.sendall(chunk)
            except OSError:
                break
        _close(client)
        _close(upstream)

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        while chunk := _recv(upstream):
            with self._lock:
                cut = self._cuts > 0
                if cut:
                    self._cuts -= 1
                    self.cut_count += 1
            if cut:
                break
            try:
                client.sendall(chunk)
            except OSError:
                break
        _close(client)
        _close(upstream)


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@contextmanager
def faulty_proxy(upstream_port: int) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


KEY = re.compile(r"tbk_[A-Za-z0-9_\-]+")
ALL_SCOPES = "read,charge,grant,checkout"


def create_api_key(db_url: str, scopes: str, name: str | None = None) -> str:
    """An API key made by ``tokenbank api-keys create --quiet`` (it prints the secret only,
    once)."""
    out = subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "api-keys", "create",
         "--name", name or f"sdk-{uuid.uuid4().hex[:6]}", "--scope", scopes, "--quiet"],
        env=os.environ | {"DATABASE_URL": db_url, "APP_ENV": "development"},
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    found = KEY.fullmatch(out.stdout.strip())
    assert found, f"not a key alone: {out.stdout!r}"
    return found.group(0)


@dataclass
class TokenbankServer:
    """A running tokenbank with a key of every scope, and helpers to make more."""

    stack: Stack
    key: str

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def port(self) -> int:
        return self.stack.app.port

    def key_with(self, scopes: str) -> str:
        return create_api_key(self.stack.db_url, scopes)


def sdk(url: str, key: str, **options: Any) -> AsyncTokenbank:
    """An async client with short back-offs (a test waits milliseconds, not seconds)."""
    return AsyncTokenbank(key, base_url=url, backoff_base_s=0.01, **options)


async def funded(server: TokenbankServer, customer: str, amount: int) -> None:
    """Make ``customer`` and grant it ``amount`` tokens."""
    async with sdk(server.url, server.key) as billing:
        await billing.upsert_customer(customer, email=f"{customer}@example.com")
        await billing.grant(customer, amount, reason="test funds")
