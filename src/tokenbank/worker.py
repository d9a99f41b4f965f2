"""The app process's background child (``WEBHOOK_WORKER_PROCESS``): ``python -m
tokenbank.worker``, started and supervised by the app's lifespan
(``background.ChildProcess``), applies the webhook inbox with the same
``payments.flows.WebhookWorker`` the app would run in its own event loop, so that its CPU
does not delay the requests (the acknowledgements) waiting there. Woken by its parent
over stdin when the parent records an event; polling for the others'
(``WEBHOOK_POLL_INTERVAL_S``); dies with its parent."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from tokenbank.background import die_with_parent, serve_in_child
from tokenbank.config import Settings, get_settings
from tokenbank.db import Database
from tokenbank.ledger import lots as ledger_lots
from tokenbank.observability import configure_logging
from tokenbank.payments.flows import WebhookWorker
from tokenbank.payments.stripe_client import StripeGateway

# Registers the subscriptions domain's applier (invoice events), as the app's import does.
from tokenbank.subscriptions import flows as _subscriptions  # noqa: F401


async def run(settings: Settings) -> None:
    db = Database(
        settings.database_url,
        # A claim applies WEBHOOK_CONCURRENCY events at once, each in its own transaction.
        pool_size=min(settings.database_pool_size, settings.webhook_concurrency + 1),
        timeout_s=settings.database_timeout_s,
        pgbouncer=settings.database_pgbouncer,
    )
    gateway = StripeGateway(settings)
    try:
        await serve_in_child(WebhookWorker(db, gateway, settings))
    finally:
        await gateway.aclose()
        await db.dispose()


def main() -> None:
    die_with_parent()
    settings = get_settings()
    if settings.webhook_worker_nice:
        os.nice(settings.webhook_worker_nice)
    if settings.app_env != "test":
        configure_logging(settings.log_level, json_logs=settings.json_logs)
    ledger_lots.configure(settings.lot_priorities, settings.grant_expires_days)  # as the app
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run(settings))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop, as uvicorn gives the serving process, where it is installed
    (``uvicorn[standard]``): the worker's CPU per applied event is mostly the event loop's
    and the drivers' socket round trips, and uvloop runs them in C. Else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
