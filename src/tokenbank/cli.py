"""The ``tokenbank`` command: serve, migrate, operate. Exit codes: 0 ok, 1 problem found,
2 bad usage or refused input."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from tokenbank.apikeys.cli import app as api_keys_app
from tokenbank.cli_kit import err, with_db
from tokenbank.config import Settings, get_settings
from tokenbank.db import Database
from tokenbank.errors import AppError

if TYPE_CHECKING:
    from tokenbank.payments.stripe_client import StripeGateway

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="tokenbank: prepaid AI tokens on Stripe.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="User accounts.")
tokens_app = typer.Typer(no_args_is_help=True, help="Grant, adjust and read token balances.")
ledger_app = typer.Typer(no_args_is_help=True, help="Verify the ledger.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(ledger_app, name="ledger")
app.add_typer(api_keys_app, name="api-keys")

console = Console()


def _refuse_unsafe_start(settings: Settings, host: str) -> None:
    """Production checks, live keys outside production, a network bind outside production."""
    from tokenbank.config import ProductionConfigError

    try:
        settings.check_production()
        settings.check_bind(host)
    except ProductionConfigError as exc:
        err.print(f"[red]refused[/red]: {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (production).")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
) -> None:
    """Run the app (reads the environment / .env)."""
    import uvicorn

    settings = get_settings()
    if "webhook_worker_process" not in settings.model_fields_set:
        # Served, every app process runs its webhook worker in a child process of its
        # own unless WEBHOOK_WORKER_PROCESS says otherwise (the app's processes read the
        # environment again).
        os.environ["WEBHOOK_WORKER_PROCESS"] = "true"
        get_settings.cache_clear()
        settings = get_settings()
    _refuse_unsafe_start(settings, host)
    if migrate:
        from tokenbank.migrate import upgrade

        upgrade(settings.database_url)
    mode = (
        "simulated Stripe (test mode)"
        if settings.stripe_simulated
        else ("Stripe" if settings.stripe_secret_key else "no Stripe keys")
    )
    console.print(f"tokenbank on http://{host}:{port} — {settings.app_env}, {mode}")
    uvicorn.run(
        "tokenbank.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        # Only TRUSTED_PROXIES may set the client address and scheme (uvicorn's default
        # trusts any X-Forwarded-For sent from loopback).
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_keep_alive=settings.http_keep_alive_s,
        log_level="info",
    )


@app.command()
def dev(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    sim_port: Annotated[int, typer.Option(help="Port of the local Stripe server.")] = 12111,
) -> None:
    """Run the whole app locally: the local Stripe server too when no Stripe key is set."""
    from tokenbank.devserver import run_dev

    settings = get_settings()
    if settings.is_production:
        err.print("[red]refused[/red]: `tokenbank dev` is for development; APP_ENV=production")
        err.print("runs with `tokenbank serve` and real secrets (see docs/operations.md)")
        raise typer.Exit(2)
    _refuse_unsafe_start(settings, host)

    raise typer.Exit(run_dev(host, port, sim_port))


@app.command("stripe-sim")
def stripe_sim(
    port: Annotated[int, typer.Option()] = 12111,
    webhook_url: Annotated[str | None, typer.Option(help="Where to deliver events.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="whsec_... signing secret")] = None,
    api_key: Annotated[str | None, typer.Option(help="Accept only this secret key.")] = None,
    publishable_key: Annotated[str | None, typer.Option()] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(help="CORS origin (repeat).")] = None,
) -> None:
    """Run the local Stripe test-mode server on 127.0.0.1 (offline development and tests)."""
    from stripe_sim import SimConfig, run_sim

    config = SimConfig(
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        api_key=api_key,
        publishable_key=publishable_key,
        allowed_origins=list(allow_origin or []),
    )
    run_sim(config, host="127.0.0.1", port=port)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply Alembic migrations (the only way the schema is made)."""
    from tokenbank.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    console.print(f"database at {revision}")


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(prompt=True)],
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a NEW administrator. An existing username or email is refused (anyone may
    have registered it); to make an existing account an admin, use `users promote ID`."""
    from pydantic import ValidationError

    from tokenbank.admin import service
    from tokenbank.auth.schemas import RegisterRequest
    from tokenbank.types import utcnow

    try:
        body = RegisterRequest(username=username, email=email, password=password)
    except ValidationError as exc:
        err.print(f"[red]invalid[/red]: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    settings = get_settings()

    async def work(db: Database) -> str:
        async with db.transaction() as session:
            user = await service.create_admin(
                session,
                username=body.username,
                email=body.email,
                password=body.password,
                signup_bonus_tokens=settings.signup_bonus_tokens,
                now=utcnow(),
            )
            return f"created admin {user.username} (id {user.id})"

    console.print(with_db(settings, work))


@users_app.command("promote")
def promote(
    user_id: Annotated[int, typer.Argument(min=1, help="The account's id (see `users list`).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Make an existing account an administrator, by id, after showing whose it is."""
    from tokenbank.admin import service

    settings = get_settings()

    async def lookup(db: Database) -> tuple[str, str, bool]:
        async with db.transaction() as session:
            user = await service.get_user(session, user_id)
            return user.username, user.email, user.is_admin

    username, email, already = with_db(settings, lookup)
    console.print(f"user {user_id}: {username} <{email}>", highlight=False)
    if already:
        console.print("already an administrator; nothing changed")
        return
    if not yes and not typer.confirm(
        f"Make {username} <{email}> an administrator? Check that this email is yours"
    ):
        err.print("not promoted")
        raise typer.Exit(1)

    async def work(db: Database) -> bool:
        async with db.transaction() as session:
            return await service.promote(session, user_id)

    with_db(settings, work)
    console.print(f"promoted {username} (id {user_id}) to admin", highlight=False)


