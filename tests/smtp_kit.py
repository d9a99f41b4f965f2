"""A real SMTP server for tests (aiosmtpd on a free 127.0.0.1 port) and what it received."""

from __future__ import annotations

import email
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tokenbank.mail.devsink import subject_of, text_of


@dataclass(frozen=True)
class Received:
    to: list[str]
    subject: str
    text: str
    message: Message

    def link(self, path: str) -> str:
        """The first link in the body whose path is ``path`` (e.g. "/verify-email")."""
        match = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[\w-]+", self.text)
        assert match, f"no {path} link in:\n{self.text}"
        return match.group(0)

    def token(self, path: str) -> str:
        return self.link(path).split("token=", 1)[1]


class _Collector:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content)
        with self.lock:
            self.received.append(
                Received(list(envelope.rcpt_tos), subject_of(message), text_of(message), message)
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, controller: Controller, collector: _Collector, port: int) -> None:
        self._controller = controller
        self._collector = collector
        self.host = "127.0.0.1"
        self.port = port

    @property
    def settings(self) -> dict[str, Any]:
        """The app settings that send through this server."""
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_tls": "none"}

    def messages(self, to: str | None = None) -> list[Received]:
        with self._collector.lock:
            return [m for m in self._collector.received if to is None or to in m.to]

    def wait_for(self, to: str, count: int = 1, timeout_s: float = 10.0) -> list[Received]:
        """The first ``count`` messages to ``to``, polled with a deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.messages(to)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} within {timeout_s}s (got {len(found)})")
            time.sleep(0.02)


async def mail_to(server: SmtpServer, to: str, count: int = 1, timeout_s: float = 10.0) -> list[Received]:
    """Like ``SmtpServer.wait_for``, without blocking the event loop."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        found = server.messages(to)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} within {timeout_s}s (got {len(found)})")
        await asyncio.sleep(0.02)


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    collector = _Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(controller, collector, port)
    finally:
        controller.stop()
