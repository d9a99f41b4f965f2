"""The delivery rules that need no database: the backoff schedule, the URLs refused
(SSRF), the event types an endpoint may name, and the signature's shape."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from tokenbank.config import Settings
from tokenbank.outbound import service
from tokenbank.outbound.errors import UnknownEventType, WebhookUrlRefused
from tokenbank.outbound.models import DeliveryStatus
from tokenbank.outbound.repository import ClaimedDelivery

pytestmark = pytest.mark.anyio

DEFAULTS = Settings(_env_file=None, app_env="test")  # type: ignore[call-arg]


def test_backoff_doubles_is_capped_and_jittered_by_a_fifth() -> None:
    middle = [service.retry_delay_s(DEFAULTS, n, lambda: 0.5) for n in range(1, 14)]
    assert middle[:4] == [60.0, 120.0, 240.0, 480.0]
    assert max(middle) == 24 * 3600.0  # the cap
    low = service.retry_delay_s(DEFAULTS, 3, lambda: 0.0)
    high = service.retry_delay_s(DEFAULTS, 3, lambda: 0.999999)
    assert low == pytest.approx(240 * 0.8) and high == pytest.approx(240 * 1.2, rel=1e-5)


def test_the_default_schedule_spans_about_three_days() -> None:
    # 13 attempts: 12 waits between them.
    waits = [
        service.retry_delay_s(DEFAULTS, n, lambda: 0.5)
        for n in range(1, DEFAULTS.outbound_webhook_max_attempts)
    ]
    days = sum(waits) / 86400
    assert 2.0 < days < 3.5, days
    fastest = sum(
        service.retry_delay_s(DEFAULTS, n, lambda: 0.0)
        for n in range(1, DEFAULTS.outbound_webhook_max_attempts)
    )
    assert fastest / 86400 > 1.5  # jitter never makes it a one-day affair


def _claimed(attempts: int) -> ClaimedDelivery:
    return ClaimedDelivery(1, 1, "evt_x", "balance.low", "{}", attempts, "t", "u", "s", True)


def test_failure_verdict_failed_until_the_last_attempt_then_dead() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    status, at = service.after_failure(DEFAULTS, _claimed(1), now, lambda: 0.5)
    assert status is DeliveryStatus.FAILED and at is not None
    assert (at - now).total_seconds() == 60.0
    status, at = service.after_failure(DEFAULTS, _claimed(13), now)
    assert status is DeliveryStatus.DEAD and at is None


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = service.signature_header('{"a":1}', "whsec_k", 1700000000)
    digest = hmac.new(b"whsec_k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


REFUSED = [
    "http://hooks.example.com/x",  # not https
    "https://127.0.0.1/x",
    "https://127.1.2.3:8443/x",
    "https://localhost/x",
    "https://api.localhost/x",
    "https://10.0.0.5/x",
    "https://172.16.0.1/x",
    "https://192.168.1.1/x",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata
    "https://100.64.0.1/x",  # carrier-grade NAT
    "https://0.0.0.0/x",
    "https://[::1]/x",
    "https://[fe80::1]/x",
    "https://[fc00::1]/x",
    "https://[::ffff:127.0.0.1]/x",  # loopback in IPv6 clothing
    "https://224.0.0.1/x",
    "https://user:pw@8.8.8.8/x",  # credentials in the URL
    "ftp://8.8.8.8/x",
    "https:///x",
    "https://8.8.8.8:99999/x",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_and_insecure_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        await service.check_url(url, local_ok=False)


async def test_public_https_addresses_pass() -> None:
    assert await service.check_url("https://8.8.8.8/hooks", local_ok=False)
    assert await service.check_url("https://[2001:4860:4860::8888]/h", local_ok=False)


async def test_development_may_use_local_http() -> None:
    assert await service.check_url("http://127.0.0.1:8000/hooks", local_ok=True)
    with pytest.raises(WebhookUrlRefused):  # never credentials, never another scheme
        await service.check_url("http://u:p@127.0.0.1/x", local_ok=True)
    with pytest.raises(WebhookUrlRefused):
        await service.check_url("file:///etc/passwd", local_ok=True)


def test_local_is_development_only_unless_set() -> None:
    assert Settings(_env_file=None, app_env="development").outbound_webhooks_local_ok  # type: ignore[call-arg]
    assert not Settings(_env_file=None, app_env="test").outbound_webhooks_local_ok  # type: ignore[call-arg]
    assert not Settings(_env_file=None, app_env="production").outbound_webhooks_local_ok  # type: ignore[call-arg]
    assert Settings(_env_file=None, app_env="test", outbound_webhook_allow_local=True).outbound_webhooks_local_ok  # type: ignore[call-arg]


def test_event_types_are_known_ones_or_all() -> None:
    assert service.parse_events(["purchase.succeeded", " balance.low "]) == (
        "balance.low,purchase.succeeded"
    )
    assert service.parse_events(["purchase.succeeded", "*"]) == "*"
    with pytest.raises(UnknownEventType):
        service.parse_events(["purchase.exploded"])
    with pytest.raises(UnknownEventType):
        service.parse_events([" "])


def test_the_sdk_refuses_malformed_headers() -> None:
    from tokenbank_client import WebhookVerificationError, verify_webhook

    body = b'{"id":"evt_1"}'
    good = service.signature_header(body.decode(), "whsec_k", 1700000000)
    assert verify_webhook(body, good, "whsec_k", now=1700000100)["id"] == "evt_1"
    for header in (None, "", "v1=abc", "t=1700000000", "t=x,v1=ab", "t=1700000000,v1=é"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(body, header, "whsec_k", now=1700000000)
    # Several v1 values (a receiver checking during a secret change): any may match.
    both = good + ",v1=" + "0" * 64
    assert verify_webhook(body, both, "whsec_k", now=1700000000)["id"] == "evt_1"


def test_during_a_roll_both_secrets_sign_and_either_verifies() -> None:
    """The header of a rolled endpoint: the new secret's ``v1``, then the old one's; the
    SDK, Stripe's library and the integration guide's own checker accept either secret,
    and no other."""
    import json
    import re
    from pathlib import Path

    import stripe

    from tokenbank_client import WebhookVerificationError, verify_webhook

    body = '{"id":"evt_1"}'
    header = service.signature_header(body, "whsec_new", 1700000000, previous="whsec_old")
    new_only = service.signature_header(body, "whsec_new", 1700000000)
    old_only = service.signature_header(body, "whsec_old", 1700000000)
    assert header == new_only + "," + old_only.split(",")[1]

    guide = Path(__file__).parents[2] / "docs" / "integration.md"
    sample = re.search(r"```python\n(import hashlib.*?)\n\n@app", guide.read_text(), re.S)
    assert sample is not None
    scope: dict[str, object] = {}
    exec(sample.group(1), scope)  # noqa: S102 - the guide's own sample, run as written
    guide_verify = scope["verify"]
    assert callable(guide_verify)
    for secret in ("whsec_new", "whsec_old"):
        assert verify_webhook(body, header, secret, now=1700000000)["id"] == "evt_1"
        stripe.WebhookSignature.verify_header(body, header, secret, 0)
        assert guide_verify(body.encode(), header, secret, tolerance=10**10) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, header, "whsec_other", now=1700000000)
    with pytest.raises(ValueError):
        guide_verify(body.encode(), header, "whsec_other", tolerance=10**10)


def test_a_claim_outlasts_an_attempt() -> None:
    from tokenbank.outbound.flows import lease

    short = Settings(  # type: ignore[call-arg]
        _env_file=None, outbound_webhook_claim_lease_s=1, outbound_webhook_timeout_s=10
    )
    assert lease(short).total_seconds() >= 10 + 30
    assert lease(DEFAULTS).total_seconds() == 60
