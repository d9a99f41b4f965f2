"""Webhooks into one app process: how fast each is acknowledged, how fast they are applied.

Set-up (not timed): the local Stripe server (``tokenbank stripe-sim``) in its own
process, with no webhook URL so it delivers nothing itself; the app pointed at it; one
user buys ``mode.webhook_events`` Starter packs through ``create-payment-intent`` and
each PaymentIntent is confirmed at the simulator with ``pm_card_visa``.

Timed: every intent's ``payment_intent.succeeded`` event, signed as Stripe signs
(``t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")``, before the clock starts), POSTed once
each to ``/api/payment/webhook`` over 8 connections at once, as Stripe delivers in
parallel, by wrk (``bench/wrk/webhooks.lua``): Stripe's senders are not on the app's
machine, and a Python client's CPU per request (≈ 0.6 ms with httpx) would take a share of
the two cores the app needs. The request verifies the
signature, records the event in the inbox and answers 200 ``received`` — no Stripe call —
while the process's webhook worker applies what was recorded: it retrieves each intent
from the simulator, checks it against our payment row, credits the tokens once and marks
the event handled in the same transaction.

- ``webhooks_ack_p99_ms``: p99 of the POSTs' latencies, wrk's own measurement of every
  request (every answer must be 200 ``received``, or the bench fails), measured while the
  worker is applying.
- ``webhooks_applied_per_s``: events divided by the seconds from starting wrk until the
  inbox shows every event handled (polled every 10 ms from the bench).

- ``app_cpu_ms_per_event`` / ``sim_cpu_ms_per_event``: CPU (user + system, from /proc)
  the app (its process and its webhook worker's child process, if any:
  ``serving_process_cpu_ms_per_event`` is the first alone) and the local Stripe
  server's process used per event over a run. The
  simulator is a process of its own, so its CPU is not counted as ours; but it shares the
  machine's two cores with the app and PostgreSQL, which ``applied_per_s`` feels.

- ``slow_stripe``: once more with the simulator answering every API call 2 s late: the
  acknowledgements' p99 (they make no Stripe call, so the delay must not reach them: goal
  ``webhooks_ack_p99_ms_slow_stripe`` in ``docs/benchmarks.md``)
  and the seconds until every event is applied all the same.

The user's balance must be the sum of the packs afterwards, and the ledger clean.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Mode, libpq_url, log, median, scratch_database
from bench.http import LUA_DIR, AppServer, ensure_wrk, free_port
from bench.ledger import check_clean
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.payments.stripe_client import STRIPE_API_VERSION

SECRET_KEY = "sk_test_local"
PUBLISHABLE_KEY = "pk_test_local"
WEBHOOK_SECRET = "whsec_bench_local_secret"
SENDERS = 8
#: The Show's slow Stripe: every API call answers 2 s late (the simulator's latency fault).
SLOW_STRIPE_LATENCY_S = 2.0
SLOW_STRIPE_EVENTS = 48


class StripeSim:
    """``tokenbank stripe-sim`` in its own process, so it does not share our CPU's GIL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StripeSim:
        tokenbank = Path(sys.executable).with_name("tokenbank")
        self.process = subprocess.Popen(
            [
                str(tokenbank),
                "stripe-sim",
                "--port",
                str(self.port),
                "--api-key",
                SECRET_KEY,
                "--publishable-key",
                PUBLISHABLE_KEY,
                "--webhook-secret",
                WEBHOOK_SECRET,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/v3/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)  # polling the port the simulator is about to open
        raise RuntimeError("the local Stripe server did not start")

    def cpu_s(self) -> float:
        """CPU seconds the simulator process has used (user + system), from /proc: its
        work is not ours, but it runs on the same two cores while we measure."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_latency(self, seconds: float) -> None:
        """The simulator's API fault: every ``/v1`` call answers ``seconds`` later."""
        r = httpx.post(
            f"{self.url}/_sim/api_faults",
            json={"latency_s": seconds},
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
            timeout=10,
        )
        if r.status_code != 200:
            raise RuntimeError(f"/_sim/api_faults answered {r.status_code}: {r.text[:200]}")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds (user + system, from /proc) of a process and of each of its
    descendants, by pid: the app process and, under ``tokenbank serve``, the child that
    runs its webhook worker (``WEBHOOK_WORKER_PROCESS``), so both count as the app's."""
    found: dict[int, float] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:  # it exited meanwhile
            continue
        found[current] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def succeeded_event(n: int, intent: dict[str, Any]) -> bytes:
    event = {
        "id": f"evt_bench_{os.getpid()}_{n}",
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "type": "payment_intent.succeeded",
        "data": {"object": intent},
    }
    return json.dumps(event).encode()


async def buy_packs(app: AppServer, sim: StripeSim, count: int) -> tuple[int, list[dict[str, Any]]]:
    """One user, ``count`` confirmed Starter PaymentIntents (as Stripe holds them)."""
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as client:
        name = f"hooks{os.getpid()}"
        r = await client.post(
            "/api/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "bench-pass-1"},
        )
        if r.status_code != 201:
            raise RuntimeError(f"register failed: {r.status_code} {r.text}")
        user_id, token = int(r.json()["user"]["id"]), str(r.json()["access_token"])
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=sim.url, timeout=60, auth=(SECRET_KEY, "")) as stripe:

            async def buy_one() -> dict[str, Any]:
                created = await client.post(
                    "/api/payment/create-payment-intent", json={"tier": "starter"}, headers=auth
                )
                if created.status_code != 200:
                    raise RuntimeError(
                        f"create-payment-intent: {created.status_code} {created.text}"
                    )
                pi_id = created.json()["payment_intent_id"]
                confirmed = await stripe.post(
                    f"/v1/payment_intents/{pi_id}/confirm",
                    data={"payment_method": "pm_card_visa", "return_url": "http://127.0.0.1/done"},
                )
                if confirmed.status_code != 200:
                    raise RuntimeError(f"confirm {pi_id}: {confirmed.status_code} {confirmed.text}")
                intent: dict[str, Any] = confirmed.json()
                if intent["status"] != "succeeded":
                    raise RuntimeError(f"{pi_id} is {intent['status']}, not succeeded")
                return intent

            intents: list[dict[str, Any]] = []
            for start in range(0, count, SENDERS):
                batch = min(SENDERS, count - start)
                intents.extend(await asyncio.gather(*(buy_one() for _ in range(batch))))
    return user_id, intents


