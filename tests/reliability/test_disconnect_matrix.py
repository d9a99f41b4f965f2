"""Clients that leave at each moment of a reply, against real app processes.

Two ``tokenbank serve`` processes on SQLite and on PostgreSQL; the AI is an
OpenAI-compatible server streaming ``CHUNKS`` chunks with small, set delays, reached
through the real ``openai`` SDK. Raw-socket clients leave a streamed reply before the
first delta, after ``K`` of ``CHUNKS`` deltas, after the last delta but before ``done``,
and after ``done``; and leave a JSON ``/generate`` while the AI is still thinking. 20
times each.

The rule (docs/architecture.md, "When a reply is charged"): charged exactly when text
was handed to the server for sending (for ``/generate``: once the AI answered), saved as
``interrupted`` when cut, never charged twice, settled by the request's own process at
once (holds live far longer than the test, so the sweeper cannot be what resolved
them), and ``tokenbank ledger check`` clean.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chat.fake_openai import FakeOpenAI
from chat.harness import serve_sync
from chat.providers.fake_ai_servers import pieces
from reliability.cluster import (
    Cluster,
    Person,
    app_env,
    audit,
    grant,
    register_many,
    report,
    running_cluster,
)
from reliability.disconnects import Exchange, Reply, settled_truth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RUNS = 20
LANES = 5  # clients at once (one user and chat each)
CHUNKS = 6
K = 3
START_TOKENS = 1000
TEXT = "Alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima."
SETTLE_DEADLINE_S = 20.0
RESERVATION_TTL_S = 600  # no hold can expire during the scenario: the request settles it


@dataclass(frozen=True)
class Case:
    name: str
    #: The AI server's behaviour (``chat.fake_openai.Behaviour`` fields).
    behaviour: dict[str, Any]
    #: Deltas read before leaving; None: read to ``done``, then leave.
    leave_after: int | None
    charged: bool
    stream: bool = True


CASES = [
    # The first text is 1 s away, and the client leaves as soon as the stream starts.
    Case("before_first_delta", {"chunks": CHUNKS, "first_delay_s": 1.0}, 0, charged=False),
    Case(f"after_{K}_of_{CHUNKS}", {"chunks": CHUNKS, "delay_s": 0.15}, K, charged=True),
    # The whole text is sent; the AI's end of stream comes 0.5 s later.
    Case("after_last_before_done", {"chunks": CHUNKS, "finish_delay_s": 0.5}, CHUNKS,
         charged=True),
    Case("after_done", {"chunks": CHUNKS, "delay_s": 0.01}, None, charged=True),
    # /generate: the client leaves while the AI (0.6 s per answer) is thinking.
    Case("generate_left_while_thinking", {"delay_s": 0.6}, None, charged=True, stream=False),
]


@contextmanager
def streaming_ai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with serve_sync(fake.app()) as url:
        fake.url = url
        yield fake


def test_a_client_is_charged_exactly_when_text_was_delivered(db_url: str) -> None:
    with streaming_ai() as fake:
        env = app_env(
            db_url,
            AI_PROVIDER="openai", OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="test-key",
            OPENAI_MODEL="gpt-test", AI_TIMEOUT_S="30",
            RESERVATION_TTL_S=str(RESERVATION_TTL_S),
        )
        with running_cluster(env, 2) as cluster:
            started = time.monotonic()
            figures = asyncio.run(_matrix(db_url, cluster, fake))
            checked = cluster.ledger_check()
            server_errors = cluster.unhandled_errors()
    assert server_errors == []
    backend = db_url.split(":", 1)[0]
    report(f"disconnect_matrix_{backend}", **figures, seconds=round(time.monotonic() - started, 1),
           ledger_check=checked)


@dataclass
class Left:
    """One request as the client saw it."""

    case: Case
    person: Person
    chat: int
    key: str
    question: str
    received: str = ""
    deltas: int = 0
    done: bool = False


async def _matrix(url: str, cluster: Cluster, fake: FakeOpenAI) -> dict[str, Any]:
    assert len(pieces(TEXT, CHUNKS)) == CHUNKS  # the AI sends exactly the deltas counted
    async with httpx.AsyncClient(timeout=30) as http:
        people = await register_many(http, cluster.urls, LANES, "d")
        await grant(url, {p.id: START_TOKENS for p in people})
        chats = {}
        for p in people:
            r = await http.post(f"{cluster.urls[0]}/api/chats", json={}, headers=p.headers)
            assert r.status_code == 201, r.text
            chats[p.id] = int(r.json()["id"])
        figures: dict[str, Any] = {}
        charged_per_user: Counter[int] = Counter()
        turn = itertools.count()
        for case in CASES:
            fake.set(text=TEXT, **case.behaviour)
            runs = [
                Left(case, p, chats[p.id], f"{case.name}-{uuid.uuid4().hex[:8]}",
                     f"{case.name} question {i}")
                for i, p in zip(range(RUNS), itertools.cycle(people), strict=False)
            ]
            lanes = [runs[lane::LANES] for lane in range(LANES)]
            await asyncio.gather(*(_lane(cluster, fake, lane, turn) for lane in lanes))
            truth = await settled_truth(
                url, {r.key: r.chat for r in runs}, SETTLE_DEADLINE_S
            )
            for run in runs:
                _check(run, truth.replies[run.key])
                if truth.replies[run.key].charged:
                    charged_per_user[run.person.id] += 1
            if not case.stream:
                await _retries_return_the_reply(http, cluster, fake, runs)
            charged = sum(truth.replies[r.key].charged for r in runs)
            interrupted = sum(
                bool((a := truth.replies[r.key].answer) and a[1]) for r in runs
            )
            figures[case.name] = f"{charged}/{RUNS} charged, {RUNS - charged} not, {interrupted} interrupted"
        await _messages_api_shows_the_flags(http, cluster, people, chats)
    ledger = await audit(url)
    assert ledger.violations == []
    assert ledger.pending_holds == 0
    for p in people:  # never charged twice: one token per charged reply, no more
        assert ledger.balances[p.id] == START_TOKENS - charged_per_user[p.id], p
        assert ledger.deductions()[p.id] == charged_per_user[p.id], p
    return figures


async def _lane(cluster: Cluster, fake: FakeOpenAI, runs: list[Left], turn: Any) -> None:
    for run in runs:
        n = next(turn)
        await _ask_and_leave(cluster.urls[n % len(cluster.urls)], fake, run, abort=n % 2 == 0)


async def _ask_and_leave(base_url: str, fake: FakeOpenAI, run: Left, *, abort: bool) -> None:
    case = run.case
    headers = {**run.person.headers, "Idempotency-Key": run.key}
    path = f"/api/chats/{run.chat}/generate" + ("/stream" if case.stream else "")
    exchange = await Exchange.post(base_url, path, {"content": run.question}, headers)
    try:
        if not case.stream:
            # Leave once the AI has the question (it answers 0.6 s later).
            await _until(lambda: _asked(fake, run.question), 10, "the AI to be asked")
            return
        assert await exchange.head() == 200
        while not (case.leave_after and run.deltas >= case.leave_after):
            event = await exchange.event()
            assert event is not None, "the stream ended early"
            name, data = event
            if name == "delta":
                run.deltas += 1
                run.received += data["text"]
            elif name == "done":
                run.done = True
                break
            elif name == "error":
                raise AssertionError(f"error event: {data}")
            if case.leave_after == 0:  # leave as soon as the stream starts
                assert name == "comment", event
                break
    finally:
        exchange.leave(abort=abort)


def _asked(fake: FakeOpenAI, question: str) -> bool:
    return any(r["messages"][-1]["content"] == question for r in list(fake.requests))


async def _until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


def _check(run: Left, reply: Reply) -> None:
    case, where = run.case, f"{run.case.name} {run.key}"
    assert reply.deductions <= 1, where
    assert reply.charged == case.charged, (where, reply)
    if not case.charged:
        assert (reply.hold, reply.deductions, reply.messages) == ("released", 0, ()), where
        assert run.received == "", where
        return
    assert reply.deductions == 1, where
    assert [m[0] for m in reply.messages] == ["user", "assistant"], where
    content, interrupted = reply.answer or ("", False)
    assert reply.messages[1][3] == 1, where  # tokens_charged
    # Saved as far as it was sent: at least what the client read, a prefix of the reply.
    assert content.startswith(run.received) and TEXT.startswith(content), (where, content)
    if case.name.startswith("after_") and case.leave_after == K:
        assert run.deltas == K and interrupted and content != TEXT, (where, content)
    elif case.name == "after_last_before_done":
        assert run.received == TEXT and not run.done, where
        assert (content, interrupted) == (TEXT, True), where
    else:  # after done; /generate
        assert (content, interrupted) == (TEXT, False), where
        assert run.done == case.stream, where


async def _retries_return_the_reply(
    http: httpx.AsyncClient, cluster: Cluster, fake: FakeOpenAI, runs: list[Left]
) -> None:
    """The client that left asks again with its key: the stored reply, charged once."""
    for i, run in enumerate(runs):
        r = await http.post(
            f"{cluster.urls[(i + 1) % len(cluster.urls)]}/api/chats/{run.chat}/generate",
            json={"content": run.question},
            headers={**run.person.headers, "Idempotency-Key": run.key},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["replayed"], body["ai_message"]["content"]) == (True, TEXT), body
        assert sum(1 for q in fake.requests if q["messages"][-1]["content"] == run.question) == 1


async def _messages_api_shows_the_flags(
    http: httpx.AsyncClient, cluster: Cluster, people: list[Person], chats: dict[int, int]
) -> None:
    """What the user sees: interrupted replies with their partial text and the flag."""
    seen: Counter[bool] = Counter()
    for p in people:
        r = await http.get(f"{cluster.urls[1]}/api/chats/{chats[p.id]}/messages", headers=p.headers)
        assert r.status_code == 200, r.text
        for m in r.json():
            if m["role"] == "assistant":
                seen[m["interrupted"]] += 1
                assert TEXT.startswith(m["content"]) and m["content"], m
                if m["content"] != TEXT:
                    assert m["interrupted"] is True, m
    assert seen[True] == 2 * RUNS, seen  # after K, and after the last delta before done
    assert seen[False] == 2 * RUNS, seen  # after done, and /generate
