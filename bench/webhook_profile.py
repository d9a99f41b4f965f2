"""Where an applied webhook's CPU goes, in one process: ``python -m bench.webhook_profile``.

Set-up (untimed): the local Stripe server in its own process, one app server buying
``3 × N`` Starter packs (each confirmed at the simulator), then stopped. Then, in this
process, against the same PostgreSQL database: each round records N
``payment_intent.succeeded`` events through the real request handler
(``payments.flows.acknowledge``) and applies them with ``WebhookWorker.drain`` (the
worker's claim, the subscriptions domain's applier asking whether the intent pays an
invoice, the Stripe read, the sync's transaction, the inbox mark).

Printed per event: the apply's Python calls (cProfile, one round; they do not move with
the machine's load) and its process CPU (``time.process_time``, without a profiler, the
other rounds, with the drain's wall time per event beside it: where the two are close,
the drain is bound by its own CPU, not by waiting). ``--top`` prints the profile's
heaviest functions by own calls too.

``--ack``: the acknowledgement instead, through the whole app (``create_app``: its
middleware, routing, dependencies, the handler and the one insert), driven in-process
over ASGI (no HTTP parsing: uvicorn's share is not in it), the worker off: Python calls
per acknowledgement (cProfile, the second round: the first warms up), CPU per
acknowledgement (the other rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from typing import Any

import httpx

import tokenbank.subscriptions.flows  # noqa: F401 - registers its applier, as the app does
from bench.common import scratch_database
from bench.http import AppServer
from bench.webhooks import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeSim,
    app_env,
    buy_packs,
    sign,
    succeeded_event,
)
from tokenbank.app import create_app
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.payments import flows
from tokenbank.payments.stripe_client import StripeGateway


async def _profile_ack(
    settings: Settings,
    intents: list[dict[str, Any]],
    events: int,
    rounds: int,
    top: int,
    dump: str | None,
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for r in range(rounds + 1):
                batch = intents[r * events : (r + 1) * events]
                payloads = [succeeded_event(r * events + i, pi) for i, pi in enumerate(batch)]
                # Round 0 warms the app up (the framework builds some of a route's
                # machinery on its first request); round 1 is profiled.
                profiler = cProfile.Profile() if r == 1 else None
                c0 = time.process_time()
                if profiler is not None:
                    profiler.enable()
                for payload in payloads:
                    headers = {
                        "Stripe-Signature": sign(payload, WEBHOOK_SECRET, int(time.time())),
                        "Content-Type": "application/json",
                    }
                    answer = await client.post("/api/payment/webhook", content=payload,
                                               headers=headers)
                    if answer.status_code != 200:
                        raise RuntimeError(f"webhook answered {answer.status_code}")
                if profiler is not None:
                    profiler.disable()
                    stats = pstats.Stats(profiler)
                    calls = stats.total_calls / len(payloads)  # type: ignore[attr-defined]
                    print(json.dumps({"acknowledged": len(payloads),
                                      "calls_per_ack": round(calls)}))
                    if top:
                        stats.sort_stats("tottime").print_stats(top)
                    if dump:
                        stats.dump_stats(dump)
                elif r > 1:
                    cpu = 1000 * (time.process_time() - c0) / len(payloads)
                    print(json.dumps({"acknowledged": len(payloads),
                                      "cpu_ms_per_ack": round(cpu, 3)}))


async def _profile(events: int, rounds: int, top: int, dump: str | None, ack: bool) -> None:
    async with scratch_database("whprof") as url:
        with StripeSim() as sim:
            env = app_env(url, sim.url, WEBHOOK_WORKER="false")
            with AppServer(env) as app:
                _, intents = await buy_packs(app, sim, events * (rounds + 1))
            settings = Settings(
                database_url=url,
                stripe_secret_key=SECRET_KEY,
                stripe_publishable_key=PUBLISHABLE_KEY,
                stripe_webhook_secret=WEBHOOK_SECRET,
                stripe_api_base=sim.url,
                webhook_worker=not ack,
                app_env="test",  # the app configures no logging (httpx logs every request)
                background_jobs=not ack,
                rate_limit_enabled=False,
            )
            if ack:
                await _profile_ack(settings, intents, events, rounds, top, dump)
                return
            db = Database(url, pool_size=10)
            gateway = StripeGateway(settings)
            worker = flows.WebhookWorker(db, gateway, settings)
            try:
                for r in range(rounds + 1):
                    batch = intents[r * events : (r + 1) * events]
                    for i, pi in enumerate(batch):
                        payload = succeeded_event(r * events + i, pi)
                        await flows.acknowledge(
                            db, settings, payload, sign(payload, WEBHOOK_SECRET, int(time.time()))
                        )
                    if r == 0:
                        profiler = cProfile.Profile()
                        profiler.enable()
                        applied = await worker.drain()
                        profiler.disable()
                        stats = pstats.Stats(profiler)
                        calls = stats.total_calls / applied  # type: ignore[attr-defined]
                        print(json.dumps({"applied": applied, "calls_per_event": round(calls)}))
                        if top:
                            stats.sort_stats("tottime").print_stats(top)
                        if dump:
                            stats.dump_stats(dump)
                    else:
                        c0, w0 = time.process_time(), time.perf_counter()
                        applied = await worker.drain()
                        cpu = 1000 * (time.process_time() - c0) / applied
                        wall = 1000 * (time.perf_counter() - w0) / applied
                        print(json.dumps({"applied": applied, "cpu_ms_per_event": round(cpu, 3),
                                          "wall_ms_per_event": round(wall, 3)}))
            finally:
                await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds after the profiled one")
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--dump", help="write the cProfile stats to this file")
    parser.add_argument("--ack", action="store_true", help="the acknowledgement instead")
    args = parser.parse_args()
    asyncio.run(_profile(args.events, args.rounds, args.top, args.dump, args.ack))


if __name__ == "__main__":
    main()
