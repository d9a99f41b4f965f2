"""Several ``tokenbank serve`` processes on one fresh PostgreSQL database, the local Stripe
server, and a webhook proxy between them — the bench every multi-process scenario uses.

- :func:`fresh_database` creates a database of the scenario's own on the test PostgreSQL
  (``TEST_POSTGRES_URL``), migrates it with the Alembic migrations, and drops it afterwards.
- :class:`WebhookProxy` is the address the local Stripe server delivers to. It spreads
  deliveries over the app processes (round robin) and can answer 503 to the FIRST attempt
  of a seeded share of events without forwarding it, as an overloaded or restarting app
  would; Stripe then retries. It counts what it did, so scenarios can report it.
- :class:`Cluster` starts the processes in parallel, runs the ``tokenbank`` CLI with the
  same environment (``ledger check``, ``payments reconcile``), and stops them.
- :func:`audit` reads the whole ledger back for exact assertions.

Everything binds 127.0.0.1 on free ports and is stopped by the scenario that started it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import stripe
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reliability.harness import REPO, AppProcess
from stripe_sim import SimConfig, SimServer
from tokenbank.chat.models import Chat, Message
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenAccount, TokenReservation, TokenTransaction
from tokenbank.payments.stripe_client import AsyncHTTPXClient
from tokenbank.types import utcnow

from conftest import migrated_postgres_database

SECRET_KEY = "sk_test_local"
PUBLISHABLE_KEY = "pk_test_local"
WEBHOOK_SECRET = "whsec_test_secret"
JWT_SECRET = "reliability-jwt-secret-0123456789abcdef"
RETURN_URL = "http://127.0.0.1/payment/return"
PASSWORD = "reliable-pass-1"

T = TypeVar("T")


# --- the database ------------------------------------------------------------------------


@contextmanager
def fresh_database(scenario: str) -> Iterator[str]:
    """A migrated PostgreSQL database for one scenario, dropped at its end."""
    with migrated_postgres_database(f"tokenbank_rel_{scenario}", "RELIABILITY SCENARIO") as url:
        yield url


# --- servers in threads of the test process ------------------------------------------------


class ThreadServer:
    """An ASGI app under uvicorn on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app: Starlette, name: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", http="h11", ws="none",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=75,  # past the clients' own 5 s, as `tokenbank serve`
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True, name=name
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:  # uvicorn's own flag; there is no event to await
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@dataclass
class WebhookProxy:
    """Where Stripe delivers: round robin over the app processes, with refusals on demand.

    ``refuse_first_share`` of event ids (chosen by a hash of ``seed`` and the id, so the
    same ids every run) get 503 on the first delivery the proxy sees of them, unforwarded.
    A target that does not answer (a killed process) gives 502, so Stripe retries.
    """

    targets: list[str]
    refuse_first_share: float = 0.0
    seed: int = 0
    forwarded: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    refused: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    unreachable: int = 0
    _turn: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadServer | None = None
    _http: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{self._server.url}/webhook"

    def start(self) -> WebhookProxy:
        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(timeout=60) as client:
                self._http = client
                yield

        app = Starlette(
            routes=[Route("/webhook", self._deliver, methods=["POST"])], lifespan=lifespan
        )
        self._server = ThreadServer(app, "webhook-proxy")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def refuses_first(self, event_id: str) -> bool:
        return random.Random(f"{self.seed}:{event_id}").random() < self.refuse_first_share

    @property
    def deliveries(self) -> int:
        return sum(self.forwarded.values())

    async def _deliver(self, request: Request) -> Response:
        body = await request.body()
        event_id = _event_id(body)
        with self._lock:
            first = event_id not in self.seen
            self.seen.add(event_id)
            if first and self.refuses_first(event_id):
                self.refused.add(event_id)
                return Response(b'{"refused": "first attempt"}', 503)
            target = self.targets[self._turn % len(self.targets)]
            self._turn += 1
        headers = {
            "Stripe-Signature": request.headers.get("stripe-signature", ""),
            "Content-Type": request.headers.get("content-type", "application/json"),
        }
        assert self._http is not None
        try:
            answer = await self._http.post(
                f"{target}/api/payment/webhook", content=body, headers=headers
            )
        except httpx.HTTPError:
            with self._lock:
                self.unreachable += 1
            return Response(b'{"unreachable": true}', 502)
        with self._lock:
            self.forwarded[target] += 1
            self.statuses[answer.status_code] += 1
        return Response(answer.content, answer.status_code, media_type="application/json")


