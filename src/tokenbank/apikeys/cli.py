"""``tokenbank api-keys ...``: create, list, rotate and revoke service API keys.

Each command runs one service function in one unit of work; a new key's secret is
printed once (on stdout, alone on its line with ``--quiet``), never stored in clear.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from tokenbank.apikeys import service
from tokenbank.apikeys.service import CreatedKey, KeyView
from tokenbank.cli_kit import err, with_db
from tokenbank.config import get_settings
from tokenbank.db import Database

T = TypeVar("T")
app = typer.Typer(no_args_is_help=True, help="Service API keys (/api/v1).")
out = Console(soft_wrap=True, highlight=False)


def _in_unit(work: Callable[..., Awaitable[T]]) -> T:
    async def in_transaction(db: Database) -> T:
        async with db.transaction() as session:
            return await work(session)

    return with_db(get_settings(), in_transaction)


def _row(k: KeyView) -> dict[str, object]:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": sorted(k.scopes),
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        "rotated_from_id": k.rotated_from_id,
    }


def _show_secret(made: CreatedKey, quiet: bool) -> None:
    if quiet:
        out.print(made.secret)
        return
    out.print(json.dumps(_row(made.key)))
    out.print(made.secret)
    err.print("This is the only time the key is shown; store it now.")


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
    scope: Annotated[
        str, typer.Option("--scope", help="Comma-separated: read, charge, grant, checkout.")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the secret only.")] = False,
) -> None:
    """Create a key; its secret is printed once."""
    made = _in_unit(lambda s: service.create_key(s, name, scope.split(",")))
    _show_secret(made, quiet)


@app.command("list")
def list_keys() -> None:
    """Every key (without secrets), newest first, one JSON object a line."""
    for key in _in_unit(service.list_keys):
        out.print(json.dumps(_row(key)))


@app.command("rotate")
def rotate(
    key_id: Annotated[int, typer.Argument(min=1, help="The key's id (see `api-keys list`).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the secret only.")] = False,
) -> None:
    """A new secret, same name and scopes; the old secret stops working at once."""
    made = _in_unit(lambda s: service.rotate_key(s, key_id))
    _show_secret(made, quiet)


@app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(min=1, help="The key's id (see `api-keys list`).")],
) -> None:
    """Refuse the key from the next request on."""
    out.print(json.dumps(_row(_in_unit(lambda s: service.revoke_key(s, key_id)))))
