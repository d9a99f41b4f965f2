"""All SQL of the chat domain, in Core.

A generated reply is on the hot path: its statements are :class:`~tokenbank.db.Query`
objects, built once at import with named parameters, so they run in a session or, on
PostgreSQL, straight on the driver (:meth:`~tokenbank.db.Database.run`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeAlias, cast

from sqlalchemy import Boolean, Row, Select, Table, and_, bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.chat.models import Chat, Message, ReplyRefund
from tokenbank.chat.providers.base import ChatTurn
from tokenbank.db import PgStatement, Query, Unit
from tokenbank.ledger import repository as ledger_repo

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

chats = cast(Table, Chat.__table__)
messages = cast(Table, Message.__table__)
refunds = cast(Table, ReplyRefund.__table__)

PREVIEW_CHARS = 120

CHAT_COLUMNS = (
    chats.c.id,
    chats.c.title,
    chats.c.created_at,
    chats.c.updated_at,
    chats.c.model,
    chats.c.cost_cap,
)
MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.role,
    messages.c.content,
    messages.c.tokens_charged,
    messages.c.model,
    messages.c.reply_to_id,
    messages.c.idempotency_key,
    messages.c.interrupted,
    messages.c.finish_reason,
    messages.c.price_version,
    messages.c.created_at,
)


async def insert_chat(session: AsyncSession, user_id: int, title: str, now: datetime) -> AnyRow:
    stmt = (
        chats.insert()
        .values(user_id=user_id, title=title, created_at=now, updated_at=now)
        .returning(*CHAT_COLUMNS)
    )
    return (await session.execute(stmt)).one()


async def list_chats(session: AsyncSession, user_id: int, limit: int) -> list[AnyRow]:
    """The user's chats, most recently active first, each with its latest message's start."""
    preview = (
        select(func.substr(messages.c.content, 1, PREVIEW_CHARS))
        .where(messages.c.chat_id == chats.c.id)
        .order_by(messages.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(*CHAT_COLUMNS, preview.label("last_message_preview"))
        .where(chats.c.user_id == user_id)
        .order_by(chats.c.updated_at.desc(), chats.c.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())


def _owned_chat_messages() -> Select[Any]:
    """A chat's messages if the caller owns it, in one round trip.

    The LEFT JOIN from ``chats`` tells "no such chat (for this user)" (no row) from "a
    chat with no messages yet" (one row of NULL message columns).
    """
    refunded = exists().where(refunds.c.message_id == messages.c.id)
    return (
        select(*MESSAGE_COLUMNS, refunded.label("refunded"))
        .select_from(chats.outerjoin(messages, messages.c.chat_id == chats.c.id))
        .where(chats.c.id == bindparam("chat_id"), chats.c.user_id == bindparam("user_id"))
    )


#: Every message, oldest first (the chat's page).
_ALL = Query.of(_owned_chat_messages().order_by(messages.c.id.asc()))


def _history() -> Select[Any]:
    """A reply's history: what the prompt can use of the newest ``limit`` messages.

    The newest ``limit`` messages come from the ``(chat_id, id)`` index, newest first;
    a running sum of their lengths keeps the newest ones that fit in ``budget``
    characters together (the cut ``prompt.build_prompt`` makes), so no row is sent that
    the prompt would drop. Only role and content travel, oldest first. The LEFT JOIN from
    ``chats`` tells "no such chat (for this user)" (no row) from "nothing to send" (one
    row of NULLs), as in :func:`_owned_chat_messages`.
    """
    recent = (
        select(messages.c.id, messages.c.role, messages.c.content)
        .where(messages.c.chat_id == bindparam("chat_id"))
        .order_by(messages.c.id.desc())
        .limit(bindparam("limit"))
        .subquery("recent")
    )
    used = func.sum(func.length(recent.c.content)).over(order_by=recent.c.id.desc())
    fitting = select(recent, used.label("used")).subquery("fitting")
    # The chat's model and cap ride along on every row (the reply's price needs them), and
    # whether the account is locked for the hold that follows (the ledger's account_lock:
    # the hold's unit then needs no statement of its own for it).
    return (
        select(
            fitting.c.role,
            fitting.c.content,
            chats.c.model.label("chat_model"),
            chats.c.cost_cap.label("chat_cost_cap"),
            ledger_repo.account_lock(
                bindparam("user_id"),
                bindparam("hold_key"),
                bindparam("lock_account", type_=Boolean()),
            ).label("account_locked"),
        )
        .select_from(chats.outerjoin(fitting, fitting.c.used <= bindparam("budget")))
        .where(chats.c.id == bindparam("chat_id"), chats.c.user_id == bindparam("user_id"))
        .order_by(fitting.c.id.asc())
    )


_HISTORY = Query.of(_history())


#: Both messages of a generation key (unique per chat and role, written in one transaction).
_GENERATION = Query.of(
    select(*MESSAGE_COLUMNS)
    .where(
        messages.c.chat_id == bindparam("chat_id"), messages.c.idempotency_key == bindparam("key")
    )
    .order_by(messages.c.id)
)

_MESSAGE_VALUES: dict[str, Any] = {
    name: bindparam(name)
    for name in (
        "chat_id",
        "role",
        "content",
        "tokens_charged",
        "model",
        "reply_to_id",
        "idempotency_key",
        "interrupted",
        "finish_reason",
        "price_version",
        "created_at",
    )
}
_INSERT_MESSAGE = Query.of(
    postgresql.insert(messages)
    .values(_MESSAGE_VALUES)
    .on_conflict_do_nothing()
    .returning(*MESSAGE_COLUMNS),
    sqlite=sqlite.insert(messages)
    .values(_MESSAGE_VALUES)
    .on_conflict_do_nothing()
    .returning(*MESSAGE_COLUMNS),
)

_TOUCH_CHAT = Query.of(
    update(chats)
    .where(chats.c.id == bindparam("chat_id"))
    .values(updated_at=bindparam("now"))
    .returning(chats.c.id)
)


async def chat_messages(unit: Unit, user_id: int, chat_id: int) -> list[Mapping[str, Any]] | None:
    """Every message, oldest first, if ``user_id`` owns the chat, else None."""
    return _owned(await _ALL.all(unit, chat_id=chat_id, user_id=user_id))


@dataclass(frozen=True)
class History:
    turns: list[ChatTurn]
    #: The chat's chosen model and cost cap (None: the defaults).
    model: str | None
    cost_cap: int | None
    #: The read locked the caller's token account for the hold (see :func:`history`).
    account_locked: bool = False


async def history(
    unit: Unit,
    user_id: int,
    chat_id: int,
    limit: int,
    budget_chars: int,
    *,
    hold_key: str = "",
    lock_account: bool = False,
) -> History | None:
    """The turns of the newest ``limit`` messages that fit in ``budget_chars`` (newest
    kept first, see :func:`_history`), oldest first, with the chat's model and cap; None
    unless ``user_id`` owns the chat.

    With ``lock_account`` the same statement locks the caller's token account for the hold
    the unit takes next (unless a hold with ``hold_key`` exists: a replay takes no lock),
    as the ledger's own lock statement would (:func:`tokenbank.ledger.repository.account_lock`);
    ``History.account_locked`` says whether it did.
    """
    rows = await _HISTORY.all(
        unit,
        chat_id=chat_id,
        user_id=user_id,
        limit=limit,
        budget=budget_chars,
        hold_key=hold_key,
        lock_account=lock_account,
    )
    if not rows:
        return None
    first = rows[0]
    return History(
        [_turn((row["role"], row["content"])) for row in rows if row["role"] is not None],
        first["chat_model"],
        first["chat_cost_cap"],
        bool(first["account_locked"]),
    )


#: ``ChatTurn(role, content)`` in one C call (a named tuple's own ``__new__`` is a Python
#: function, and a reply's history makes up to a hundred turns per request).
_turn = cast(Callable[[tuple[Any, Any]], ChatTurn], partial(tuple.__new__, ChatTurn))


def _owned(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]


async def find_generation(unit: Unit, chat_id: int, key: str) -> list[Mapping[str, Any]]:
    """The messages stored under a generation key: none, or the question and its reply."""
    return await _GENERATION.all(unit, chat_id=chat_id, key=key)


async def insert_message(unit: Unit, values: dict[str, Any]) -> Mapping[str, Any] | None:
    """Insert a message; None when its generation key is already stored in this chat.

    ``values`` names every column of :data:`_MESSAGE_VALUES` (a reply's end and price
    version default to None).
    """
    return await _INSERT_MESSAGE.first(
        unit, **{"finish_reason": None, "price_version": None, **values}
    )


async def touch_chat(unit: Unit, chat_id: int, now: datetime) -> None:
    await _TOUCH_CHAT.first(unit, chat_id=chat_id, now=now)


_MESSAGE_COLUMN_NAMES = tuple(c.name for c in MESSAGE_COLUMNS)


def _prefixed(alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{name} AS {prefix}{name}" for name in _MESSAGE_COLUMN_NAMES)


_RETURNING = ", ".join(_MESSAGE_COLUMN_NAMES)

#: A charged reply's whole save on PostgreSQL, one statement: the question, the ledger's
#: commit of the hold riding on it (:func:`ledger.repository.commit_steps`, ``$1``..``$4``;
#: it resolves only if the question was new), the answer (only if the commit posted its
#: deduction) and the chat's touch (only if the answer was saved). Each step after the
#: first is gated on the one before, so a refused commit saves no message, and the unit's
#: rollback on the ledger's error undoes the question. Three statements and round trips
#: fewer than :func:`insert_message` twice, the commit and :func:`touch_chat`.
_PG_SAVE_CHARGED_REPLY = PgStatement(
    sql=f"""
