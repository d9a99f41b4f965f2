"""A real HTTP receiver on 127.0.0.1 (``http.server`` in a thread) that answers as it is
told: a status per request in order (then the last one forever), or a stall longer than
the sender's timeout. It records every request it got."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: An answer that is not a status: hold the request this many seconds, then 200.
STALL = "stall"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[int | str] = field(default_factory=lambda: [200])
    stall_s: float = 3.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *answers: int | str) -> None:
        with self.lock:
            self.answers = list(answers)

    def _next(self) -> int | str:
        with self.lock:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.headers.get("tokenbank-event-id", "") for r in self.received]


@contextmanager
def receiver(*answers: int | str, stall_s: float = 3.0) -> Iterator[Receiver]:
    state = Receiver(url="", stall_s=stall_s)
    if answers:
        state.answer(*answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            answer = state._next()
            if answer == STALL:
                time.sleep(state.stall_s)
                answer = 200
            self.send_response(int(answer))
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
