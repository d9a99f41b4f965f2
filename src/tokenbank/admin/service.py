"""What operators do, from the dashboard (``/api/admin``) or the command line.

Every function takes the caller's session and never commits: the route's request unit or
the CLI command's transaction owns it. The rules an operator's action follows live here,
once, whichever door it came in by.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.admin import repository as repo
from tokenbank.auth import repository as users_repo
from tokenbank.auth import service as users
from tokenbank.auth.errors import UserNotFound
from tokenbank.auth.models import User
from tokenbank.errors import IdempotencyKeyReused
from tokenbank.ledger import keys
from tokenbank.ledger import repository as ledger_repo
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import MAX_DESCRIPTION, Balance, Entry, Lot

log = logging.getLogger(__name__)

EXPORT_COLUMNS = repo.EXPORT_COLUMNS


# --- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """An operator's entry and the balance after it."""

    entry: Entry
    balance: Balance


async def post_tokens(
    session: AsyncSession,
    *,
    admin_id: int,
    user_id: int,
    amount: int,
    reason: str,
    idempotency_key: str | None,
) -> Posted:
    """A positive amount is a ``grant``, a negative one an ``adjustment``; both record the
    reason and the admin's id. The same key again (from the same admin, for the same user)
    posts nothing more and returns the first entry; with another amount or reason it is
    :class:`IdempotencyKeyReused`."""
    await users.get_user(session, user_id)
    key = keys.admin(admin_id, idempotency_key) if idempotency_key is not None else None
    post = ledger.grant if amount > 0 else ledger.adjust
    entry = await post(
        session, user_id, amount, reason, actor_user_id=admin_id, idempotency_key=key
    )
    if entry.replayed and entry.description != reason[:MAX_DESCRIPTION]:
        raise IdempotencyKeyReused()
    if not entry.replayed:
        log.info(
            "admin %s: %+d tokens for user %d (entry %d)",
            entry.transaction_type,
            entry.amount,
            user_id,
            entry.id,
        )
    return Posted(entry, await ledger.balance(session, user_id))


async def grant(session: AsyncSession, user_id: int, amount: int, reason: str) -> Entry:
    """Give tokens from the command line (recorded as a grant, no actor)."""
    return await ledger.grant(session, user_id, amount, reason)


async def adjust(session: AsyncSession, user_id: int, amount: int, reason: str) -> Entry:
    """Correct a balance from the command line (an adjustment with the reason)."""
    return await ledger.adjust(session, user_id, amount, reason)


async def balance(session: AsyncSession, user_id: int) -> Balance:
    return await ledger.balance(session, user_id)


# --- users -----------------------------------------------------------------------------


async def resolve_user(session: AsyncSession, login: str) -> int:
    """A user id from an id, a username or an email (UserNotFound if none matches)."""
    if login.isdigit():
        user = await users_repo.get(session, int(login))
    else:
        user = await users_repo.find_by_login(session, login)
    if user is None:
        raise UserNotFound(f"no user {login!r}")
    return user.id


async def list_users(session: AsyncSession, query: str | None, limit: int) -> list[dict[str, Any]]:
    """Users (matching ``query`` in the name, email or id) with balances and spend."""
    return await repo.search_users(session, query, limit)


@dataclass(frozen=True)
class UserDetail:
    user: dict[str, Any]
    balance: Balance
    history: ledger.Page
    payments: list[dict[str, Any]]


async def user_detail(
    session: AsyncSession, user_id: int, *, limit: int, before: int | None
) -> UserDetail:
    row = await repo.get_user(session, user_id)
    if row is None:
        raise UserNotFound()
    return UserDetail(
        user=row,
        balance=await ledger.balance(session, user_id),
        history=await ledger.history(session, user_id, limit=limit, before=before),
        payments=await repo.list_payments(
            session, user_id=user_id, status=None, limit=100, before=None
        ),
    )


async def user_lots(session: AsyncSession, user_id: int, *, active: bool) -> list[Lot]:
    if await repo.get_user(session, user_id) is None:
        raise UserNotFound()
    return await ledger.list_lots(session, user_id, active=active)


async def create_admin(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    signup_bonus_tokens: int,
    now: datetime,
) -> User:
    """A NEW administrator; an existing username or email is refused (anyone may have
    registered it). The operator vouches for the address, so it is verified at once and
    the sign-up bonus is granted now."""
    return await users.register(
        session,
        username=username,
        email=email,
        password=password,
        is_admin=True,
        signup_bonus_tokens=signup_bonus_tokens,
        email_verified_at=now,
    )


async def get_user(session: AsyncSession, user_id: int) -> User:
    return await users.get_user(session, user_id)


async def promote(session: AsyncSession, user_id: int) -> bool:
    """Make an existing account an administrator; False if it already was one."""
    user = await users.get_user(session, user_id)
    if user.is_admin:
        return False
    user.is_admin = True
    return True


# --- payments, webhooks, numbers ---------------------------------------------------------


async def list_payments(
    session: AsyncSession, *, status: str | None, limit: int, before: int | None
) -> list[dict[str, Any]]:
    return await repo.list_payments(
        session, user_id=None, status=status, limit=limit, before=before
    )


async def list_webhook_events(
    session: AsyncSession, *, status: str | None, limit: int
) -> list[dict[str, Any]]:
    return await repo.list_webhook_events(session, status=status, limit=limit)


@dataclass(frozen=True)
class Stats:
    daily: list[dict[str, Any]]
    top_spenders: list[dict[str, Any]]


async def stats(session: AsyncSession, since: datetime, top: int = 10) -> Stats:
    """Per-day totals and the biggest spenders since ``since``."""
    return Stats(
        daily=await repo.daily_totals(session, since),
        top_spenders=await repo.top_spenders(session, since, top),
    )


@dataclass(frozen=True)
class RefundsOverview:
    by_reason: list[dict[str, Any]]
    by_model: list[dict[str, Any]]


async def refunds_overview(session: AsyncSession, since: datetime) -> RefundsOverview:
    """Refunded AI replies since ``since``, by the reason given and by the reply's model."""
    return RefundsOverview(
        by_reason=await repo.refunds_grouped(session, since, "reason"),
        by_model=await repo.refunds_grouped(session, since, "model"),
    )


# --- the ledger as a whole ---------------------------------------------------------------


async def check_ledger(session: AsyncSession) -> tuple[int, list[ledger.Violation]]:
    """How many accounts were checked, and every broken guarantee (see ``ledger.check``)."""
    return await ledger_repo.count_accounts(session), await ledger.check(session)


async def count_transactions_since(session: AsyncSession, since: datetime) -> int:
    return await repo.count_transactions_since(session, since)


async def export_page(
    session: AsyncSession, since: datetime, after_id: int, limit: int = 5000
) -> list[dict[str, Any]]:
    """The next page of ledger entries for an export (columns :data:`EXPORT_COLUMNS`),
    oldest first; page on with the last row's id."""
    return await repo.transactions_page(session, since, after_id, limit)