@tokens_app.command("balance")
def tokens_balance(user: Annotated[str, typer.Argument(help="User id, username or email")]) -> None:
    """Show a user's balance, reserved and available tokens."""
    from tokenbank.admin import service
    from tokenbank.ledger.models import Balance

    async def work(db: Database) -> Balance:
        async with db.transaction() as session:
            return await service.balance(session, await service.resolve_user(session, user))

    b = with_db(get_settings(), work)
    console.print(
        json.dumps(
            {
                "user_id": b.user_id,
                "balance": b.balance,
                "reserved": b.reserved,
                "available": b.available,
            }
        )
    )


def _post_tokens(user: str, amount: int, reason: str, kind: str) -> None:
    from tokenbank.admin import service
    from tokenbank.ledger.models import Entry

    async def work(db: Database) -> Entry:
        async with db.transaction() as session:
            user_id = await service.resolve_user(session, user)
            post = service.grant if kind == "grant" else service.adjust
            return await post(session, user_id, amount, reason)

    entry = with_db(get_settings(), work)
    console.print(
        f"{entry.transaction_type} {entry.amount:+d} for user {entry.user_id}; "
        f"balance now {entry.balance_after}"
    )


@tokens_app.command("grant")
def tokens_grant(
    user: Annotated[str, typer.Argument(help="User id, username or email")],
    amount: Annotated[int, typer.Argument(help="Tokens to give (positive)")],
    reason: Annotated[str, typer.Option("--reason", "-r")] = "Granted by an operator",
) -> None:
    """Give tokens (recorded as a grant)."""
    _post_tokens(user, amount, reason, "grant")


@tokens_app.command("adjust", context_settings={"ignore_unknown_options": True})
def tokens_adjust(
    user: Annotated[str, typer.Argument(help="User id, username or email")],
    amount: Annotated[int, typer.Argument(help="Signed correction, e.g. -5")],
    reason: Annotated[str, typer.Option("--reason", "-r")],
) -> None:
    """Correct a balance (recorded as an adjustment with the reason)."""
    _post_tokens(user, amount, reason, "adjust")