def _event_id(body: bytes) -> str:
    try:
        return str(json.loads(body).get("id", ""))
    except (ValueError, AttributeError):
        return ""


def start_sim(webhook_url: str | None = None, *, max_attempts: int = 12) -> SimServer:
    """The local Stripe server with fixed test keys and quick retries."""
    config = SimConfig(
        webhook_url=webhook_url,
        webhook_secret=WEBHOOK_SECRET,
        api_key=SECRET_KEY,
        publishable_key=PUBLISHABLE_KEY,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.5,
        webhook_max_attempts=max_attempts,
        webhook_timeout_s=60,
    )
    return SimServer(config).start()


# --- app processes ---------------------------------------------------------------------------


def app_env(database_url: str, sim: SimServer | None = None, **extra: str) -> dict[str, str]:
    """The environment of every process in a scenario (``extra`` wins)."""
    env = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "RATE_LIMIT_ENABLED": "false",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "AI_PROVIDER": "offline",
        "SIGNUP_BONUS_TOKENS": "0",
        "RECONCILE_INTERVAL_S": "0",  # webhooks alone must get it right; reconcile is run by hand
        "DATABASE_POOL_SIZE": "8",  # three processes stay well inside max_connections
        "DATABASE_TIMEOUT_S": "30",
        "CLIENT_DIST": "/nonexistent-client-dist",
    }
    if sim is not None:
        env |= {
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": sim.url,
        }
    return env | extra


