"""A lean HTTP/1.1 transport for the official Stripe SDK (its ``http_client`` option).

The SDK builds every request itself — URL, API version, headers, idempotency key, form
body — retries it, and turns the answer into its objects and errors; a transport only
moves bytes (``stripe.HTTPClient.request_async``). Its httpx transport moved them through
httpx, httpcore, anyio and h11: about a third of the Python calls the webhook worker made
per applied event, for one small GET. This one writes the request the SDK built onto a
kept-alive asyncio stream and reads the answer with ``httptools`` (the C parser uvicorn
uses), and nothing else.

What the SDK sees is the same: the body, the status, the headers (looked up without
regard to case, as ``httpx.Headers`` are), and an ``APIConnectionError`` (which it
retries, ``max_network_retries``) for anything that went wrong on the way — a refused
connection, a reset, a timeout (``timeout`` seconds for the whole exchange), a malformed
answer. TLS verifies against the SDK's CA bundle, as its own transports do. A pooled
connection the server has closed is noticed before it is reused; one that fails before
any byte of its answer arrived is replaced and the request sent again once (the server
cannot have acted on a request it never answered on a connection it had closed — the
same rule HTTP clients apply to idle keep-alive connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import textwrap
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httptools
import stripe

#: Idle connections kept per origin (the worker applies a claim's events at once).
MAX_IDLE_PER_ORIGIN = 16


class Headers(dict[str, str]):
    """Response headers, by lower-cased name; looked up without regard to case."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Answer:
    """httptools' callbacks for one response."""

    __slots__ = ("headers", "body", "done", "keep_alive", "parser", "_name")

    def __init__(self) -> None:
        self.headers = Headers()
        self.body: list[bytes] = []
        self.done = False
        #: Whether the connection may serve the next request: httptools answers this only
        #: inside ``on_message_complete`` (once ``feed_data`` returns it has reset and
        #: says False), so it is read there.
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None
        self._name = ""

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()


class _StaleConnection(Exception):
    """A pooled connection failed before any byte of the answer came back."""


Origin = tuple[str, str, int]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LeanHTTPClient(stripe.HTTPClient):
    """``stripe.HTTPClient`` over asyncio streams and httptools (see the module doc)."""

    name = "tokenbank-asyncio"

    def __init__(self, timeout: float = 80, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self._proxy:
            raise ValueError("this Stripe transport does not go through a proxy")
        self._timeout = timeout
        self._idle: dict[Origin, list[Stream]] = {}
        self._ssl: ssl.SSLContext | None = None

    # --- the SDK's interface ----------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> NoReturn:
        raise RuntimeError("Stripe: this client makes asynchronous requests only.")

    request_stream = request

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> NoReturn:
        raise NotImplementedError("Stripe: streamed answers are not used by tokenbank.")

    def close(self) -> None:
        for streams in self._idle.values():
            for _, writer in streams:
                _close_quietly(writer)
        self._idle.clear()

    async def close_async(self) -> None:
        """Close the kept-alive connections and wait until they are closed (those of this
        event loop: another loop's went with it), so none outlives its loop."""
        loop = asyncio.get_running_loop()
        writers = [w for streams in self._idle.values() for _, w in streams]
        self.close()
        for writer in writers:
            if _loop_of(writer) is loop:
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    def sleep_async(self, secs: float) -> Any:
        return asyncio.sleep(secs)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            return await asyncio.wait_for(
                self._exchange(method, url, headers, post_data), self._timeout
            )
        except (OSError, TimeoutError, EOFError, ValueError, httptools.HttpParserError,
                asyncio.IncompleteReadError, _StaleConnection) as exc:
            _connection_error(exc)

    # --- one exchange -----------------------------------------------------------------

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[bytes, int, Headers]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = post_data.encode() if isinstance(post_data, str) else (post_data or b"")
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
        lines = [f"{method.upper()} {target} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        stream = self._take_idle(origin)
        if stream is not None:
            try:
                return await self._send(origin, stream, head, body, reused=True)
            except _StaleConnection:
                pass  # the server closed it while idle: once more, on a new connection
        return await self._send(origin, await self._connect(origin), head, body, reused=False)

    async def _send(
        self, origin: Origin, stream: Stream, head: bytes, body: bytes, *, reused: bool
    ) -> tuple[bytes, int, Headers]:
        reader, writer = stream
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        got_any = False
        try:
            writer.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                writer.write(body)
            await writer.drain()
            while not answer.done:
                chunk = await reader.read(65536)
                if not chunk:
                    if not got_any and reused:
                        raise _StaleConnection()
                    # A body delimited by the connection's end ends here.
                    parser.feed_data(b"")
                    if not answer.done:
                        raise EOFError("the connection closed before the answer ended")
                    break
                got_any = True
                parser.feed_data(chunk)
        except (ConnectionError, OSError) as exc:
            writer.close()
            if reused and not got_any:
                raise _StaleConnection() from exc
            raise
        except BaseException:
            writer.close()  # cancelled or failed half way: never reuse it
            raise
        status = parser.get_status_code()
        if answer.keep_alive and not reader.at_eof():
            self._put_idle(origin, stream)
        else:
            writer.close()
        return b"".join(answer.body), status, answer.headers

    # --- connections --------------------------------------------------------------------

    async def _connect(self, origin: Origin) -> Stream:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl_context()
        return await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None
        )

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if self._verify_ssl_certs:
                self._ssl = ssl.create_default_context(cafile=stripe.ca_bundle_path)
            else:
                self._ssl = ssl.create_default_context()
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        return self._ssl

    def _take_idle(self, origin: Origin) -> Stream | None:
        streams = self._idle.get(origin)
        loop = asyncio.get_running_loop()
        while streams:
            reader, writer = streams.pop()
            if _loop_of(writer) is not loop:
                _close_quietly(writer)  # a connection of another (maybe closed) event loop
                continue
            if reader.at_eof() or writer.is_closing() or reader.exception() is not None:
                writer.close()
                continue
            return reader, writer
        return None

    def _put_idle(self, origin: Origin, stream: Stream) -> None:
        streams = self._idle.setdefault(origin, [])
        if len(streams) < MAX_IDLE_PER_ORIGIN:
            streams.append(stream)
        else:
            stream[1].close()


def _loop_of(writer: asyncio.StreamWriter) -> asyncio.AbstractEventLoop | None:
    return getattr(writer, "_loop", None)


def _close_quietly(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except RuntimeError:  # its event loop is closed: the socket went with it
        pass


def _connection_error(exc: BaseException) -> NoReturn:
    """As the SDK's own transports report a failure on the way: a retryable
    ``APIConnectionError`` naming the kind of error."""
    msg = (
        "Unexpected error communicating with Stripe. If this "
        "problem persists, let us know at support@stripe.com."
    )
    err = f"A {type(exc).__name__} was raised"
    msg = textwrap.fill(msg) + f"\n\n(Network error: {err})"
    raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
        msg, should_retry=True
    ) from exc
