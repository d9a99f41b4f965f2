"""Application settings: one pydantic-settings class, read once.

Secrets have no usable defaults outside development: with ``APP_ENV=production`` the
app refuses to start when a secret is missing or still a placeholder, and says which.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import secrets
from collections import Counter
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StrictInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tokenbank.errors import ConfigError

log = logging.getLogger(__name__)

_PLACEHOLDER_MARKERS = ("change", "placeholder", "example", "your-", "xxx", "dev-only")


class Tier(BaseModel):
    """A token pack. Prices are integer minor units (cents) with a currency."""

    tokens: StrictInt = Field(gt=0)
    price: StrictInt = Field(gt=0, description="Price in minor units (cents).")
    currency: str = Field(default="usd", min_length=3, max_length=3)
    description: str = ""


DEFAULT_TIERS: dict[str, Tier] = {
    "starter": Tier(tokens=100, price=500, description="Starter pack: 100 tokens"),
    "standard": Tier(tokens=500, price=2000, description="Standard pack: 500 tokens (25% bonus)"),
    "premium": Tier(tokens=1500, price=5000, description="Premium pack: 1500 tokens (50% bonus)"),
}


class Plan(BaseModel):
    """A monthly subscription plan: a Stripe Product and Price (``lookup_key``
    ``tokenbank_plan_<id>``), and the tokens each paid month allots."""

    name: str = Field(min_length=1, max_length=100)
    price: StrictInt = Field(gt=0, description="Price per month in minor units (cents).")
    currency: str = Field(default="usd", min_length=3, max_length=3)
    monthly_tokens: StrictInt = Field(gt=0)
    #: An allotment's tokens expire this many days after the invoice that granted them.
    allotment_expires_after_days: StrictInt = Field(default=60, gt=0, le=3650)


DEFAULT_PLANS: dict[str, Plan] = {
    "basic": Plan(name="Basic", price=499, monthly_tokens=300),
    "pro": Plan(name="Pro", price=999, monthly_tokens=1000),
    "premium": Plan(name="Premium", price=1999, monthly_tokens=3000),
}


class ProductionConfigError(ConfigError, RuntimeError):
    """Raised at start-up when production settings are missing or placeholders."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")

    app_env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///./data/tokenbank.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_timeout_s: float = Field(default=5.0, gt=0)
    #: PostgreSQL is reached through PgBouncer in transaction pooling mode: no named
    #: prepared statements (PgBouncer before 1.21 cannot route them), see operations.md.
    database_pgbouncer: bool = False

    jwt_secret: str | None = None
    # Access tokens are short-lived; the refresh cookie keeps a session going.
    jwt_expires_s: int = Field(default=15 * 60, gt=0)
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=1024, le=4 * 1024 * 1024)

    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_js_url: str | None = None
    stripe_webhook_tolerance_s: int = Field(default=300, gt=0)
    #: Development only: each new Stripe Customer lives on its own Stripe test clock, and
    #: ``POST /api/dev/advance-clock`` moves it (subscriptions renew in seconds).
    subscription_test_clocks: bool = False

    ai_provider: Literal["offline", "gemini", "openai"] | None = None
    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    ai_timeout_s: float = Field(default=30.0, gt=0)
    ai_history_budget_chars: int = Field(default=8000, ge=0)
    ai_system_prompt: str = "You are a helpful assistant."
    reply_cost_tokens: int = Field(default=1, ge=0)
    model_costs: dict[str, StrictInt] = Field(default_factory=dict)
    #: The price book's first version (JSON, see ``pricing.book``); None: every model costs
    #: ``REPLY_COST_TOKENS`` (or its ``MODEL_COSTS`` entry) per reply.
    price_book: dict[str, Any] | None = None
    #: How stale a process's copy of the price book may be (seconds) before it checks.
    price_book_cache_s: float = Field(default=5.0, ge=0)
    #: Most output tokens a usage-priced reply may use (the hold's upper bound).
    ai_max_output_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    max_message_chars: int = Field(default=4000, gt=0)
    #: Refunds of AI replies a person may ask for in 24 hours (0: none).
    reply_refunds_per_day: int = Field(default=5, ge=0)

    signup_bonus_tokens: int = Field(default=10, ge=0)
    pricing_tiers: dict[str, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    #: Monthly plans (``SUBSCRIPTION_PLANS``, a JSON object of id -> plan).
    subscription_plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS))

    reservation_ttl_s: int = Field(default=120, gt=0)
    sweeper_interval_s: float = Field(default=10.0, ge=0)
    #: Token lots: priority per source (JSON; lower spends first), days a grant's lot
    #: lives (unset: never expires), and how often the expiry job runs.
    lot_priorities: dict[str, int] = Field(default_factory=dict)
    grant_expires_days: float | None = Field(default=None, gt=0)
    lot_expiry_interval_s: float = Field(default=60.0, ge=0)
    reconcile_interval_s: float = Field(default=600.0, ge=0)
    reconcile_window_s: int = Field(default=7 * 24 * 3600, gt=0)
    #: Refund a charge as soon as Radar sends an early fraud warning for it.
    efw_auto_refund: bool = True
    background_jobs: bool = True
    # The webhook inbox's worker (one per app process): it applies recorded events, so it
    # runs whenever Stripe is configured unless turned off here (not by BACKGROUND_JOBS).
    webhook_worker: bool = True
    # Where that worker runs: in a child process of the app process (supervised: restarted
    # if it dies, stopped with its parent), so its CPU stays off the requests' event loop;
    # or, false, as a task in the app process itself. `tokenbank serve` defaults it to
    # true; an app built any other way (tests, an embedding ASGI server) to false.
    webhook_worker_process: bool = False
    # That child's niceness (0-19): above 0, the acknowledgements win the CPU over it.
    webhook_worker_nice: int = Field(default=10, ge=0, le=19)
    webhook_poll_interval_s: float = Field(default=5.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1, le=64)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_backoff_base_s: float = Field(default=2.0, gt=0)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0)
    webhook_claim_lease_s: float = Field(default=300.0, gt=0)
    # Outbound webhooks (events for the operator's endpoints): delivered by a background
    # job (off with BACKGROUND_JOBS=false, or an interval of 0), retried with exponential
    # backoff and jitter; the defaults spread 13 attempts over about three days.
    outbound_webhook_interval_s: float = Field(default=2.0, ge=0)
    outbound_webhook_timeout_s: float = Field(default=10.0, gt=0)
    outbound_webhook_concurrency: int = Field(default=8, ge=1, le=64)
    outbound_webhook_max_attempts: int = Field(default=13, ge=1)
    outbound_webhook_backoff_base_s: float = Field(default=60.0, gt=0)
    outbound_webhook_backoff_max_s: float = Field(default=24 * 3600.0, gt=0)
    outbound_webhook_claim_lease_s: float = Field(default=60.0, gt=0)
    #: Endpoints on loopback or private addresses, and plain http: allowed in development
    #: only unless set (a server-side request to an internal address is SSRF).
    outbound_webhook_allow_local: bool | None = None
    #: Auto top-up: this many failed attempts in a row turn it off.
    auto_topup_max_failures: int = Field(default=3, ge=1)
    #: How long a process trusts the thresholds it read when deciding, after a charge,
    #: whether to look at the balance again (a change made in another process).
    balance_watch_cache_s: float = Field(default=30.0, ge=0)
    #: How often each process sends the notification emails recorded by the others.
    notification_mail_interval_s: float = Field(default=5.0, gt=0)
    #: How long an email may stay claimed (``sending``) before another process takes it
    #: for sent-never (its process died before SMTP): sent again, at least once; never
    #: less than the SMTP timeout + 30 s.
    notification_mail_claim_lease_s: float = Field(default=300.0, gt=0)

    cors_origins: list[str] = Field(default_factory=list)
    client_dist: str | None = None
    metrics_token: str | None = None
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    log_level: str = "INFO"
    json_logs: bool = True

    rate_limit_enabled: bool = True
    rate_limit_login_per_min: int = Field(default=20, ge=1)
    rate_limit_register_per_min: int = Field(default=10, ge=1)
    rate_limit_payment_per_min: int = Field(default=30, ge=1)
    rate_limit_generate_per_min: int = Field(default=120, ge=1)
    rate_limit_meter_per_min: int = Field(default=120, ge=1)
    #: Rate-limit counters in Redis (``redis://host:6379/0``); unset = in the database.
    redis_url: str | None = None
    #: Prefix of every key this app writes in Redis (several apps can share one Redis).
    redis_key_prefix: str = "tokenbank:"
    #: How long a Redis call may take before the database counts instead.
    redis_timeout_s: float = Field(default=0.25, gt=0)
    #: After a Redis failure, how long to count in the database before trying Redis again.
    rate_limit_redis_retry_s: float = Field(default=5.0, ge=0)

    # --- hardening: where dev secrets live, production-only switches ---
    data_dir: str = "./data"
    api_docs_enabled: bool | None = None
    allow_test_keys_in_production: bool = False
    hsts_max_age_s: int = Field(default=63_072_000, ge=0)

    # --- Accounts, sessions and email -------------------------------------------------
    # Where links in emails point (e.g. https://app.example.com). Required in production,
    # where a link must never be built from a request's Host header.
    app_origin: str | None = None
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    # None: Secure in production and on https requests; plain http (dev, tests) is not.
    refresh_cookie_secure: bool | None = None
    # Seconds a process may trust its last "session still open" answer (0: ask the
    # database on every request). Revocation reaches other processes within this time.
    session_check_cache_s: float = Field(default=0.0, ge=0, le=60)
    # Proxies whose X-Forwarded-For is believed (CIDRs, JSON list or comma-separated).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds `tokenbank serve` keeps an idle client connection open. Longer than the
    # clients' own idle limit (httpx and the SDKs: 5 s; load balancers: 60 s), so the
    # client always closes first: a server closing at the same moment as a client reuses
    # the connection fails that request, and a POST cannot be safely resent.
    http_keep_alive_s: int = Field(default=75, ge=1, le=3600)
    login_free_attempts: int = Field(default=5, ge=1)
    login_backoff_base_s: int = Field(default=1, ge=1)
    login_backoff_max_s: int = Field(default=15 * 60, ge=1)
    signup_per_ip_per_day: int = Field(default=20, ge=1)
    email_verify_ttl_s: int = Field(default=2 * 24 * 3600, gt=0)
    password_reset_ttl_s: int = Field(default=30 * 60, gt=0)
    password_reset_per_hour: int = Field(default=3, ge=1)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "tokenbank <no-reply@localhost>"
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    # Development only: the local SMTP sink's mailbox, shown at /dev/mail.
    dev_mail_dir: str | None = None

    # --- The service API (/api/v1) and widgets ------------------------------------------
    #: Requests per minute each API key may make (counted like every other limit).
    rate_limit_api_key_per_min: int = Field(default=600, ge=1)
    #: HS256 secret the host app signs short-lived widget customer tokens with.
    widget_token_secret: str | None = None
    #: Or: the host's JWKS URL; RS256 widget tokens are checked against its keys.
    widget_jwks_url: str | None = None
    #: How long fetched JWKS keys are trusted before they are fetched again.
    widget_jwks_cache_s: float = Field(default=300.0, gt=0)
    #: A token naming a key id not in the cached set fetches the set again at most this often.
    widget_jwks_refetch_s: float = Field(default=30.0, ge=0)
    #: The longest lifetime (``exp - iat``) a widget token may have.
    widget_token_max_ttl_s: int = Field(default=3600, ge=1, le=24 * 3600)
    #: The host app's origins: CORS for the widget routes, and where a hosted payment page
    #: may return to (``return_url``). JSON list or comma-separated.
    widget_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("widget_allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _env_list(cls, value: object) -> object:
        """A list setting from the environment: a JSON list or comma-separated."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("widget_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            origin = normalize_origin(item)
            if origin is None:
                raise ValueError(f"{item!r} is not an origin like https://app.example.com")
            out.append(origin)
        return out

    def integration_production_problems(self) -> list[str]:
        """The service API's and widgets' refusals: a guessable widget secret, a JWKS URL
        or a host origin that is not https."""
        problems: list[str] = []
        secret = self.widget_token_secret
        if secret is not None:
            if _looks_like_placeholder(secret):
                problems.append("WIDGET_TOKEN_SECRET is a placeholder")
            elif weakness := jwt_secret_weakness(secret):
                problems.append(f"WIDGET_TOKEN_SECRET {weakness}")
            elif self.jwt_secret and secret == self.jwt_secret:
                problems.append("WIDGET_TOKEN_SECRET must differ from JWT_SECRET")
        if self.widget_jwks_url is not None and not self.widget_jwks_url.startswith("https://"):
            problems.append("WIDGET_JWKS_URL must be an https:// URL in production")
        for origin in self.widget_allowed_origins:
            if not origin.startswith("https://"):
                problems.append(f"WIDGET_ALLOWED_ORIGINS has {origin}, not https")
        return problems

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    def accounts_production_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.app_origin:
            problems.append("APP_ORIGIN is missing (links in emails need it)")
        if not self.smtp_host:
            problems.append("SMTP_HOST is missing (verification and reset emails need it)")
        if self.refresh_cookie_secure is False:
            problems.append("REFRESH_COOKIE_SECURE=false is not allowed in production")
        return problems

    @field_validator("database_url")
    @classmethod
    def _non_empty_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("DATABASE_URL must not be empty")
        return value.strip()

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def outbound_webhooks_local_ok(self) -> bool:
        """Whether webhook endpoints may be plain http or on this machine's or a private
        network's addresses (development, unless ``OUTBOUND_WEBHOOK_ALLOW_LOCAL`` says)."""
        if self.outbound_webhook_allow_local is not None:
            return self.outbound_webhook_allow_local
        return self.app_env == "development"

    @property
    def stripe_live(self) -> bool:
        """Whether the Stripe keys are live-mode ones (the secret key decides, else the
        publishable key)."""
        return is_live_key(self.stripe_secret_key or self.stripe_publishable_key)

    @cached_property
    def effective_jwt_secret(self) -> str:
        """``JWT_SECRET``; outside production without one, this machine's random secret
        (generated once into ``DATA_DIR``), never a constant."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.is_production:
            raise ProductionConfigError("JWT_SECRET is required in production")
        return dev_secret(Path(self.data_dir), "jwt_secret")

    @property
    def test_clocks_enabled(self) -> bool:
        """``SUBSCRIPTION_TEST_CLOCKS``, which production never honours."""
        return self.subscription_test_clocks and not self.is_production

    @property
    def stripe_simulated(self) -> bool:
        """True when talking to the local Stripe server rather than Stripe itself."""
        return self.stripe_api_base is not None

    def reply_cost_for(self, model: str) -> int:
        return self.model_costs.get(model, self.reply_cost_tokens)

    def production_problems(self) -> list[str]:
        """Names every secret that is missing or a placeholder (empty when all is well)."""
        problems: list[str] = []
        required = {
            "JWT_SECRET": self.jwt_secret,
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_PUBLISHABLE_KEY": self.stripe_publishable_key,
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
        }
        for name, value in required.items():
            if not value:
                problems.append(f"{name} is missing")
            elif _looks_like_placeholder(value):
                problems.append(f"{name} is a placeholder")
        problems.extend(self.accounts_production_problems())
        problems.extend(self.integration_production_problems())
        return problems

    def check_production(self) -> None:
        """Refuse to start with settings unsafe for where the app runs (each problem names
        its variable): production checks in production, no live Stripe keys elsewhere."""
        if not self.is_production:
            live = self.live_keys_outside_production()
            if live:
                raise ProductionConfigError(
                    f"refusing to start: {', '.join(live)} is a live Stripe key but APP_ENV is "
                    f"{self.app_env}; live keys run only with APP_ENV=production"
                )
            return
        problems = self.production_problems() + self.hardening_problems()
        if problems:
            raise ProductionConfigError("refusing to start in production: " + "; ".join(problems))
        if self.allow_test_keys_in_production and _any_test_key(self):
            log.warning(
                "ALLOW_TEST_KEYS_IN_PRODUCTION=true: running in production with Stripe TEST "
                "keys; no real money moves and purchases credit real tokens (staging only)"
            )

    # --- hardening: secrets, key formats and production refusals -------------------------

    def live_keys_outside_production(self) -> list[str]:
        """The variables holding live Stripe keys (for a refusal outside production)."""
        keys = {
            "STRIPE_SECRET_KEY": self.stripe_secret_key,
            "STRIPE_PUBLISHABLE_KEY": self.stripe_publishable_key,
        }
        return [name for name, value in keys.items() if is_live_key(value)]

    def hardening_problems(self) -> list[str]:
        """Production refusals beyond missing secrets: overrides, test keys, malformed keys
        and webhook secrets, a guessable JWT secret."""
        problems: list[str] = []
        for name, value in (
            ("STRIPE_API_BASE", self.stripe_api_base),
            ("STRIPE_JS_URL", self.stripe_js_url),
        ):
            if value is not None:
                problems.append(f"{name} must not be set in production (it is {value!r})")
        formats = (
            ("STRIPE_SECRET_KEY", self.stripe_secret_key, _SECRET_KEY_RE),
            ("STRIPE_PUBLISHABLE_KEY", self.stripe_publishable_key, _PUBLISHABLE_KEY_RE),
            ("STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret, _WEBHOOK_SECRET_RE),
        )
        for name, value, pattern in formats:
            if not value or _looks_like_placeholder(value):
                continue  # reported as missing or a placeholder already
            match = pattern.fullmatch(value)
            if match is None:
                problems.append(f"{name} is malformed (expected {pattern.pattern})")
            elif match.groupdict().get("mode") == "test" and not self.allow_test_keys_in_production:
                problems.append(
                    f"{name} is a test key (set ALLOW_TEST_KEYS_IN_PRODUCTION=true for staging)"
                )
        if self.jwt_secret and not _looks_like_placeholder(self.jwt_secret):
            weakness = jwt_secret_weakness(self.jwt_secret)
            if weakness:
                problems.append(f"JWT_SECRET {weakness}")
        return problems

    def check_bind(self, host: str) -> None:
        """Outside production the app listens on this machine only: a development build
        reachable from a network is an open door (its secrets are local, its Stripe fake)."""
        if self.is_production or _is_loopback(host):
            return
        raise ProductionConfigError(
            f"refusing to listen on {host} with APP_ENV={self.app_env}: outside production "
            "the app binds loopback only (127.0.0.1, ::1); set APP_ENV=production to serve a "
            "network"
        )

    @property
    def api_docs_on(self) -> bool:
        """``/docs``, ``/redoc`` and ``/openapi.json``: off in production unless asked for."""
        if self.api_docs_enabled is not None:
            return self.api_docs_enabled
        return not self.is_production


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or None when ``value`` is not an origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


# --- hardening: key formats, secret strength, development secrets ------------------------

#: Stripe's key formats: a prefix, the mode, then at least 24 alphanumerics.
_SECRET_KEY_RE = re.compile(r"(?:sk|rk)_(?P<mode>live|test)_[0-9A-Za-z]{24,}")
_PUBLISHABLE_KEY_RE = re.compile(r"pk_(?P<mode>live|test)_[0-9A-Za-z]{24,}")
_WEBHOOK_SECRET_RE = re.compile(r"whsec_[0-9A-Za-z+/=_-]{32,}")
MIN_JWT_SECRET_BYTES = 32
#: Estimated bits of entropy a JWT secret must carry (characters' Shannon entropy × length).
MIN_JWT_SECRET_BITS = 128


def is_live_key(key: str | None) -> bool:
    """Whether a Stripe key (``sk_``, ``rk_`` or ``pk_``) is a live-mode one: the one
    answer to "is this live mode?" wherever it is asked."""
    return bool(key) and "_live_" in (key or "")[:8]


def _any_test_key(settings: Settings) -> bool:
    return any(
        value and "_test_" in value[:8]
        for value in (settings.stripe_secret_key, settings.stripe_publishable_key)
    )


def jwt_secret_weakness(secret: str) -> str | None:
    """Why a JWT secret is guessable (``None`` when it looks random enough).

    An estimate: the Shannon entropy of its characters times its length, plus a refusal of
    anything that is one short piece repeated. ``openssl rand -hex 32`` passes easily.
    """
    size = len(secret.encode())
    if size < MIN_JWT_SECRET_BYTES:
        return f"must be at least {MIN_JWT_SECRET_BYTES} bytes (it is {size})"
    if (secret + secret).find(secret, 1) < len(secret):
        return "repeats a shorter piece; generate one with `openssl rand -hex 32`"
    counts = Counter(secret)
    per_char = -sum(c / len(secret) * math.log2(c / len(secret)) for c in counts.values())
    bits = per_char * len(secret)
    if bits < MIN_JWT_SECRET_BITS:
        return (
            f"has too little entropy (about {bits:.0f} bits, {len(counts)} distinct "
            f"characters; at least {MIN_JWT_SECRET_BITS} bits needed); generate one with "
            "`openssl rand -hex 32`"
        )
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dev_secret(data_dir: Path, name: str) -> str:
    """A random secret kept in ``data_dir/secrets/<name>`` (mode 0600), made on first use.

    Several processes starting at once agree: the file appears whole (written aside, then
    hard-linked into place, which fails if another process got there first).
    """
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    if not path.exists():
        tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    value = path.read_text().strip()
    if len(value) < MIN_JWT_SECRET_BYTES:
        raise ProductionConfigError(f"{path} holds no usable secret; delete it to make a new one")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
