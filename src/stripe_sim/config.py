"""Settings of one simulator instance and of its webhook fault injection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_PORT = 12111
ASYNC_DELAY_ENV = "STRIPE_SIM_ASYNC_DELAY_S"


def async_delay_from_env() -> float:
    """``STRIPE_SIM_ASYNC_DELAY_S`` (seconds, default 2): how long Stripe's "some
    time later" transitions take here (a pending refund settling, a refund failing,
    an inquiry closing)."""
    raw = os.environ.get(ASYNC_DELAY_ENV, "").strip()
    if not raw:
        return 2.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ASYNC_DELAY_ENV} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{ASYNC_DELAY_ENV} must be >= 0")
    return value


@dataclass
class SimConfig:
    """How the simulator accepts keys and delivers webhooks.

    ``api_key`` / ``publishable_key``: when set, only that exact key is accepted;
    otherwise any ``sk_test_...`` / ``pk_test_...`` key is.
    ``webhook_secret``: when unset, one ``whsec_...`` secret is generated per app
    (read it from ``GET /_sim/config``), as ``stripe listen`` does.
    ``allowed_origins``: extra CORS origins (``"*"`` for any); localhost origins
    are always allowed.
    ``async_delay_s``: the delay of Stripe's later transitions (pending refund →
    succeeded, succeeded refund → failed, inquiry → closed, ...); defaults to
    ``STRIPE_SIM_ASYNC_DELAY_S`` or 2 seconds.
    ``invoice_retry_days``: the account's custom retry schedule for failed subscription
    payments (Dashboard → Billing → Revenue recovery): retry a renewal this many days
    after each failed attempt; empty (the default) = no automatic retries.
    ``after_retries``: what happens to the subscription when its last retry fails:
    ``past_due`` (leave it), ``unpaid`` (mark it unpaid; later invoices are not
    attempted) or ``cancel``.
    """

    webhook_url: str | None = None
    webhook_secret: str | None = None
    api_key: str | None = None
    publishable_key: str | None = None
    allowed_origins: list[str] = field(default_factory=list)
    webhook_max_attempts: int = 8
    webhook_backoff_base_s: float = 1.0
    webhook_backoff_max_s: float = 3600.0
    webhook_timeout_s: float = 10.0
    async_delay_s: float = field(default_factory=async_delay_from_env)
    idempotency_ttl_s: float = 24 * 3600.0  # Stripe keeps keys for 24 hours
    invoice_retry_days: list[int] = field(default_factory=list)
    after_retries: str = "past_due"

    def __post_init__(self) -> None:
        if any(not isinstance(d, int) or d < 1 for d in self.invoice_retry_days):
            raise ValueError("invoice_retry_days must be whole days >= 1")
        if self.after_retries not in ("past_due", "unpaid", "cancel"):
            raise ValueError("after_retries must be past_due, unpaid or cancel")


@dataclass
class ApiFaults:
    """Misbehaviour injected into the ``/v1`` API (off by default).

    ``latency_s``: every API call answers this much later (the request counts as in
    flight meanwhile, so a concurrent reuse of its idempotency key gets a 409).
    """

    latency_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiFaults:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown API fault setting(s): {', '.join(unknown)}")
        latency = data.get("latency_s", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise ValueError("latency_s must be a number >= 0")
        return cls(latency_s=float(latency))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class WebhookFaults:
    """Network misbehaviour injected into webhook delivery (all off by default).

    ``duplicates``: deliver each event this many times (or, with
    ``duplicates_random``, a random count in 1..duplicates).
    ``shuffle``: hold events in a window of ``shuffle_window`` (or for
    ``shuffle_hold_s``) and release them in random order.
    ``delay_s``: wait this long before the first attempt.
    ``fail_first_n``: the first N attempts of each delivery are dropped by the
    simulator as if the network failed; later attempts go out normally.
    ``drop_all``: never deliver anything (lost webhooks).
    ``seed``: makes the random choices reproducible.
    """

    duplicates: int = 1
    duplicates_random: bool = False
    shuffle: bool = False
    shuffle_window: int = 10
    shuffle_hold_s: float = 0.25
    delay_s: float = 0.0
    fail_first_n: int = 0
    drop_all: bool = False
    seed: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookFaults:
        """Build from a control-API body; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        faults = cls(**data)
        faults.validate()
        return faults

    def validate(self) -> None:
        if self.duplicates < 1:
            raise ValueError("duplicates must be >= 1")
        if self.shuffle_window < 1:
            raise ValueError("shuffle_window must be >= 1")
        if self.delay_s < 0 or self.shuffle_hold_s < 0:
            raise ValueError("delays must be >= 0")
        if self.fail_first_n < 0:
            raise ValueError("fail_first_n must be >= 0")

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
