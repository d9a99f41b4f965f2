"""Schema management. Alembic migrations are the only way any schema is made."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def _run_off_loop(database_url: str, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config(database_url)
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (blocking; safe to call from any thread)."""
    _run_off_loop(database_url, revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so it must not run on ours.
    await asyncio.to_thread(upgrade, database_url, revision)


def downgrade(database_url: str, revision: str) -> None:
    _run_off_loop(database_url, revision, down=True)
