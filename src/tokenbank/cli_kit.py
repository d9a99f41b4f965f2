"""What every ``tokenbank`` command that reaches the database shares (the main CLI and
each domain's own commands, such as ``tokenbank api-keys``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.errors import AppError
from tokenbank.ledger import lots as ledger_lots

T = TypeVar("T")

err = Console(stderr=True)


def with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on a small pool of its own; an :class:`AppError` is printed as
    ``code: message`` and ends the command with exit status 2."""
    # Credits made here (an operator's grant) make lots by the same policy as the app's.
    ledger_lots.configure(settings.lot_priorities, settings.grant_expires_days)

    async def _run() -> T:
        db = Database(settings.database_url, pool_size=2, pgbouncer=settings.database_pgbouncer)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(_run())
    except AppError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.detail}")
        raise typer.Exit(2) from exc