async def deliver(app: AppServer, events: list[bytes]) -> dict[int, float]:
    """POST every event once, over ``SENDERS`` connections, with wrk (``wrk/webhooks.lua``):
    each request is signed beforehand, as Stripe signs it, so the senders' CPU is wrk's
    few microseconds a request rather than a Python client's (Stripe's senders are not on
    the app's machine). Every answer must be 200 ``received``: recorded, to be applied by
    the worker; the bench fails otherwise. The latencies are wrk's own, of every request:
    its p50, p90 and p99 (ms), by percentile."""
    wrk = ensure_wrk()
    threads = min(2, SENDERS)
    signed_at = int(time.time())
    with tempfile.NamedTemporaryFile("w", prefix="tokenbank-events-", suffix=".tsv") as file:
        for payload in events:
            text = payload.decode()
            if "\t" in text or "\n" in text:
                raise ValueError("an event's JSON must hold no raw tab or newline")
            file.write(f"{sign(payload, WEBHOOK_SECRET, signed_at)}\t{text}\n")
        file.flush()
        process = await asyncio.create_subprocess_exec(
            wrk,
            f"-t{threads}",
            f"-c{SENDERS}",
            "-d120s",
            "--timeout",
            "30s",
            "-s",
            str(LUA_DIR / "webhooks.lua"),
            app.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "BENCH_EVENTS": file.name, "BENCH_THREADS": str(threads)},
        )
        assert process.stderr is not None and process.stdout is not None
        # wrk runs for its -d unless interrupted: each thread says "finished" on stderr
        # once its last answer has arrived; then SIGINT ends wrk, which prints its summary.
        said: list[str] = []
        finished = 0
        async for raw in process.stderr:
            if raw.strip() == b"finished":
                finished += 1
                if finished == threads:
                    process.send_signal(signal.SIGINT)
            else:
                said.append(raw.decode(errors="replace"))
        stdout = (await process.stdout.read()).decode(errors="replace")
        await process.wait()
    stderr = "".join(said)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("{")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    summary = json.loads(line)
    errors = {k: int(v) for k, v in summary["errors"].items() if int(v)}
    if summary["failed"] or errors or summary["requests"] != len(events):
        raise RuntimeError(
            f"{summary['requests']} of {len(events)} webhooks answered, {summary['failed']} "
            f"not 200 received, errors {errors}: {stderr.strip()[:600]}"
        )
    return {p: summary[f"p{p}_us"] / 1000 for p in (50, 90, 99)}


#: How many of the events are handled: one prepared statement on a plain driver
#: connection, so that the bench's polling (every 10 ms) takes little of the CPU the app
#: needs to apply them.
HANDLED_COUNT = (
    "SELECT count(*) FROM webhook_events WHERE id = ANY($1::text[]) AND status = 'handled'"
)


async def handled_count(conn: asyncpg.Connection, ids: list[str]) -> int:
    return int(await conn.fetchval(HANDLED_COUNT, ids))