@ledger_app.command("check")
def ledger_check() -> None:
    """Verify the ledger's rules on every account (listed in ledger.service.check)."""
    from tokenbank.admin import service
    from tokenbank.ledger.service import Violation

    async def work(db: Database) -> tuple[int, list[Violation]]:
        async with db.transaction() as session:
            return await service.check_ledger(session)

    accounts, violations = with_db(get_settings(), work)
    for v in violations:
        console.print(f"[red]VIOLATION[/red] user {v.user_id} {v.rule}: {v.detail}")
    if violations:
        console.print(f"{len(violations)} violation(s) in {accounts} account(s)")
        raise typer.Exit(1)
    console.print(f"ledger ok: {accounts} account(s) checked, 0 violations")


@ledger_app.command("expire-lots")
def ledger_expire_lots() -> None:
    """Write off expired token lots now (what the app's lot-expiry job does on its own)."""
    from tokenbank.jobs import expire_lots_once

    written = with_db(get_settings(), expire_lots_once)
    console.print(f"{written} expired lot(s) written off")


@app.command()
def openapi() -> None:
    """Print the app's OpenAPI schema (the web client's types are generated from it)."""
    from tokenbank.app import create_app

    schema = create_app(Settings(app_env="development")).openapi()
    sys.stdout.write(json.dumps(schema, indent=2, sort_keys=True) + "\n")


# --- payments ------------------------------------------------------------------------

payments_app = typer.Typer(no_args_is_help=True, help="Stripe payments: inspect, reconcile.")
app.add_typer(payments_app, name="payments")

