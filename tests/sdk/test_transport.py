"""The SDK's own HTTP clients (``async_http_client``, ``http_client``): many requests in
flight share a bounded set of kept-alive connections, a connection the server closed
while idle is never used again, and a request costs the pool the same however many
connections are open (a few socket probes, not one per pooled connection).

The server here is a minimal HTTP/1.1 keep-alive server in a thread of its own, which
counts the connections it accepts and how many are open at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpcore
import pytest

from tokenbank_client import _transport as transport
from tokenbank_client import async_http_client, http_client

pytestmark = pytest.mark.anyio

BODY = b'{"ok":true}'


@dataclass
class KeepAliveServer:
    #: Close the connection after this many responses on it (0: never).
    close_after: int = 0
    #: Seconds each response waits before it is sent (so that requests overlap).
    delay_s: float = 0.0
    accepted: int = 0
    open_now: int = 0
    most_open: int = 0
    served: int = 0
    port: int = 0
    #: Extra response header lines (``name: value``).
    extra_headers: bytes = b""
    #: Each request's ``cookie`` header as received (b"" when none was sent).
    cookies_seen: list[bytes] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.accepted += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            self._writers.add(writer)
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                cookie = b""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    if line.lower().startswith(b"cookie:"):
                        cookie = line.split(b":", 1)[1].strip()
                self.cookies_seen.append(cookie)
                if length:
                    await reader.readexactly(length)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)  # the server's work, so requests overlap
                answered += 1
                last = self.close_after and answered >= self.close_after
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + b"content-length: %d\r\n" % len(BODY)
                    + (b"connection: close\r\n" if last else b"")
                    + self.extra_headers
                    + b"\r\n"
                    + BODY
                )
                await writer.drain()
                with self._lock:
                    self.served += 1
                if last:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with self._lock:
                self.open_now -= 1
                self._writers.discard(writer)
            writer.close()

    def drop_all(self) -> None:
        """Close every open connection from the server's side, silently."""
        assert self._loop is not None
        with self._lock:
            writers = list(self._writers)
        for writer in writers:
            self._loop.call_soon_threadsafe(writer.close)


@contextmanager
def serving(server: KeepAliveServer) -> Iterator[KeepAliveServer]:
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listener.sockets[0].getsockname()[1]
        stop.append(asyncio.Event())
        server._loop = asyncio.get_running_loop()
        ready.set()
        async with listener:
            await stop[0].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start"
    try:
        yield server
    finally:
        assert server._loop is not None
        server._loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)


def count_probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pool's expiry checks (each a poll() of an idle connection's socket)."""
    calls = [0]
    for cls in (httpcore.AsyncHTTPConnection, httpcore.HTTPConnection):
        real = cls.has_expired

        def counted(self: Any, real: Any = real) -> bool:
            calls[0] += 1
            return bool(real(self))

        monkeypatch.setattr(cls, "has_expired", counted)
    return calls


async def test_many_requests_in_flight_share_a_bounded_set_of_connections() -> None:
    with serving(KeepAliveServer(delay_s=0.01)) as server:
        async with async_http_client(max_connections=8) as client:

            async def one() -> None:
                response = await client.get(server.url)
                assert response.json() == {"ok": True}

            for _ in range(5):
                await asyncio.gather(*(one() for _ in range(32)))
    assert server.served == 160
    assert server.most_open <= 8
    assert server.accepted <= 8  # kept alive and reused, never one per request


async def test_a_connection_the_server_closed_is_not_used_again() -> None:
    with serving(KeepAliveServer(close_after=1)) as server:
        async with async_http_client() as client:
            for _ in range(5):
                # The server said "connection: close" after each answer; the next request
                # must go out on a new connection, without an error.
                assert (await client.get(server.url)).status_code == 200
    assert server.accepted == 5


async def test_an_idle_connection_dropped_by_the_server_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server drops its kept-alive connections without a word (as a keep-alive
    timeout does), between two periodic sweeps of the pool: the next requests still
    succeed, each on a fresh connection, and no request sees an error."""
    monkeypatch.setattr(transport, "SWEEP_EVERY_S", 3600.0)
    with serving(KeepAliveServer(delay_s=0.01)) as server:
        async with async_http_client() as client:
            await asyncio.gather(*(client.get(server.url) for _ in range(4)))
            assert server.accepted == 4
            server.drop_all()
            await wait_for(lambda: server.open_now == 0)
            for _ in range(3):
                assert (await client.get(server.url)).status_code == 200
    assert server.accepted == 5


async def test_the_pool_probes_a_few_connections_per_request_however_many_are_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "SWEEP_EVERY_S", 3600.0)  # no periodic sweep here
    with serving(KeepAliveServer(delay_s=0.02)) as server:
        async with async_http_client(max_connections=64) as client:
            # 48 connections opened together, then idle in the pool.
            await asyncio.gather(*(client.get(server.url) for _ in range(48)))
            assert server.accepted == 48
            probes = count_probes(monkeypatch)
            for _ in range(20):
                assert (await client.get(server.url)).status_code == 200
    # The stock pool probes every idle connection on every pass (about 2 x 48 per
    # request); this one probes the connection it hands out.
    assert probes[0] <= 2 * 20
    assert server.accepted == 48


async def test_the_clients_keep_no_cookies_unless_given_some() -> None:
    """A service client authenticates by key: a ``Set-Cookie`` (a load balancer's, say)
    is not sent back; cookies set on the client explicitly still are."""
    server = KeepAliveServer(extra_headers=b"set-cookie: lb=node-7; Path=/\r\n")
    with serving(server):
        async with async_http_client() as client:
            for _ in range(2):
                assert (await client.get(server.url)).status_code == 200
            client.cookies = {"mine": "1"}
            assert (await client.get(server.url)).status_code == 200
        with http_client() as sync_client:
            for _ in range(2):
                assert sync_client.get(server.url).status_code == 200
    assert server.cookies_seen == [b"", b"", b"mine=1", b"", b""]


def test_the_sync_client_shares_connections_between_threads_too() -> None:
    with serving(KeepAliveServer(delay_s=0.01)) as server:
        with http_client(max_connections=6) as client:

            def one(_: int) -> int:
                return client.get(server.url).status_code

            with ThreadPoolExecutor(16) as threads:
                codes = list(threads.map(one, range(96)))
    assert codes == [200] * 96
    assert server.most_open <= 6
    assert server.accepted <= 6


async def wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_request_goes_out_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Head, JSON body and end of a POST leave in one send (one segment for the server
    to wake up to, not three)."""
    from httpcore._backends.anyio import AnyIOStream

    writes: list[bytes] = []
    real = AnyIOStream.write

    async def counted(self: Any, buffer: bytes, timeout: float | None = None) -> None:
        writes.append(buffer)
        await real(self, buffer, timeout)

    monkeypatch.setattr(AnyIOStream, "write", counted)
    with serving(KeepAliveServer()) as server:
        async with async_http_client() as client:
            for n in range(3):
                response = await client.post(server.url, json={"amount": n, "key": "k" * 40})
                assert response.json() == {"ok": True}
    assert len(writes) == 3
    assert all(w.startswith(b"POST /ping HTTP/1.1\r\n") and w.endswith(b'"}') for w in writes)
