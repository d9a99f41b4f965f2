"""What the settings refuse: secrets are never a published constant, production never
runs against a fake Stripe, with test keys, malformed keys or a guessable JWT secret."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest

from tokenbank.config import ProductionConfigError, Settings

LIVE: dict[str, Any] = {
    "app_env": "production",
    "database_url": "postgresql://db.internal/tokenbank",
    "jwt_secret": secrets.token_hex(32),
    "stripe_secret_key": "sk_live_" + "51Hx9aKb2" + "Qz7" * 8,
    "stripe_publishable_key": "pk_live_" + "51Hx9aKb2" + "Qz7" * 8,
    "stripe_webhook_secret": "whsec_" + "Zm9vYmFy" * 5,
    "app_origin": "https://chat.example.com",
    "smtp_host": "smtp.example.com",
}


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **(LIVE | overrides))  # type: ignore[call-arg]


def refusal(**overrides: Any) -> str:
    with pytest.raises(ProductionConfigError) as caught:
        settings(**overrides).check_production()
    return str(caught.value)


def test_real_production_settings_start() -> None:
    settings().check_production()
    settings(stripe_secret_key="rk_live_" + "a1B2" * 8).check_production()


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("stripe_api_base", "http://127.0.0.1:12111", "STRIPE_API_BASE"),
        ("stripe_js_url", "http://127.0.0.1:12111/v3/", "STRIPE_JS_URL"),
    ],
)
def test_production_refuses_stripe_overrides(field: str, value: str, variable: str) -> None:
    message = refusal(**{field: value})
    assert variable in message and "must not be set" in message


def test_production_refuses_test_keys_unless_staging_is_declared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    test_keys = {
        "stripe_secret_key": "sk_test_" + "51Hx9aKb2" + "Qz7" * 8,
        "stripe_publishable_key": "pk_test_" + "51Hx9aKb2" + "Qz7" * 8,
    }
    message = refusal(**test_keys)
    assert "STRIPE_SECRET_KEY is a test key" in message
    assert "STRIPE_PUBLISHABLE_KEY is a test key" in message
    assert "ALLOW_TEST_KEYS_IN_PRODUCTION" in message

    with caplog.at_level("WARNING"):
        settings(**test_keys, allow_test_keys_in_production=True).check_production()
    assert any(
        "ALLOW_TEST_KEYS_IN_PRODUCTION" in r.getMessage() and r.levelname == "WARNING"
        for r in caplog.records
    )


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("stripe_secret_key", "sk_test_1", "STRIPE_SECRET_KEY"),
        ("stripe_secret_key", "sk_live_short", "STRIPE_SECRET_KEY"),
        ("stripe_secret_key", "sk_live_" + "a" * 20 + "!@#$%", "STRIPE_SECRET_KEY"),
        ("stripe_secret_key", "pk_live_" + "a1B2" * 8, "STRIPE_SECRET_KEY"),
        ("stripe_publishable_key", "pk_live_1", "STRIPE_PUBLISHABLE_KEY"),
        ("stripe_webhook_secret", "whsec_1", "STRIPE_WEBHOOK_SECRET"),
        ("stripe_webhook_secret", "whsec_" + "a b" * 12, "STRIPE_WEBHOOK_SECRET"),
        ("stripe_webhook_secret", "wh_" + "a" * 40, "STRIPE_WEBHOOK_SECRET"),
    ],
)
def test_production_refuses_malformed_keys(field: str, value: str, variable: str) -> None:
    message = refusal(**{field: value})
    assert f"{variable} is malformed" in message or f"{variable} is a test key" in message


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 40,
        "abc" * 20,
        "0123456789" * 4,
        secrets.token_hex(12),  # 24 characters: too short
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
        "1010101010101010101010101101010101010101",
    ],
)
def test_production_refuses_a_guessable_jwt_secret(secret: str) -> None:
    assert "JWT_SECRET" in refusal(jwt_secret=secret)


@pytest.mark.parametrize("secret", [secrets.token_hex(32), secrets.token_urlsafe(32)])
def test_production_accepts_a_random_jwt_secret(secret: str) -> None:
    settings(jwt_secret=secret).check_production()


def test_every_problem_is_named_at_once() -> None:
    message = refusal(jwt_secret="a" * 40, stripe_webhook_secret="whsec_1",
                      stripe_api_base="http://localhost:1")
    assert all(v in message for v in ("JWT_SECRET", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"))


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("key", ["sk_live_" + "a1B2" * 8, "rk_live_" + "a1B2" * 8])
def test_live_keys_refused_outside_production(env: str, key: str) -> None:
    s = Settings(_env_file=None, app_env=env, stripe_secret_key=key)  # type: ignore[call-arg]
    with pytest.raises(ProductionConfigError, match="STRIPE_SECRET_KEY is a live Stripe key"):
        s.check_production()


def test_production_serve_refuses_with_the_variable_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "JWT_"))}
    env |= {
        "APP_ENV": "production",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "JWT_SECRET": "a" * 40,
        "STRIPE_SECRET_KEY": "sk_test_1",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_1",
        "STRIPE_WEBHOOK_SECRET": "whsec_1",
        "STRIPE_API_BASE": "http://127.0.0.1:12111",
    }
    r = subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "serve", "--port", "1", "--no-migrate"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    for variable in ("JWT_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"):
        assert variable in r.stderr


# --- development secrets ------------------------------------------------------------------


def test_development_jwt_secret_is_random_per_data_dir_and_private(tmp_path: Path) -> None:
    def dev(data_dir: Path) -> Settings:
        return Settings(_env_file=None, app_env="development", data_dir=str(data_dir))  # type: ignore[call-arg]

    first = dev(tmp_path / "one").effective_jwt_secret
    again = dev(tmp_path / "one").effective_jwt_secret
    other = dev(tmp_path / "two").effective_jwt_secret
    assert first == again  # generated once, kept: sign-ins survive a restart
    assert first != other  # never a constant shared by every install
    assert len(first) >= 32
    secret_file = tmp_path / "one" / "secrets" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700


def test_a_token_signed_with_the_old_published_constant_is_refused(tmp_path: Path) -> None:
    from tokenbank.auth.errors import InvalidToken
    from tokenbank.auth.security import create_access_token, decode_access_token

    forged = create_access_token(
        1, "dev-only-insecure-jwt-secret-change-me", 3600, session_id="s"
    )
    s = Settings(_env_file=None, app_env="development", data_dir=str(tmp_path))  # type: ignore[call-arg]
    with pytest.raises(InvalidToken):
        decode_access_token(forged, s.effective_jwt_secret)
    assert jwt.decode(
        create_access_token(1, s.effective_jwt_secret, 60, session_id="s"), s.effective_jwt_secret,
        algorithms=["HS256"],
    )["sub"] == "1"


def test_processes_starting_at_once_agree_on_the_development_secret(tmp_path: Path) -> None:
    code = (
        "from tokenbank.config import Settings;"
        f"print(Settings(_env_file=None, app_env='development', data_dir={str(tmp_path)!r})"
        ".effective_jwt_secret)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(outputs) == 1 and len(outputs.pop()) >= 32


# --- prices and token counts from the environment are whole numbers, never coerced ------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRICING_TIERS", '{"starter": {"tokens": "100", "price": 500}}'),
        ("PRICING_TIERS", '{"starter": {"tokens": 100, "price": true}}'),
        ("PRICING_TIERS", '{"starter": {"tokens": 100, "price": 4.99}}'),
        ("MODEL_COSTS", '{"gpt-4o": "2"}'),
        ("MODEL_COSTS", '{"gpt-4o": true}'),
    ],
)
def test_prices_and_costs_are_strict_integers(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert variable.lower() in str(caught.value)


def test_whole_number_prices_and_costs_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICING_TIERS", '{"starter": {"tokens": 100, "price": 500}}')
    monkeypatch.setenv("MODEL_COSTS", '{"gpt-4o": 2}')
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.pricing_tiers["starter"].price, s.model_costs["gpt-4o"]) == (500, 2)
