"""Clients that leave: raw HTTP/1.1 over a socket, closed at a moment the test chooses.

No HTTP library sits between the test and the app here, so nothing retries, buffers or
closes the connection on its own: the test reads exactly as far as it wants (the head,
``k`` server-sent events, the ``done`` event) and then closes the socket — politely
(FIN) or abruptly (RST, ``SO_LINGER`` 0), as browsers and broken networks do.

Also what the disconnect scenarios read back from the database: the truth about each
reply, found by its Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, text

from chat.harness import parse_event
from tokenbank.chat.models import Message
from tokenbank.db import Database
from tokenbank.ledger import keys as key_formats
from tokenbank.ledger.models import TokenReservation, TokenTransaction, TransactionType


class Exchange:
    """One request on its own connection, read step by step, left at will."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self._text = ""
        self._ended = False
        self.left = False

    @classmethod
    async def post(
        cls, base_url: str, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> Exchange:
        """Connect and send ``POST path`` with a JSON body (nothing read yet)."""
        where = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        payload = json.dumps(body).encode()
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {where.netloc}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        return cls(reader, writer)

    async def head(self) -> int:
        """The status line and headers."""
        if self.status is None:
            raw = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *header_lines = raw.strip().split("\r\n")
            self.status = int(status_line.split()[1])
            for line in header_lines:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        return self.status

    async def _chunk(self) -> bool:
        """Read one chunk of a chunked body into the text; False at the body's end."""
        if self._ended:
            return False
        size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
        data = await self._reader.readexactly(size + 2)
        if size == 0:
            self._ended = True
            return False
        self._text += data[:-2].decode()
        return True

    async def event(self) -> tuple[str, Any] | None:
        """The next server-sent event (a comment comes as ``("comment", text)``); None at
        the end of the stream."""
        await self.head()
        assert self.headers.get("transfer-encoding") == "chunked", self.headers
        while "\n\n" not in self._text:
            if not await self._chunk():
                return None
        block, self._text = self._text.split("\n\n", 1)
        if block.startswith(":"):
            return "comment", block[1:].strip()
        return parse_event(block)

    async def json(self) -> Any:
        """The whole body, as JSON."""
        await self.head()
        if "content-length" in self.headers:
            body = await self._reader.readexactly(int(self.headers["content-length"]))
            return json.loads(body)
        while await self._chunk():
            pass
        return json.loads(self._text)

    def leave(self, *, abort: bool) -> None:
        """Close the connection: with a RST if ``abort``, else with a FIN."""
        if self.left:
            return
        self.left = True
        if abort:
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.close()


# --- what the database says happened to each reply --------------------------------------


@dataclass(frozen=True)
class Reply:
    """One request's outcome, found by its key."""

    hold: str | None  # the attempt-1 hold's status (None: no hold was taken)
    deductions: int
    messages: tuple[tuple[str, str, bool, int], ...]  # role, content, interrupted, tokens

    @property
    def charged(self) -> bool:
        return self.hold == "committed"

    @property
    def answer(self) -> tuple[str, bool] | None:
        found = [(c, i) for role, c, i, _ in self.messages if role == "assistant"]
        return found[0] if found else None


@dataclass
class Truth:
    replies: dict[str, Reply] = field(default_factory=dict)

    def pending(self) -> list[str]:
        return [k for k, r in self.replies.items() if r.hold == "pending"]


async def read_truth(database_url: str, keys: Mapping[str, int]) -> Truth:
    """Each key's hold (attempt 1), its deductions and its messages; ``keys`` maps each
    Idempotency-Key to its chat."""
    db = Database(database_url, pool_size=2)
    truth = Truth()
    try:
        async with db.transaction() as s:
            holds = dict(
                (
                    await s.execute(
                        select(TokenReservation.idempotency_key, TokenReservation.status).where(
                            TokenReservation.idempotency_key.in_(
                                [key_formats.generation(chat, 1, key) for key, chat in keys.items()]
                            )
                        )
                    )
                ).all()
            )
            ids = dict(
                (
                    await s.execute(
                        select(TokenReservation.idempotency_key, TokenReservation.id).where(
                            TokenReservation.idempotency_key.in_(list(holds))
                        )
                    )
                ).all()
            )
            charges = dict(
                (
                    await s.execute(
                        select(TokenTransaction.reservation_id, func.count())
                        .where(
                            TokenTransaction.transaction_type == TransactionType.DEDUCTION,
                            TokenTransaction.reservation_id.in_(list(ids.values())),
                        )
                        .group_by(TokenTransaction.reservation_id)
                    )
                ).all()
            )
            rows = (
                await s.execute(
                    select(
                        Message.idempotency_key,
                        Message.role,
                        Message.content,
                        Message.interrupted,
                        Message.tokens_charged,
                    )
                    .where(Message.idempotency_key.in_(list(keys)))
                    .order_by(Message.id)
                )
            ).all()
    finally:
        await db.dispose()
    stored: dict[str, list[tuple[str, str, bool, int]]] = {}
    for key, role, content, interrupted, tokens in rows:
        stored.setdefault(key, []).append((role, content, bool(interrupted), int(tokens)))
    for key, chat in keys.items():
        hold_key = key_formats.generation(chat, 1, key)
        truth.replies[key] = Reply(
            hold=holds.get(hold_key),
            deductions=int(charges.get(ids.get(hold_key, -1), 0)),
            messages=tuple(stored.get(key, [])),
        )
    return truth


async def settled_truth(database_url: str, keys: Mapping[str, int], timeout_s: float) -> Truth:
    """:func:`read_truth` once no hold among ``keys`` is pending (polled, with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        truth = await read_truth(database_url, keys)
        if not truth.pending():
            return truth
        if loop.time() > deadline:
            raise AssertionError(
                f"{len(truth.pending())} holds still pending after {timeout_s}s: "
                f"{truth.pending()[:5]}"
            )
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class IdleBackend:
    pid: int
    idle_s: float
    query: str


async def idle_in_transaction(database_url: str) -> list[IdleBackend]:
    """Backends of this database idle inside a transaction now, with how long they have
    been (PostgreSQL's ``pg_stat_activity``)."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.transaction() as s:
            rows = (
                await s.execute(
                    text(
                        "SELECT pid, extract(epoch FROM clock_timestamp() - state_change), "
                        "left(query, 80) FROM pg_stat_activity "
                        "WHERE datname = current_database() "
                        "AND state LIKE 'idle in transaction%'"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    return [IdleBackend(int(pid), float(age), str(query)) for pid, age, query in rows]
