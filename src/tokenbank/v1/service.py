"""The service API's logic: customers by the host's ids, on the same ledger.

Every function takes a session or a unit (:data:`tokenbank.db.Unit`) and never commits
(the request, or for holds ``v1.flows`` through ``Database.run``, owns the unit of work);
the ledger's guarantees hold unchanged, because everything here is a ledger call:

- a customer is created once per external id, however many ``PUT`` s race (a unique
  username derived from the id, inserted with ``ON CONFLICT DO NOTHING``);
- every write carries the caller's idempotency key into the ledger's unique constraint,
  namespaced per kind (:data:`HOLD_KEY`, :data:`CHARGE_KEY`, :data:`GRANT_KEY`), so a
  replay returns the first result and a key reused for a different request is 409;
- commit and release are idempotent by the hold's id (a hold resolves once);
- a hold is reachable only through a host's customer: a hold of tokenbank's own chat,
  or an unknown id, is 404 ``hold_not_found``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import Balance, Entry, Reservation
from tokenbank.subscriptions import service as subscriptions
from tokenbank.subscriptions.service import SubscriptionView
from tokenbank.types import utcnow
from tokenbank.v1 import repository as repo
from tokenbank.v1.errors import CustomerConflict, CustomerNotFound, HoldNotFound

#: Ledger idempotency keys of the service API's writes, by kind: a host's key never meets
#: one of tokenbank's own (``purchase:``, ``reservation:`` ...) or another kind's.
HOLD_KEY = "v1:hold:{}"
CHARGE_KEY = "v1:charge:{}"
GRANT_KEY = "v1:grant:{}"
#: The payments row's idempotency key of a purchase (also Stripe's, hashed).
PURCHASE_KEY = "v1:purchase:{}"

#: Host customers' usernames start with this; sign-ups cannot (letters, digits, ``._-``).
USERNAME_MARK = "~"
#: Their placeholder email: a special-use domain no sign-up can register.
EMAIL_DOMAIN = "customers.invalid"


@dataclass(frozen=True)
class CustomerView:
    external_id: str
    user_id: int
    email: str | None
    name: str | None
    created_at: datetime
    updated_at: datetime
    created: bool = False


@dataclass(frozen=True)
class HoldView:
    id: int
    external_id: str
    amount: int
    status: str
    description: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True)
class Committed:
    hold: HoldView
    entry: Entry
    released: int
    available: int


@dataclass(frozen=True)
class Posted:
    entry: Entry
    balance: Balance


def _customer(row: object, *, created: bool = False) -> CustomerView:
    return CustomerView(
        external_id=row.external_id,  # type: ignore[attr-defined]
        user_id=int(row.user_id),  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        updated_at=row.updated_at,  # type: ignore[attr-defined]
        created=created,
    )


def username_for(external_id: str) -> str:
    """The customer's username: fixed by the external id, never a sign-up's."""
    return USERNAME_MARK + hashlib.sha256(external_id.encode()).hexdigest()[:31]


async def put_customer(
    session: AsyncSession,
    external_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
) -> CustomerView:
    """Create the customer (and its empty token account) on first use; later calls update
    the email and name they send and leave the rest."""
    now = utcnow()
    found = await repo.find_customer(session, external_id)
    if found is None:
        username = username_for(external_id)
        user_id = await repo.insert_user_once(
            session,
            {
                "username": username,
                "email": f"{username[1:]}@{EMAIL_DOMAIN}",
                "password_hash": "",  # never verifies: a customer does not sign in here
                "is_admin": False,
                "created_at": now,
                "locale": "en",
            },
        )
        if user_id is None:  # a concurrent PUT made it (committed before our insert)
            user_id = await repo.user_id_by_username(session, username)
            if user_id is None:  # pragma: no cover - the email is a special-use domain
                raise CustomerConflict()
        created = await repo.insert_customer_once(
            session,
            {
                "user_id": user_id,
                "external_id": external_id,
                "email": email,
                "name": name,
                "created_at": now,
                "updated_at": now,
            },
        )
        await ledger.open_account(session, user_id)
        found = await repo.find_customer(session, external_id)
        if found is None:  # pragma: no cover - inserted or found above
            raise CustomerConflict()
        if created:
            return _customer(found, created=True)
    changes = {
        k: v
        for k, v in (("email", email), ("name", name))
        if v is not None and v != getattr(found, k)
    }
    if changes:
        await repo.update_customer(session, int(found.user_id), changes, now)
        found = await repo.find_customer(session, external_id)
    return _customer(found)


async def get_customer(session: AsyncSession, external_id: str) -> CustomerView:
    found = await repo.find_customer(session, external_id)
    if found is None:
        raise CustomerNotFound()
    return _customer(found)


async def balance(session: AsyncSession, external_id: str) -> Balance:
    customer = await get_customer(session, external_id)
    return await ledger.balance(session, customer.user_id)


async def subscription(session: AsyncSession, external_id: str) -> SubscriptionView | None:
    """The customer's subscription that has not ended, else their latest one (or None)."""
    customer = await get_customer(session, external_id)
    return await subscriptions.current(session, customer.user_id)


async def transactions(
    session: AsyncSession, external_id: str, *, limit: int, before: int | None
) -> ledger.Page:
    customer = await get_customer(session, external_id)
    return await ledger.history(session, customer.user_id, limit=limit, before=before)


