"""The SDK's HTTP clients: httpx, with a connection pool whose cost per request does not
grow with the number of connections open.

httpcore 1.0's pool (under every ``httpx`` client) re-examines every pooled connection
twice per request: it asks each one whether it has expired (for an idle one, a ``poll()``
of its socket through anyio's attribute machinery), counts the idle connections again for
each idle connection (quadratic), rebuilds the list of candidates for each queued request,
and may hand one idle connection to several queued requests, all but one of which wake,
fail and go round again. With 32 requests in flight that bookkeeping was most of the
client's CPU (three times its cost per request at 1 in flight).

:class:`_AsyncPool` / :class:`_SyncPool` keep httpcore's pool (its queue, waiting,
timeouts, cancellation and response handling) and replace only its assignment pass with
one that walks the connections once, gives each idle connection to one request, and
probes a connection's socket only when it is about to be reused (plus a full sweep of
the idle ones at most every :data:`SWEEP_EVERY_S`, so connections past their keep-alive
are still closed). The async client also writes each request in one ``send()``
(:class:`_AsyncStream`): httpcore writes a request's head, body and end separately, and
on loopback each write is a segment the server wakes up and reads for.

Neither client keeps cookies (:class:`_NoCookies`): the service API authenticates each
request by its key and sets none, and httpx otherwise copies every response's headers
into a ``urllib`` request and response pair to look for them (≈ 20–30 µs per response,
two per hold). A client you set ``cookies`` on, or pass yourself, keeps them as usual.

The pass is a private method of httpcore: it is replaced only on the
httpcore versions it was written against, and when the environment sets a proxy (which
httpx honours only for its own default transport) the stock client is used as before.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import httpcore
import httpx

#: How often (at most) every idle connection is checked for expiry and server close.
SWEEP_EVERY_S = 1.0
#: A service client talks to one server: keep as many connections as it may open.
DEFAULT_MAX_CONNECTIONS = 100


def assign_requests(pool: Any) -> list[Any]:
    """One linear pass of ``pool`` (httpcore 1.0's, under its lock): drop closed
    connections, close expired and surplus idle ones, and give each queued request a
    connection of its own. Returns the connections to close (closed by the caller,
    outside the lock, as httpcore does)."""
    closing: list[Any] = []
    now = time.monotonic()
    sweep = now >= getattr(pool, "_tb_next_sweep", 0.0)
    if sweep:
        pool._tb_next_sweep = now + SWEEP_EVERY_S
    # A connection given to a request which has not started on it yet is still idle:
    # it is spoken for, not free (httpcore's own pass could close or re-give it).
    taken = {id(r.connection) for r in pool._requests if r.connection is not None}
    live: list[Any] = []
    free: list[Any] = []
    for connection in pool._connections:
        if connection.is_closed():
            continue
        spoken_for = id(connection) in taken
        if sweep and not spoken_for and connection.has_expired():
            closing.append(connection)
            continue
        live.append(connection)
        if not spoken_for and connection.is_idle():
            free.append(connection)
    surplus = len(free) - pool._max_keepalive_connections
    if surplus > 0:
        for connection in free[:surplus]:  # the oldest first
            live.remove(connection)
            closing.append(connection)
        free = free[surplus:]
    for request in pool._requests:
        if not request.is_queued():
            continue
        origin = request.request.url.origin
        chosen = None
        for i in range(len(free) - 1, -1, -1):  # the newest idle connection first
            connection = free[i]
            if not (connection.can_handle_request(origin) and connection.is_available()):
                continue
            del free[i]
            if not sweep and connection.has_expired():  # closed by the server meanwhile
                live.remove(connection)
                closing.append(connection)
                continue
            chosen = connection
            break
        if chosen is None:
            if len(live) >= pool._max_connections:
                if not free:
                    break  # nothing can be given until a connection comes back
                other = free.pop(0)  # idle, for another origin: make room
                live.remove(other)
                closing.append(other)
            chosen = pool.create_connection(origin)
            live.append(chosen)
        request.assign_to_connection(chosen)
    pool._connections = live
    return closing


class _AsyncStream(httpcore.AsyncNetworkStream):
    """A connection's socket whose writes wait for the next read: a request's head,
    body and end go out in one ``send()`` (one segment for the server to wake up to),
    not three. HTTP/1.1 reads only after the whole request is written."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    async def _flush(self, timeout: float | None) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            await self._stream.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush(timeout)
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)

    async def aclose(self) -> None:
        self._pending.clear()
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        await self._flush(timeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(
        self, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._backend.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _AsyncPool(httpcore.AsyncConnectionPool):
    def _assign_requests_to_connections(self) -> list[Any]:
        return assign_requests(self)


class _SyncPool(httpcore.ConnectionPool):
    def _assign_requests_to_connections(self) -> list[Any]:
        return assign_requests(self)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps none: a response's ``Set-Cookie`` is not read."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _without_cookies(client: httpx.Client | httpx.AsyncClient) -> None:
    # httpx 0.28 reads the jar from ``_cookies`` (public ``cookies``, whose setter puts an
    # ordinary jar back); any other version keeps its own.
    if isinstance(getattr(client, "_cookies", None), httpx.Cookies):
        client._cookies = _NoCookies()


def _pool_replaceable() -> bool:
    version = getattr(httpcore, "__version__", "")
    proxies = {k for k in urllib.request.getproxies() if k != "no"}  # NO_PROXY sets none
    return version.startswith("1.0.") and not proxies


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )


def async_http_client(
    *, timeout_s: float = 10.0, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` an :class:`AsyncTokenbank` makes for itself (pass your
    own ``http_client`` for proxies, TLS settings or event hooks; build it here to keep
    the linear pool)."""
    if not _pool_replaceable():
        stock = httpx.AsyncClient(timeout=timeout_s, limits=_limits(max_connections))
        _without_cookies(stock)
        return stock
    transport = httpx.AsyncHTTPTransport(limits=_limits(max_connections))
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool:
        pool.__class__ = _AsyncPool
        pool._network_backend = _AsyncBackend(pool._network_backend)
    client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
    _without_cookies(client)
    return client


def http_client(
    *, timeout_s: float = 10.0, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.Client:
    """The ``httpx.Client`` a :class:`Tokenbank` makes for itself (see
    :func:`async_http_client`)."""
    if not _pool_replaceable():
        stock = httpx.Client(timeout=timeout_s, limits=_limits(max_connections))
        _without_cookies(stock)
        return stock
    transport = httpx.HTTPTransport(limits=_limits(max_connections))
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.ConnectionPool:
        pool.__class__ = _SyncPool
    client = httpx.Client(timeout=timeout_s, transport=transport)
    _without_cookies(client)
    return client