_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _since(value: str) -> datetime:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` ago, or an ISO date/time (UTC if naive)."""
    text = value.strip().lower()
    if text[:-1].isdigit() and text[-1:] in _DURATION_UNITS_S:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * _DURATION_UNITS_S[text[-1]])
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise typer.BadParameter("use e.g. 7d, 12h, 30m or 2026-01-31") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _with_stripe(settings: Settings, work: Callable[[Database, StripeGateway], Awaitable[T]]) -> T:
    from tokenbank.payments.stripe_client import StripeGateway

    # Registers the subscriptions' webhook applier and reconciler with payments' flows.
    from tokenbank.subscriptions import flows as _subscriptions  # noqa: F401

    async def run(db: Database) -> T:
        gateway = StripeGateway(settings)
        try:
            return await work(db, gateway)
        finally:
            await gateway.aclose()

    return with_db(settings, run)


@payments_app.command("reconcile")
def payments_reconcile(
    since: Annotated[str, typer.Option(help="How far back: 7d, 12h, 30m or an ISO date.")] = "7d",
) -> None:
    """Sync every recent payment with Stripe and print what changed (a rerun changes nothing)."""
    from tokenbank.payments.flows import reconcile
    from tokenbank.payments.reconcile import ReconcileReport

    start = _since(since)
    settings = get_settings()

    async def work(db: Database, gateway: StripeGateway) -> ReconcileReport:
        gateway.require_configured()
        return await reconcile(db, gateway, settings, since=start)

    report = _with_stripe(settings, work)
    for line in report.lines():
        typer.echo(line)
    if report.errors:
        raise typer.Exit(1)


@payments_app.command("show")
def payments_show(
    payment_intent_id: Annotated[str, typer.Argument(help="pi_...")],
) -> None:
    """Print our record of a payment and Stripe's current state of its PaymentIntent."""
    from tokenbank.admin.flows import payment_report

    settings = get_settings()

    async def work(
        db: Database, gateway: StripeGateway
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        return await payment_report(db, gateway, payment_intent_id)

    ours, theirs = _with_stripe(settings, work)
    typer.echo(json.dumps({"ours": ours, "stripe": theirs}, indent=2, default=str))


# --- webhooks ------------------------------------------------------------------------

webhooks_app = typer.Typer(
    no_args_is_help=True,
    help="Stripe's webhook events (replay) and the endpoints we send events to "
    "(add, list, remove).",
)
app.add_typer(webhooks_app, name="webhooks")


def _endpoint_row(e: Any) -> dict[str, object]:
    return {
        "id": e.id,
        "url": e.url,
        "enabled_events": e.enabled_events,
        "description": e.description,
        "enabled": e.enabled,
        "created_at": e.created_at.isoformat(),
        "secret_prefix": e.secret_prefix,
        "previous_secret_expires_at": (
            e.previous_secret_expires_at.isoformat() if e.previous_secret_expires_at else None
        ),
    }


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Option("--url", help="Where events are POSTed (https).")],
    events: Annotated[
        str, typer.Option("--events", help="Comma-separated event types, or * for all.")
    ] = "*",
    description: Annotated[str | None, typer.Option(help="What the endpoint is for.")] = None,
) -> None:
    """Send events to URL; its signing secret (whsec_...) is printed once."""
    from tokenbank.outbound import service

    settings = get_settings()

    async def work(db: Database) -> Any:
        async with db.transaction() as session:
            return await service.create_endpoint(
                session, settings, url=url, events=events.split(","), description=description
            )

    made = with_db(settings, work)
    typer.echo(json.dumps(_endpoint_row(made.endpoint)))
    typer.echo(made.secret)
    err.print("This is the only time the signing secret is shown; store it now.")


@webhooks_app.command("list")
def webhooks_list() -> None:
    """The endpoints events are sent to (without secrets), one JSON object a line."""
    from tokenbank.outbound import service

    async def work(db: Database) -> list[Any]:
        async with db.transaction() as session:
            return list(await service.list_endpoints(session))

    for e in with_db(get_settings(), work):
        typer.echo(json.dumps(_endpoint_row(e)))


@webhooks_app.command("roll-secret")
def webhooks_roll_secret(
    endpoint_id: Annotated[int, typer.Argument(min=1, help="The endpoint's id (see list).")],
    expires_in_hours: Annotated[
        int,
        typer.Option(
            min=0, max=168, help="How long the current secret still signs beside the new one."
        ),
    ] = 24,
) -> None:
    """Give the endpoint a new signing secret (printed once); the current one keeps
    signing beside it for --expires-in-hours (default 24, at most 168; 0: stops now)."""
    from datetime import timedelta

    from tokenbank.outbound import service

    async def work(db: Database) -> Any:
        async with db.transaction() as session:
            return await service.roll_secret(
                session, endpoint_id, expires_in=timedelta(hours=expires_in_hours)
            )

    rolled = with_db(get_settings(), work)
    typer.echo(json.dumps(_endpoint_row(rolled.endpoint)))
    typer.echo(rolled.secret)
    err.print(
        "This is the only time the new signing secret is shown; store it now. The previous "
        f"one keeps signing beside it until {rolled.previous_expires_at.isoformat()}."
    )


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: Annotated[int, typer.Argument(min=1, help="The endpoint's id (see list).")],
) -> None:
    """Send nothing more to the endpoint; what still waits for it is canceled."""
    from tokenbank.outbound import service

    async def work(db: Database) -> None:
        async with db.transaction() as session:
            await service.delete_endpoint(session, endpoint_id)

    with_db(get_settings(), work)
    typer.echo(f"removed endpoint {endpoint_id}")


@webhooks_app.command("replay")
def webhooks_replay(event_id: Annotated[str, typer.Argument(help="evt_...")]) -> None:
    """Apply an event again now (fetched from Stripe if it never reached us); harmless if
    it was handled already, and the way to retry a dead letter."""
    from tokenbank.payments.flows import process_again
    from tokenbank.payments.webhooks import WebhookResult

    settings = get_settings()

    async def work(db: Database, gateway: StripeGateway) -> WebhookResult:
        gateway.require_configured()
        return await process_again(db, gateway, settings, event_id)

    result = _with_stripe(settings, work)
    typer.echo(
        f"{result.event_id}: {result.status}"
        + (f" ({result.payment_intent_id})" if result.payment_intent_id else "")
    )


# --- the Stripe catalog ------------------------------------------------------------------

stripe_app = typer.Typer(no_args_is_help=True, help="The Stripe catalog of subscription plans.")
app.add_typer(stripe_app, name="stripe")


@stripe_app.command("sync-catalog")
def stripe_sync_catalog() -> None:
    """Create each configured plan's Stripe Product and Price unless it exists (found by
    lookup key); a changed price gets a new Price that takes the key over. Idempotent."""
    from tokenbank.payments.stripe_client import StripeGateway
    from tokenbank.subscriptions.flows import CatalogEntry, sync_catalog

    settings = get_settings()

    async def work() -> list[CatalogEntry]:  # Stripe only: no database needed
        gateway = StripeGateway(settings)
        try:
            return await sync_catalog(gateway, settings)
        finally:
            await gateway.aclose()

    try:
        entries = asyncio.run(work())
    except AppError as exc:
        err.print(f"{exc.code}: {exc.detail}")
        raise typer.Exit(1) from exc
    for entry in entries:
        typer.echo(f"{entry.plan}: {entry.price_id} ({'created' if entry.created else 'exists'})")


# --- users and exports -----------------------------------------------------------------


@users_app.command("list")
def users_list(
    query: Annotated[str | None, typer.Option(help="Part of a username or email.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
) -> None:
    """Users with their balances and spend."""
    from rich.table import Table

    from tokenbank.admin import service

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return await service.list_users(session, query, limit)

    rows = with_db(get_settings(), work)
    table = Table("id", "username", "email", "admin", "balance", "reserved", "spent")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["username"],
            r["email"],
            "yes" if r["is_admin"] else "",
            str(r["balance"]),
            str(r["reserved"]),
            str(r["spent"]),
        )
    console.print(table)
    console.print(f"{len(rows)} user(s)")


export_app = typer.Typer(no_args_is_help=True, help="Export data for accounting.")
app.add_typer(export_app, name="export")


@export_app.command("transactions")
def export_transactions(
    since: Annotated[str, typer.Option(help="7d, 12h or an ISO date.")] = "30d",
    format_: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File (default stdout)")
    ] = None,
) -> None:
    """Every ledger entry since a date, oldest first, streamed in pages."""
    import csv

    from rich.progress import Progress

    from tokenbank.admin import service

    if format_ not in ("csv", "jsonl"):
        raise typer.BadParameter("--format must be csv or jsonl")
    start = _since(since)
    out = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115
    writer = csv.writer(out) if format_ == "csv" else None
    if writer:
        writer.writerow(service.EXPORT_COLUMNS)

    async def work(db: Database) -> int:
        written, after = 0, 0
        async with db.transaction() as session:
            total = await service.count_transactions_since(session, start)
        with Progress(console=err, transient=True, disable=total < 10_000) as progress:
            task = progress.add_task("exporting", total=total)
            while True:
                async with db.transaction() as session:
                    rows = await service.export_page(session, start, after)
                if not rows:
                    return written
                for record in rows:
                    record["created_at"] = record["created_at"].isoformat()
                    if writer:
                        writer.writerow([record[f] for f in service.EXPORT_COLUMNS])
                    else:
                        out.write(json.dumps(record) + "\n")
                written += len(rows)
                after = rows[-1]["id"]
                progress.update(task, advance=len(rows))

    try:
        count = with_db(get_settings(), work)
    finally:
        if output:
            out.close()
    err.print(f"exported {count} transaction(s)")


if __name__ == "__main__":  # pragma: no cover
    app()
