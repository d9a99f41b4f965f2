"""Column types shared by every domain, and the one way a record is read off a row."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
#: The languages we write to people in (emails, the client); the first is the default.
LOCALES = ("en", "zh")

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def record_of(cls: type[R], source: object, **given: Any) -> R:
    """The dataclass ``cls`` with each field read from ``source``'s attribute of the same
    name (a row, another record), but for the fields ``given``."""
    read = {f.name: getattr(source, f.name) for f in fields(cls) if f.name not in given}
    return cls(**read, **given)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def check_in(column: str, enum: type[StrEnum], *, nullable: bool = False) -> CheckConstraint:
    """``CHECK (column IN (...))`` over an enum's values, named ``ck_<table>_<column>_known``:
    the database refuses a word the code does not know."""
    condition = f"{column} IN ({', '.join(repr(str(v)) for v in enum)})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=f"{column}_known")
