"""Application settings: one pydantic-settings class, read once.

Secrets have no usable defaults outside development: with ``APP_ENV=production`` the
app refuses to start when a secret is missing or still a placeholder, and says which.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
_PLACEHOLDER_MARKERS = ("change", "placeholder", "example", "your-", "xxx", "dev-only")


class Tier(BaseModel):
    """A token pack. Prices are integer minor units (cents) with a currency."""

    tokens: int = Field(gt=0)
    price: int = Field(gt=0, description="Price in minor units (cents).")
    currency: str = Field(default="usd", min_length=3, max_length=3)
    description: str = ""


DEFAULT_TIERS: dict[str, Tier] = {
    "starter": Tier(tokens=100, price=500, description="Starter pack: 100 tokens"),
    "standard": Tier(tokens=500, price=2000, description="Standard pack: 500 tokens (25% bonus)"),
    "premium": Tier(tokens=1500, price=5000, description="Premium pack: 1500 tokens (50% bonus)"),
}


class ProductionConfigError(RuntimeError):
    """Raised at start-up when production settings are missing or placeholders."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")

    app_env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///./data/tokenbank.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_timeout_s: float = Field(default=5.0, gt=0)

    jwt_secret: str | None = None
    jwt_expires_s: int = Field(default=7 * 24 * 3600, gt=0)
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=1024, le=4 * 1024 * 1024)

    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_js_url: str | None = None
    stripe_webhook_tolerance_s: int = Field(default=300, gt=0)

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
    model_costs: dict[str, int] = Field(default_factory=dict)
    max_message_chars: int = Field(default=4000, gt=0)

    signup_bonus_tokens: int = Field(default=10, ge=0)
    pricing_tiers: dict[str, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS))

    reservation_ttl_s: int = Field(default=120, gt=0)
    sweeper_interval_s: float = Field(default=10.0, ge=0)
    reconcile_interval_s: float = Field(default=600.0, ge=0)
    reconcile_window_s: int = Field(default=7 * 24 * 3600, gt=0)
    background_jobs: bool = True

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
    #: Rate-limit counters in Redis (``redis://host:6379/0``); unset = in the database.
    redis_url: str | None = None
    #: Prefix of every key this app writes in Redis (several apps can share one Redis).
    redis_key_prefix: str = "tokenbank:"
    #: How long a Redis call may take before the database counts instead.
    redis_timeout_s: float = Field(default=0.25, gt=0)
    #: After a Redis failure, how long to count in the database before trying Redis again.
    rate_limit_redis_retry_s: float = Field(default=5.0, ge=0)

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
    def effective_jwt_secret(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret
        if self.is_production:
            raise ProductionConfigError("JWT_SECRET is required in production")
        return DEV_JWT_SECRET

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
        if self.jwt_secret and len(self.jwt_secret) < 32:
            problems.append("JWT_SECRET must be at least 32 characters")
        return problems

    def check_production(self) -> None:
        if not self.is_production:
            return
        problems = self.production_problems()
        if problems:
            raise ProductionConfigError("refusing to start in production: " + "; ".join(problems))


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