async def run_once(
    app: AppServer, db: asyncpg.Connection, events: list[bytes]
) -> tuple[float, dict[int, float]]:
    """Seconds from starting the senders until every event is applied, and the POSTs'
    latency percentiles (ms)."""
    ids = [json.loads(e)["id"] for e in events]
    started = time.perf_counter()
    latencies = await deliver(app, events)
    deadline = time.monotonic() + 300
    while await handled_count(db, ids) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not apply every event in 300 s")
        await asyncio.sleep(0.01)  # polling the inbox the worker is draining
    return time.perf_counter() - started, latencies


async def balance_of(url: str, user_id: int) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            return (await ledger.balance(session, user_id)).balance
    finally:
        await db.dispose()


def app_env(database_url: str, stripe_url: str, **extra: str) -> dict[str, str]:
    """The app's settings for a webhook bench: its database, the local Stripe server."""
    return {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_url,
        "SIGNUP_BONUS_TOKENS": "0",
        **extra,
    }


async def bench_webhooks(mode: Mode) -> dict[str, Any]:
    applied: list[float] = []
    app_cpu: list[float] = []
    ack_cpu: list[float] = []
    sim_cpu: list[float] = []
    p99s: list[float] = []
    p50s: list[float] = []
    async with scratch_database("webhooks") as url:
        with StripeSim() as sim:
            env = app_env(url, sim.url)
            with AppServer(env) as app:
                slow_events = SLOW_STRIPE_EVENTS
                user_id, intents = await buy_packs(
                    app, sim, mode.webhook_events * mode.runs + slow_events
                )
                slow_intents, intents = intents[:slow_events], intents[slow_events:]
                per_run = mode.webhook_events
                db = await asyncpg.connect(libpq_url(url))
                try:
                    for run in range(mode.runs):
                        batch = intents[run * per_run : (run + 1) * per_run]
                        events = [
                            succeeded_event(run * per_run + i, pi) for i, pi in enumerate(batch)
                        ]
                        assert app.process is not None
                        app0, sim0 = cpu_by_process(app.process.pid), sim.cpu_s()
                        elapsed, latencies = await run_once(app, db, events)
                        app1 = cpu_by_process(app.process.pid)
                        spent = {p: app1[p] - app0.get(p, 0.0) for p in app1}
                        app_cpu.append(1000 * sum(spent.values()) / len(events))
                        ack_cpu.append(1000 * spent[app.process.pid] / len(events))
                        sim_cpu.append(1000 * (sim.cpu_s() - sim0) / len(events))
                        applied.append(len(events) / elapsed)
                        p99s.append(latencies[99])
                        p50s.append(latencies[50])
                        log(
                            f"webhooks run {run + 1}/{mode.runs}: applied {applied[-1]:.0f}/s, "
                            f"ack p99 {p99s[-1]:.1f} ms; CPU per event: app {app_cpu[-1]:.2f} ms "
                            f"(of which the serving process {ack_cpu[-1]:.2f} ms), "
                            f"Stripe simulator {sim_cpu[-1]:.2f} ms"
                        )
                    # Stripe slowed to 2 s a call: the answers must not wait for it.
                    sim.set_latency(SLOW_STRIPE_LATENCY_S)
                    try:
                        events = [
                            succeeded_event(10**6 + i, pi) for i, pi in enumerate(slow_intents)
                        ]
                        slow_elapsed, slow_latencies = await run_once(app, db, events)
                    finally:
                        sim.set_latency(0)
                    log(
                        f"webhooks with Stripe at {SLOW_STRIPE_LATENCY_S} s a call: ack p99 "
                        f"{slow_latencies[99]:.1f} ms, all applied in "
                        f"{slow_elapsed:.1f} s"
                    )
                finally:
                    await db.close()
        balance = await balance_of(url, user_id)
        violations = await check_clean(url)
    expected = 100 * (mode.webhook_events * mode.runs + SLOW_STRIPE_EVENTS)
    if balance != expected:
        raise RuntimeError(f"balance {balance} after the webhooks, expected {expected}")
    return {
        "events_per_run": mode.webhook_events,
        "senders": SENDERS,
        "applied_per_s": {"median": median(applied), "runs": applied},
        "ack_p99_ms": {"median": median(p99s), "runs": p99s},
        "ack_p50_ms": median(p50s),
        "app_cpu_ms_per_event": {"median": median(app_cpu), "runs": app_cpu},
        "serving_process_cpu_ms_per_event": {"median": median(ack_cpu), "runs": ack_cpu},
        "sim_cpu_ms_per_event": {"median": median(sim_cpu), "runs": sim_cpu},
        "slow_stripe": {
            "latency_s": SLOW_STRIPE_LATENCY_S,
            "events": SLOW_STRIPE_EVENTS,
            "ack_p99_ms": slow_latencies[99],
            "ack_p50_ms": slow_latencies[50],
            "all_applied_s": slow_elapsed,
        },
        # Kept for the report's older line: events applied per second.
        "per_s": {"median": median(applied), "runs": applied},
        "p50_ms": median(p50s),
        "balance_after": balance,
        "violations": violations,
    }