def _hold(r: Reservation, external_id: str, description: str) -> HoldView:
    return HoldView(
        id=r.id,
        external_id=external_id,
        amount=r.amount,
        status=r.status,
        description=description,
        expires_at=r.expires_at,
        created_at=r.created_at,
        resolved_at=r.resolved_at,
        replayed=r.replayed,
    )


async def user_id_of(unit: Unit, external_id: str) -> int:
    """The customer's user id (404 ``customer_not_found``), in any kind of unit."""
    row = await repo.CUSTOMER_USER.first(unit, external_id=external_id)
    if row is None:
        raise CustomerNotFound()
    return int(row["user_id"])


async def hold(
    session: Unit,
    external_id: str,
    amount: int,
    *,
    idempotency_key: str,
    ttl_s: int,
    description: str = "",
) -> HoldView:
    """Hold ``amount`` tokens (402 when not available); the same key returns the first
    hold, in its current status.

    The customer's look-up locks its account for the hold (one statement for both), as
    the ledger's reserve would first (``account_locked``)."""
    key = HOLD_KEY.format(idempotency_key)
    customer = await repo.CUSTOMER_FOR_HOLD.first(session, external_id=external_id, hold_key=key)
    if customer is None:
        raise CustomerNotFound()
    held = await ledger.reserve(
        session,
        int(customer["user_id"]),
        amount,
        idempotency_key=key,
        ttl_s=ttl_s,
        description=description,
        account_locked=bool(customer["account_locked"]),
    )
    if held.replayed:  # the first hold as it is now, with its own description
        return _replayed(await get_hold(session, held.id))
    return _hold(held, external_id, description)


def _replayed(view: HoldView) -> HoldView:
    return replace(view, replayed=True)


async def get_hold(session: Unit, hold_id: int) -> HoldView:
    row = await repo.HOLD_OWNER.first(session, hold_id=hold_id)
    if row is None:
        raise HoldNotFound()
    return _hold_view(row)


def hold_beside(row: Mapping[str, Any], hold_id: int) -> HoldView | None:
    """Hold ``hold_id`` from a row of :data:`repo.KEY_WITH_HOLD` (None when the row holds
    another id, or none: the caller reads it in its unit instead)."""
    p = repo.HOLD_PREFIX
    if row[p + "id"] != hold_id:
        return None
    return _hold_view(row, p)


def _hold_view(row: Mapping[str, Any], p: str = "") -> HoldView:
    return HoldView(
        id=int(row[p + "id"]),
        external_id=row[p + "external_id"],
        amount=int(row[p + "amount"]),
        status=row[p + "status"],
        description=row[p + "description"],
        expires_at=row[p + "expires_at"],
        created_at=row[p + "created_at"],
        resolved_at=row[p + "resolved_at"],
    )


async def commit_hold(
    session: Unit,
    hold_id: int,
    *,
    amount: int | None,
    description: str | None,
    found: HoldView | None = None,
) -> Committed:
    """Charge the hold, or ``amount`` of it (the rest is available again at once).

    Committing again returns the first deduction; again with a different ``amount`` is
    409 ``idempotency_key_reused``. ``found``: the hold as the caller read it already
    (:func:`hold_beside`; its owner, amount and description never change), else it is
    read here.
    """
    if found is None:
        found = await get_hold(session, hold_id)
    text = description if description is not None else found.description
    settled = await ledger.settle_once(session, hold_id, text, tokens=amount)
    charged = -settled.entry.amount
    # The commit resolved the hold at the deduction's own time: no second read.
    after = replace(found, status="committed", resolved_at=settled.entry.created_at)
    return Committed(after, settled.entry, found.amount - charged, settled.available)


async def release(session: Unit, hold_id: int) -> tuple[HoldView, bool]:
    """Give the hold back; again (or once expired) is a no-op, after a commit 409."""
    await get_hold(session, hold_id)
    released = await ledger.release(session, hold_id)
    return await get_hold(session, hold_id), released


async def charge(
    session: AsyncSession,
    external_id: str,
    amount: int,
    *,
    idempotency_key: str,
    description: str,
) -> Posted:
    """A one-shot deduction: 402 when not available, once per key."""
    return await _post(
        session, external_id, ledger.spend, amount, description, CHARGE_KEY.format(idempotency_key)
    )


async def grant(
    session: AsyncSession,
    external_id: str,
    amount: int,
    *,
    idempotency_key: str,
    reason: str,
) -> Posted:
    """Free tokens (a ``grant`` entry with the reason), once per key."""
    return await _post(
        session, external_id, ledger.grant, amount, reason, GRANT_KEY.format(idempotency_key)
    )


class _LedgerPost(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        user_id: int,
        tokens: int,
        description: str,
        *,
        idempotency_key: str,
    ) -> Entry: ...


async def _post(
    session: AsyncSession,
    external_id: str,
    post: _LedgerPost,
    amount: int,
    description: str,
    idempotency_key: str,
) -> Posted:
    """``post`` (the ledger's spend or grant) on the customer's account, and the balance
    after it."""
    customer = await get_customer(session, external_id)
    entry = await post(
        session, customer.user_id, amount, description, idempotency_key=idempotency_key
    )
    return Posted(entry, await ledger.balance(session, customer.user_id))
