"""Production refuses weak or unsafe widget settings, each named, like the rest of config."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from security.test_settings import settings as production_settings
from tokenbank.config import ProductionConfigError, Settings


def refusal(**overrides: Any) -> str:
    with pytest.raises(ProductionConfigError) as caught:
        production_settings(**overrides).check_production()
    return str(caught.value)


@pytest.mark.parametrize("secret", ["short", "changeme-widget-secret-0123456789abcdef",
                                    "ab" * 32])
def test_a_weak_or_placeholder_widget_secret_is_refused(secret: str) -> None:
    assert "WIDGET_TOKEN_SECRET" in refusal(widget_token_secret=secret)


def test_the_widget_secret_must_not_be_the_jwt_secret() -> None:
    same = production_settings().jwt_secret
    assert "must differ from JWT_SECRET" in refusal(widget_token_secret=same)


def test_plain_http_jwks_and_origins_are_refused() -> None:
    assert "WIDGET_JWKS_URL" in refusal(widget_jwks_url="http://host.test/jwks.json")
    assert "WIDGET_ALLOWED_ORIGINS" in refusal(widget_allowed_origins="http://host.test")


def test_sound_widget_settings_start() -> None:
    production_settings(
        widget_token_secret=secrets.token_hex(32),
        widget_jwks_url="https://host.test/.well-known/jwks.json",
        widget_allowed_origins="https://host.test,https://app.host.test:8443",
    ).check_production()


@pytest.mark.parametrize("origin", ["host.test", "https://host.test/path", "ftp://host.test",
                                    "https://user@host.test"])
def test_origins_are_origins(origin: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, widget_allowed_origins=origin)  # type: ignore[call-arg]
