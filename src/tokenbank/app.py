"""The FastAPI application: routers, error handlers, middleware, background jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tokenbank import __version__
from tokenbank.admin.routes import router as admin_router
from tokenbank.apikeys.routes import router as api_keys_router
from tokenbank.auth import maintenance as auth_maintenance
from tokenbank.auth.routes import router as auth_router
from tokenbank.auth.security import configure_password_hashing
from tokenbank.background import ChildProcess
from tokenbank.balance_watch import BalanceWatch
from tokenbank.balance_watch import install as install_balance_watch
from tokenbank.chat.flows import wait_for_settles
from tokenbank.chat.routes import models_router
from tokenbank.chat.routes import router as chat_router
from tokenbank.chat.service import start_provider
from tokenbank.config import Settings, get_settings
from tokenbank.db import Database
from tokenbank.errors import install_error_handlers
from tokenbank.health import router as health_router
from tokenbank.jobs import BalanceLook, Scheduler, expire_lots_once, purge_auth, sweep_once
from tokenbank.ledger import lots as ledger_lots
from tokenbank.ledger.routes import router as ledger_router
from tokenbank.mail.devsink import router as dev_mail_router
from tokenbank.meter.routes import router as meter_router
from tokenbank.notifications.flows import Mailer, alert_expiring_lots
from tokenbank.notifications.routes import router as notifications_router
from tokenbank.observability import BodySizeLimit, RequestContext, configure_logging
from tokenbank.outbound.flows import Deliverer
from tokenbank.outbound.routes import router as outbound_router
from tokenbank.payments.flows import WebhookWorker, reconcile_job
from tokenbank.payments.routes import router as payments_router
from tokenbank.payments.routes import webhook_router as payments_webhook_router
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.pricing.routes import router as price_book_router
from tokenbank.pricing.service import configured_book
from tokenbank.ratelimit.flows import start_limiter
from tokenbank.subscriptions.flows import sync_catalog
from tokenbank.subscriptions.routes import admin_router as subscriptions_admin_router
from tokenbank.subscriptions.routes import dev_router as subscriptions_dev_router
from tokenbank.subscriptions.routes import router as subscriptions_router
from tokenbank.v1.cors import WidgetCORS
from tokenbank.v1.routes import checkout_router as v1_checkout_router
from tokenbank.v1.routes import router as v1_router
from tokenbank.v1.routes import widget_router as v1_widget_router
from tokenbank.v1.widgets import WidgetTokens
from tokenbank.web import SecurityHeaders, mount_client

log = logging.getLogger(__name__)

#: How long shutdown waits for replies still being charged and saved.
SETTLE_GRACE_S = 30.0


async def _sync_catalog(gateway: StripeGateway, settings: Settings) -> None:
    try:
        for entry in await sync_catalog(gateway, settings):
            if entry.created:
                log.info("plan %s: created Stripe price %s", entry.plan, entry.price_id)
    except Exception:  # Stripe is away: the first subscription creates its price instead
        log.warning("could not sync the plans' Stripe catalog at start-up", exc_info=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    if settings.app_env != "test":
        configure_logging(settings.log_level, json_logs=settings.json_logs)
    configure_password_hashing(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    ledger_lots.configure(settings.lot_priorities, settings.grant_expires_days)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built once per process: its HTTP client is shared by every reply.
        ai_provider = start_provider(settings)
        # A PRICE_BOOK that does not parse stops the start, not every reply.
        configured_book(settings, ai_provider.model)
        app.state.ai_provider = ai_provider
        db = Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            timeout_s=settings.database_timeout_s,
            pgbouncer=settings.database_pgbouncer,
        )
        app.state.db = db
        limiter = start_limiter(settings, db)
        app.state.limiter = limiter
        stripe_gateway = StripeGateway(settings)
        app.state.stripe = stripe_gateway
        app.state.widget_tokens = WidgetTokens(settings)
        scheduler = Scheduler(db)
        deliverer = Deliverer(settings)
        if settings.background_jobs:
            scheduler.every(
                settings.outbound_webhook_interval_s, "outbound-webhooks", deliverer.drain
            )
            scheduler.every(settings.sweeper_interval_s, "sweeper", sweep_once)
            scheduler.every(settings.lot_expiry_interval_s, "lot-expiry", expire_lots_once)
            scheduler.every(
                settings.lot_expiry_interval_s, "lot-expiry-alerts", alert_expiring_lots
            )
            scheduler.every(auth_maintenance.INTERVAL_S, "auth-purge", purge_auth)
            if stripe_gateway.configured:
                scheduler.every(
                    settings.reconcile_interval_s,
                    "reconcile",
                    lambda job_db: reconcile_job(job_db, stripe_gateway, settings),
                )
        catalog_sync: asyncio.Task[None] | None = None
        if settings.app_env == "development" and stripe_gateway.configured:
            # Development only: the plans' Products and Prices exist before the first
            # subscription (production runs ``tokenbank stripe sync-catalog`` on deploy).
            catalog_sync = asyncio.create_task(_sync_catalog(stripe_gateway, settings))
        webhook_worker: WebhookWorker | ChildProcess | None = None
        if settings.webhook_worker and stripe_gateway.configured:
            # In a supervised child process (``tokenbank.worker``) unless
            # WEBHOOK_WORKER_PROCESS=false: the apply's CPU then stays off this event loop.
            webhook_worker = (
                ChildProcess("webhook-worker", "tokenbank.worker", logger=log)
                if settings.webhook_worker_process
                else WebhookWorker(db, stripe_gateway, settings)
            )
            webhook_worker.start()
        app.state.webhook_worker = webhook_worker
        # Notification emails, and the look at a balance a charge left below a threshold
        # (alerts, auto top-up): off the charged reply's path, in this process.
        mailer = Mailer(db, settings, settings.notification_mail_interval_s)
        mailer.start()
        watch = BalanceWatch(
            BalanceLook(db, stripe_gateway, settings, mailer), settings.balance_watch_cache_s
        )
        watch.start()
        install_balance_watch(watch)
        app.state.mailer, app.state.balance_watch = mailer, watch
        try:
            yield
        finally:
            install_balance_watch(None)
            await watch.stop()
            await mailer.stop()
            # Replies whose clients left are still being charged and saved: finish them.
            if unfinished := await wait_for_settles(SETTLE_GRACE_S):
                log.error("shutting down with %s reply settles unfinished", unfinished)
            if catalog_sync is not None and not catalog_sync.done():
                catalog_sync.cancel()
            if webhook_worker is not None:
                await webhook_worker.stop()
            await scheduler.stop()
            await deliverer.aclose()
            await limiter.aclose()
            await stripe_gateway.aclose()
            await db.dispose()
            await ai_provider.aclose()

    app = FastAPI(
        title="tokenbank",
        version=__version__,
        summary="Prepaid AI tokens on Stripe.",
        lifespan=lifespan,
        # Off in production unless API_DOCS_ENABLED says otherwise: the schema is a map of
        # every route for whoever probes the site.
        docs_url="/docs" if settings.api_docs_on else None,
        redoc_url="/redoc" if settings.api_docs_on else None,
        openapi_url="/openapi.json" if settings.api_docs_on else None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # The service API first: the framework tries the included routers in this order, at
    # a few microseconds per route, and its callers are machines calling per unit of
    # work. No two routers answer the same path (tests/ops/test_routing.py), so the order
    # decides nothing but the cost of finding the route.
    # Stripe's webhook ahead of everything: Stripe posts every event of the account
    # (checked: answering it costs v1 one more route tried, a few microseconds).
    app.include_router(payments_webhook_router)
    app.include_router(v1_router)
    app.include_router(v1_widget_router)
    app.include_router(v1_checkout_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(ledger_router)
    app.include_router(payments_router)
    app.include_router(chat_router)
    app.include_router(meter_router)
    app.include_router(notifications_router)
    app.include_router(subscriptions_router)
    app.include_router(admin_router)
    app.include_router(subscriptions_admin_router)
    app.include_router(subscriptions_dev_router)  # 404 unless test clocks are on
    app.include_router(models_router)
    app.include_router(price_book_router)
    app.include_router(api_keys_router)
    app.include_router(outbound_router)
    app.include_router(dev_mail_router)  # 404 outside development
    mount_client(app, settings)  # last: its catch-all must not shadow the API
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    if settings.widget_allowed_origins:
        app.add_middleware(WidgetCORS, origins=settings.widget_allowed_origins)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    return app
