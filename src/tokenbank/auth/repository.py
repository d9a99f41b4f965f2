from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def find_by_login(session: AsyncSession, login: str) -> User | None:
    stmt = select(User).where(or_(User.username == login, User.email == login.strip().lower()))
    return (await session.execute(stmt)).scalars().first()


async def username_exists(session: AsyncSession, username: str) -> bool:
    stmt = select(User.id).where(func.lower(User.username) == username.lower())
    return (await session.execute(stmt)).first() is not None


async def email_exists(session: AsyncSession, email: str) -> bool:
    return (await session.execute(select(User.id).where(User.email == email))).first() is not None


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email == email.strip().lower())
    return (await session.execute(stmt)).scalars().first()
