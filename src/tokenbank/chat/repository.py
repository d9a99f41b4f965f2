"""All SQL of the chat domain. Core statements: a generated reply is on the hot path."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias, cast

from sqlalchemy import Row, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.chat.models import Chat, Message
from tokenbank.ledger.repository import insert_ignoring_conflicts

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

chats = cast(Table, Chat.__table__)
messages = cast(Table, Message.__table__)

PREVIEW_CHARS = 120

CHAT_COLUMNS = (chats.c.id, chats.c.title, chats.c.created_at, chats.c.updated_at)
MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.role,
    messages.c.content,
    messages.c.tokens_charged,
    messages.c.model,
    messages.c.reply_to_id,
    messages.c.idempotency_key,
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


async def chat_messages(
    session: AsyncSession,
    user_id: int,
    chat_id: int,
    *,
    newest_first: bool,
    limit: int | None = None,
) -> list[AnyRow] | None:
    """The chat's messages if ``user_id`` owns it, else None — in one round trip.

    The LEFT JOIN from ``chats`` tells "no such chat (for this user)" (no row) from "a
    chat with no messages yet" (one row of NULL message columns).
    """
    order = messages.c.id.desc() if newest_first else messages.c.id.asc()
    stmt = (
        select(*MESSAGE_COLUMNS)
        .select_from(chats.outerjoin(messages, messages.c.chat_id == chats.c.id))
        .where(chats.c.id == chat_id, chats.c.user_id == user_id)
        .order_by(order)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return None
    return [row for row in rows if row.id is not None]


async def find_generation(session: AsyncSession, chat_id: int, key: str) -> list[AnyRow]:
    """The messages stored under a generation key: none, or the question and its reply.

    Both carry the key (unique per chat and role) and are written in one transaction.
    """
    stmt = (
        select(*MESSAGE_COLUMNS)
        .where(messages.c.chat_id == chat_id, messages.c.idempotency_key == key)
        .order_by(messages.c.id)
    )
    return list((await session.execute(stmt)).all())


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> AnyRow | None:
    """Insert a message; None when its generation key is already stored in this chat."""
    stmt = insert_ignoring_conflicts(session, messages).values(**values).returning(*MESSAGE_COLUMNS)
    return (await session.execute(stmt)).first()


async def touch_chat(session: AsyncSession, chat_id: int, now: datetime) -> None:
    await session.execute(update(chats).where(chats.c.id == chat_id).values(updated_at=now))
