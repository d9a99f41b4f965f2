"""The SDK's transport (payments/stripe_http.py) against small servers that misbehave as
networks do: what the SDK gets back must be what an HTTP client would have given it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import stripe

from tokenbank.payments.errors import StripeUnavailable
from tokenbank.payments.stripe_client import STRIPE_API_VERSION, _call
from tokenbank.payments.stripe_http import LeanHTTPClient

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return head[0], headers, body


def answer(body: bytes, *, extra: str = "", chunked: bool = False) -> bytes:
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        framing = "Transfer-Encoding: chunked"
    else:
        payload, framing = body, f"Content-Length: {len(body)}"
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n{extra}\r\n"
    return head.encode() + payload


async def test_the_sdk_request_arrives_whole_and_its_answer_comes_back() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            body = b'{"id": "pi_1", "object": "payment_intent", "amount": 500}'
            writer.write(answer(body, extra="Request-Id: req_123\r\n", chunked=len(seen) == 2))
            await writer.drain()
        writer.close()

    async with serving(handler) as base:
        http = LeanHTTPClient(timeout=5)
        client = stripe.StripeClient(
            "sk_test_transport",
            base_addresses={"api": base},
            http_client=http,
            stripe_version=STRIPE_API_VERSION,
        )
        first = await client.raw_request_async("get", "/v1/payment_intents/pi_1", expand=["x"])
        second = await client.raw_request_async(
            "post", "/v1/payment_intents/pi_1", metadata={"a": "b"}
        )
        await http.close_async()
    assert first.data["amount"] == 500 and second.data["id"] == "pi_1"  # chunked too
    assert first.headers["request-id"] == first.headers["Request-Id"] == "req_123"
    (line1, h1, _), (line2, h2, body2) = seen
    assert line1.startswith("GET /v1/payment_intents/pi_1?expand") and line1.endswith("HTTP/1.1")
    assert h1["stripe-version"] == STRIPE_API_VERSION
    assert h1["authorization"] == "Bearer sk_test_transport"
    assert line2.startswith("POST /v1/payment_intents/pi_1 ")
    assert body2 == b"metadata[a]=b" and "idempotency-key" in h2
    assert h2["content-type"] == "application/x-www-form-urlencoded"


async def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b'{"ok": true}'))  # says nothing of closing, then closes
        await writer.drain()
        writer.close()

    async with serving(handler) as base:
        http = LeanHTTPClient(timeout=5)
        for _ in range(3):
            body, status, _ = await http.request_async("GET", f"{base}/v1/x", {})
            assert (status, body) == (200, b'{"ok": true}')
        await http.close_async()
    assert connections == 3


@pytest.mark.parametrize("misbehaviour", ["hang up", "silence"])
async def test_a_network_failure_is_the_sdks_connection_error(misbehaviour: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if misbehaviour == "silence":
            await reader.read()  # answers nothing until the client gives up and hangs up
        writer.close()

    async with serving(handler) as base:
        http = LeanHTTPClient(timeout=0.5)
        client = stripe.StripeClient(
            "sk_test_transport", base_addresses={"api": base}, http_client=http,
            max_network_retries=1,
        )
        # The SDK retries it, then our gateway's rule: Stripe is unavailable (a 503).
        with pytest.raises(StripeUnavailable):
            await asyncio.wait_for(
                _call(client.raw_request_async("get", "/v1/payment_intents/pi_1")), 10
            )
        await http.close_async()


async def test_nothing_listening_is_a_connection_error() -> None:
    async with serving(read_request) as base:  # type: ignore[arg-type]
        pass  # closed: nothing listens there now
    http = LeanHTTPClient(timeout=5)
    with pytest.raises(stripe.APIConnectionError):
        await http.request_async("GET", f"{base}/v1/x", {})


def test_a_connection_kept_by_an_event_loop_that_ended_is_not_reused() -> None:
    """The gateway outlives event loops (a CLI command, a test): the next loop's request
    opens its own connection rather than failing on the last loop's."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http = LeanHTTPClient(timeout=5)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/x"
    try:
        for _ in range(2):
            body, status, _ = asyncio.run(http.request_async("GET", url, {}))
            assert (status, body) == (200, b"{}")
    finally:
        http.close()
        server.shutdown()
        server.server_close()
        # A connection kept by a loop that has ended cannot be closed without that loop:
        # its socket goes with the garbage collector, whose ResourceWarning is all it says.
        import gc
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del http
            gc.collect()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for ``localhost`` (its own CA), made by openssl."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


@asynccontextmanager
async def serving_tls(handler: Handler, cert: str, key: str) -> AsyncIterator[str]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://localhost:{port}"
    finally:
        server.close()


async def test_https_is_verified_against_the_sdks_ca_bundle_and_kept_alive(
    tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe is reached over TLS: the certificate is checked against the SDK's CA bundle
    (here the test's own CA stands in for it), and the connection serves the next call."""
    cert, key = tls_files
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(answer(b'{"ok": true}'))
            await writer.drain()
        writer.close()

    monkeypatch.setattr(stripe, "ca_bundle_path", cert)
    async with serving_tls(handler, cert, key) as base:
        http = LeanHTTPClient(timeout=5)
        for _ in range(2):
            body, status, _ = await http.request_async("GET", f"{base}/v1/x", {})
            assert (status, body) == (200, b'{"ok": true}')
        await http.close_async()
    assert connections == 1


async def test_a_certificate_stripes_ca_bundle_does_not_vouch_for_is_refused(
    tls_files: tuple[str, str],
) -> None:
    """A server whose certificate the SDK's CA bundle does not vouch for (a man in the
    middle, say) gets no request: the SDK's retryable connection error instead."""
    cert, key = tls_files
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            await read_request(reader)
            requests += 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        writer.close()

    async with serving_tls(handler, cert, key) as base:
        http = LeanHTTPClient(timeout=5)
        with pytest.raises(stripe.APIConnectionError):
            await http.request_async("GET", f"{base}/v1/x", {})
        await http.close_async()
    assert requests == 0