WITH asked AS (
    INSERT INTO messages
        (chat_id, role, content, tokens_charged, model, reply_to_id, idempotency_key,
         interrupted, finish_reason, price_version, created_at)
    VALUES ($5, 'user', $6, 0, NULL, NULL, $7, false, NULL, NULL, $8)
    ON CONFLICT DO NOTHING
    RETURNING chat_id, {_RETURNING}
), {ledger_repo.commit_steps("EXISTS (SELECT FROM asked)")}, answer AS (
    INSERT INTO messages
        (chat_id, role, content, tokens_charged, model, reply_to_id, idempotency_key,
         interrupted, finish_reason, price_version, created_at)
    SELECT q.chat_id, 'assistant', $9::text, $10::integer, $11::varchar, q.id,
           q.idempotency_key, $12::boolean, $13::varchar, $14::integer, $2
    FROM asked AS q WHERE EXISTS (SELECT FROM posted)
    RETURNING chat_id, {_RETURNING}
), touched AS (
    UPDATE chats SET updated_at = $2 WHERE id = (SELECT chat_id FROM answer)
)
SELECT {ledger_repo.COMMIT_RESULT}, posted.*,
       {_prefixed("q", "asked_")},
       {_prefixed("b", "answer_")}
FROM (VALUES (1)) AS one LEFT JOIN posted ON true
LEFT JOIN asked AS q ON true LEFT JOIN answer AS b ON true
""",
    params=(
        *ledger_repo.PG_COMMIT_PARAMS,
        "chat_id",
        "content",
        "idempotency_key",
        "asked_at",
        "reply",
        "tokens_charged",
        "model",
        "interrupted",
        "finish_reason",
        "price_version",
    ),
)


is_postgresql = ledger_repo.is_postgresql


@dataclass(frozen=True)
class SavedReply:
    """:func:`save_charged_reply_pg`'s row: the commit's columns (for the ledger) and
    both messages, or ``asked`` None when the question's key was stored already (then
    nothing was saved or committed)."""

    row: Mapping[str, Any]
    asked: Mapping[str, Any] | None
    answer: Mapping[str, Any] | None


async def save_charged_reply_pg(
    unit: Unit, commit_args: tuple[Any, ...], **values: Any
) -> SavedReply:
    """Run :data:`_PG_SAVE_CHARGED_REPLY`: ``commit_args`` are the ledger's ``$1``..``$4``
    (its ``now`` also dates the answer and the chat's touch), ``values`` the messages'."""
    params = _PG_SAVE_CHARGED_REPLY.params[len(commit_args) :]
    row = await _PG_SAVE_CHARGED_REPLY.first(unit, *commit_args, *(values[name] for name in params))
    assert row is not None  # the statement always returns its one row
    return SavedReply(row, _message_of(row, "asked_"), _message_of(row, "answer_"))


def _message_of(row: Mapping[str, Any], prefix: str) -> Mapping[str, Any] | None:
    if row[f"{prefix}id"] is None:
        return None
    return {name: row[f"{prefix}{name}"] for name in _MESSAGE_COLUMN_NAMES}


async def update_chat(
    session: AsyncSession, user_id: int, chat_id: int, values: dict[str, Any]
) -> AnyRow | None:
    """Change the caller's chat (title, model, cost cap); None if it is not theirs."""
    stmt = (
        update(chats)
        .where(chats.c.id == chat_id, chats.c.user_id == user_id)
        .values(**values)
        .returning(*CHAT_COLUMNS)
    )
    return (await session.execute(stmt)).first()


async def get_chat(session: AsyncSession, user_id: int, chat_id: int) -> AnyRow | None:
    stmt = select(*CHAT_COLUMNS).where(chats.c.id == chat_id, chats.c.user_id == user_id)
    return (await session.execute(stmt)).first()


async def average_cost_by_model(
    session: AsyncSession, user_id: int, since: datetime
) -> dict[str, float]:
    """The caller's average charge per reply since ``since``, per model (charged replies)."""
    stmt = (
        select(messages.c.model, func.avg(messages.c.tokens_charged))
        .select_from(chats.join(messages, messages.c.chat_id == chats.c.id))
        .where(
            and_(
                chats.c.user_id == user_id,
                messages.c.role == "assistant",
                messages.c.created_at >= since,
                messages.c.model.is_not(None),
            )
        )
        .group_by(messages.c.model)
    )
    return {str(model): float(avg) for model, avg in (await session.execute(stmt)).all()}


# --- refunds of replies (see :mod:`tokenbank.chat.refunds`) ---------------------------


async def owned_message(
    session: AsyncSession, user_id: int, chat_id: int, message_id: int
) -> Mapping[str, Any] | None:
    """The message if it is in ``chat_id`` and the chat is ``user_id``'s, else None."""
    stmt = (
        select(*MESSAGE_COLUMNS)
        .join(chats, chats.c.id == messages.c.chat_id)
        .where(
            messages.c.id == message_id,
            messages.c.chat_id == chat_id,
            chats.c.user_id == user_id,
        )
    )
    return cast(Mapping[str, Any] | None, (await session.execute(stmt)).mappings().first())


async def is_refunded(session: AsyncSession, message_id: int) -> bool:
    stmt = select(refunds.c.id).where(refunds.c.message_id == message_id)
    return (await session.execute(stmt)).first() is not None


async def count_refunds_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    stmt = select(func.count()).where(refunds.c.user_id == user_id, refunds.c.created_at >= since)
    return int((await session.execute(stmt)).scalar_one())


async def insert_refund(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Record a refund; False when the message has one already (the unique message id)."""
    if session.get_bind().dialect.name == "postgresql":
        stmt: Any = postgresql.insert(refunds).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(refunds).values(**values).on_conflict_do_nothing()
    return (await session.execute(stmt.returning(refunds.c.id))).first() is not None