@dataclass
class Cluster:
    apps: list[AppProcess]
    env: dict[str, str]

    @property
    def urls(self) -> list[str]:
        return [a.url for a in self.apps]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``tokenbank`` command with the processes' environment."""
        return subprocess.run(
            [sys.executable, "-m", "tokenbank.cli", *args],
            env=os.environ | {"APP_ENV": "development"} | self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ledger_check(self) -> str:
        done = self.cli("ledger", "check")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 violations" in done.stdout, done.stdout
        return done.stdout.strip()

    def reconcile(self) -> list[str]:
        done = self.cli("payments", "reconcile", "--since", "1d")
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()

    def logs(self) -> str:
        return "\n".join(f"--- app {a.port} ---\n{a.tail(60)}" for a in self.apps)

    def unhandled_errors(self) -> list[str]:
        """The exception line of every 500 the processes logged (JSON logs)."""
        found = []
        for app in self.apps:
            for line in app.log.read_text(errors="replace").splitlines():
                if '"unhandled error"' not in line:
                    continue
                exc = json.loads(line).get("exc", "")
                found.append(next((x for x in exc.splitlines() if "Error" in x and ": " in x
                                   and not x.startswith(" ")), exc[-200:]))
        return found


@contextmanager
def running_cluster(env: dict[str, str], size: int) -> Iterator[Cluster]:
    apps = [AppProcess(env) for _ in range(size)]
    passed = False
    try:
        for app in apps:
            app.launch()
        for app in apps:
            app.wait_ready()
        yield Cluster(apps, env)
        passed = True
    finally:
        for app in apps:
            app.stop()
            if passed:
                app.remove_log()
            else:  # keep the logs of a failed scenario, and say where they are
                print(f"app log kept: {app.log}\n{app.tail(30)}")


# --- people, money, Stripe -----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(http: httpx.AsyncClient, base_url: str, prefix: str = "r") -> Person:
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    r = await http.post(
        f"{base_url}/api/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Person(int(body["user"]["id"]), name, str(body["access_token"]))


async def register_many(
    http: httpx.AsyncClient, urls: Sequence[str], count: int, prefix: str = "r"
) -> list[Person]:
    """``count`` sign-ups spread over the processes, a few at a time."""
    return await gather_limited(
        [lambda i=i: register(http, urls[i % len(urls)], prefix) for i in range(count)], 10
    )


async def gather_limited(jobs: Sequence[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    """Run the jobs with at most ``concurrency`` at once; results in job order."""
    results: list[Any] = [None] * len(jobs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(jobs)):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            results[index] = await jobs[index]()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
    return results


async def grant(database_url: str, balances: dict[int, int]) -> None:
    """Give each user a known balance straight through the ledger (zero: nothing)."""
    db = Database(database_url, pool_size=2)
    try:
        async with db.transaction() as session:
            for user_id, tokens in balances.items():
                if tokens:
                    await ledger.grant(session, user_id, tokens, "reliability: known balance")
    finally:
        await db.dispose()


@dataclass
class StripeClients:
    """The operator (secret key) and the browser (publishable key), as the official SDK."""

    server: stripe.StripeClient
    browser: stripe.StripeClient
    _http: AsyncHTTPXClient

    @classmethod
    def for_sim(cls, sim: SimServer) -> StripeClients:
        return cls.for_url(sim.url)

    @classmethod
    def for_url(cls, api_base: str) -> StripeClients:
        http = AsyncHTTPXClient(timeout=60)

        def client(key: str) -> stripe.StripeClient:
            return stripe.StripeClient(
                key, base_addresses={"api": api_base}, http_client=http, max_network_retries=0
            )

        return cls(client(SECRET_KEY), client(PUBLISHABLE_KEY), http)

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def pay(self, intent: dict[str, Any], payment_method: str) -> stripe.PaymentIntent:
        """Confirm as the browser does: publishable key + client secret."""
        return await self.browser.v1.payment_intents.confirm_async(
            intent["payment_intent_id"],
            {
                "payment_method": payment_method,
                "client_secret": intent["client_secret"],
                "return_url": RETURN_URL,
            },
        )

    async def refund(self, pi_id: str, amount: int | None = None) -> None:
        params: dict[str, Any] = {"payment_intent": pi_id}
        if amount is not None:
            params["amount"] = amount
        await self.server.v1.refunds.create_async(params)  # type: ignore[arg-type]

    async def intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent at Stripe, with its latest charge."""
        page = await self.server.v1.payment_intents.list_async(
            {"limit": 100, "expand": ["data.latest_charge"]}
        )
        return [pi.to_dict() async for pi in page.auto_paging_iter()]

    async def disputes(self) -> list[dict[str, Any]]:
        page = await self.server.v1.disputes.list_async({"limit": 100})
        return [d.to_dict() async for d in page.auto_paging_iter()]


def reversal_rule(tokens: int, amount: int, returned: int) -> int:
    """Tokens taken back for a payment, as ``payments/sync.py`` documents the rule:
    ``ceil(tokens * returned / amount)``, capped at the tokens bought, where ``returned``
    is the money refunded (not failed or canceled) plus the money disputes hold."""
    if returned >= amount:
        return tokens
    return min(tokens, -(-tokens * returned // amount))


def disputed_cents(dispute: dict[str, Any]) -> int:
    """Money a dispute holds: withdrawn minus reinstated (same currency here); inquiries
    never hold any."""
    if str(dispute["status"]).startswith("warning_"):
        return 0
    return max(0, -sum(int(t["amount"]) for t in dispute["balance_transactions"]))


async def expected_from_stripe(clients: StripeClients) -> tuple[dict[int, int], dict[str, int]]:
    """What Stripe's final state says each user bought (tokens net of reversals), and the
    net tokens each succeeded PaymentIntent is worth. The charge's ``amount_refunded``
    counts refunds that did not fail and were not canceled (Stripe gives failed ones back)."""
    held: dict[str, int] = defaultdict(int)
    for d in await clients.disputes():
        held[d["charge"]] += disputed_cents(d)
    per_user: dict[int, int] = defaultdict(int)
    per_intent: dict[str, int] = {}
    for pi in await clients.intents():
        md = pi.get("metadata") or {}
        if md.get("type") != "token_purchase" or pi["status"] != "succeeded":
            continue
        charge = pi["latest_charge"]
        tokens = int(md["tokens"])
        returned = charge["amount_refunded"] + held.get(charge["id"], 0)
        taken = reversal_rule(tokens, pi["amount"], returned)
        net = tokens - taken
        per_intent[pi["id"]] = net
        per_user[int(md["user_id"])] += net
    return dict(per_user), per_intent


# --- reading the ledger back ---------------------------------------------------------------


@dataclass
class Audit:
    balances: dict[int, int]
    reserved: dict[int, int]
    entries: list[tuple[int, str, int, str | None]]  # user, type, amount, PaymentIntent
    pending_holds: int
    overdue_holds: int
    charged_replies: dict[int, int]
    violations: list[ledger.Violation]

    def of_type(self, kind: str) -> list[tuple[int, str, int, str | None]]:
        return [e for e in self.entries if e[1] == kind]

    def purchases_per_intent(self) -> Counter[str]:
        return Counter(pi for _, kind, _, pi in self.entries if kind == "purchase" and pi)

    def net_per_intent(self) -> dict[str, int]:
        net: dict[str, int] = defaultdict(int)
        for _, _, amount, pi in self.entries:
            if pi:
                net[pi] += amount
        return dict(net)

    def deductions(self) -> Counter[int]:
        return Counter(user for user, kind, _, _ in self.entries if kind == "deduction")


async def audit(database_url: str) -> Audit:
    db = Database(database_url, pool_size=2)
    try:
        async with db.transaction() as s:
            accounts = (
                await s.execute(
                    select(TokenAccount.user_id, TokenAccount.balance, TokenAccount.reserved)
                )
            ).all()
            entries = (
                await s.execute(
                    select(
                        TokenTransaction.user_id,
                        TokenTransaction.transaction_type,
                        TokenTransaction.amount,
                        TokenTransaction.stripe_payment_intent_id,
                    ).order_by(TokenTransaction.id)
                )
            ).all()
            pending = TokenReservation.status == "pending"
            holds = (
                await s.execute(select(func.count()).select_from(TokenReservation).where(pending))
            ).scalar_one()
            overdue = (
                await s.execute(
                    select(func.count())
                    .select_from(TokenReservation)
                    .where(pending, TokenReservation.expires_at < utcnow())
                )
            ).scalar_one()
            replies = (
                await s.execute(
                    select(Chat.user_id, func.count())
                    .join(Message, Message.chat_id == Chat.id)
                    .where(Message.role == "assistant", Message.tokens_charged > 0)
                    .group_by(Chat.user_id)
                )
            ).all()
            violations = await ledger.check(s)
    finally:
        await db.dispose()
    return Audit(
        balances={int(u): int(b) for u, b, _ in accounts},
        reserved={int(u): int(r) for u, _, r in accounts},
        entries=[(int(u), str(t), int(a), p) for u, t, a, p in entries],
        pending_holds=int(holds),
        overdue_holds=int(overdue),
        charged_replies={int(u): int(n) for u, n in replies},
        violations=violations,
    )


def report(scenario: str, **figures: object) -> None:
    """One line of figures per scenario (shown with ``pytest -rP`` / ``make test-reliability``)."""
    print(f"RELIABILITY {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
