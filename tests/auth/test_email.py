"""Email through a real SMTP server: verification grants the bonus once, password reset,
both languages, single-use and expiring links, and the development mail page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from smtp_kit import SmtpServer, mail_to
from tokenbank.app import create_app
from tokenbank.auth.models import EmailToken
from tokenbank.db import Database
from tokenbank.mail.devsink import start_sink
from tokenbank.types import utcnow

from conftest import app_client, make_settings
from support import register_user

pytestmark = pytest.mark.anyio


@pytest.fixture
async def mail_client(db_url: str, smtp: SmtpServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(db_url, app_origin="https://app.example.test", **smtp.settings)
    async with app_client(settings) as c:
        yield c


async def _balance(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    r = await client.get("/api/payment/user/tokens", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["balance"])


async def _sign_up(client: httpx.AsyncClient, name: str, **extra: object) -> dict[str, object]:
    r = await client.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "mail-pass-1", **extra},
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body


async def test_the_bonus_comes_once_by_following_the_emailed_link(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    user = await _sign_up(mail_client, "mia")
    headers = user["headers"]
    assert isinstance(headers, dict)
    assert await _balance(mail_client, headers) == 0  # nothing for an unverified sign-up
    [mail] = await mail_to(smtp, "mia@example.com")
    assert mail.subject == "Confirm your email for tokenbank"
    link = mail.link("/verify-email")
    assert link.startswith("https://app.example.test/verify-email?token=")  # APP_ORIGIN
    token = mail.token("/verify-email")
    first = await mail_client.post("/api/auth/verify-email", json={"token": token})
    assert first.status_code == 200 and first.json()["bonus_tokens"] == 10
    assert await _balance(mail_client, headers) == 10
    again = await mail_client.post("/api/auth/verify-email", json={"token": token})
    assert (again.status_code, again.json()["error"]["code"]) == (400, "email_link_invalid")
    me = (await mail_client.get("/api/auth/me", headers=headers)).json()
    assert me["email_verified"] is True
    # A second link (asked for again) verifies nothing new and grants nothing more.
    resend = await mail_client.post("/api/auth/verify-email/resend", headers=headers)
    assert resend.status_code == 202
    assert len(smtp.messages("mia@example.com")) == 1  # already verified: no mail
    assert await _balance(mail_client, headers) == 10


async def test_two_clicks_racing_on_one_link_grant_once(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    user = await _sign_up(mail_client, "race")
    [mail] = await mail_to(smtp, "race@example.com")
    token = mail.token("/verify-email")
    answers = await asyncio.gather(
        *(mail_client.post("/api/auth/verify-email", json={"token": token}) for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400, 400]
    headers = user["headers"]
    assert isinstance(headers, dict)
    assert await _balance(mail_client, headers) == 10


async def test_emails_follow_the_persons_language(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    await _sign_up(mail_client, "lily", locale="zh")
    [mail] = await mail_to(smtp, "lily@example.com")
    assert mail.subject == "请确认您在 tokenbank 的邮箱"
    assert "欢迎奖励" in mail.text
    # From the browser's language when the client does not say.
    r = await mail_client.post(
        "/api/auth/register",
        json={"username": "wang", "email": "wang@example.com", "password": "mail-pass-1"},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert r.status_code == 201 and r.json()["user"]["locale"] == "zh"
    [mail] = await mail_to(smtp, "wang@example.com")
    assert mail.subject.startswith("请确认")
    # Switching language changes the next email's language.
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await mail_client.patch("/api/auth/me", json={"locale": "en"}, headers=headers)
            ).json()["locale"] == "en"
    await mail_client.post("/api/auth/password-reset", json={"email": "wang@example.com"})
    mails = await mail_to(smtp, "wang@example.com", count=2)
    assert mails[1].subject == "Reset your tokenbank password"


async def test_an_expired_verification_link_is_refused(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    user = await _sign_up(mail_client, "late")
    [mail] = await mail_to(smtp, "late@example.com")
    db: Database = mail_client.app.state.db  # type: ignore[attr-defined]
    async with db.transaction() as session:  # two days pass
        await session.execute(update(EmailToken).values(expires_at=utcnow()))
    r = await mail_client.post("/api/auth/verify-email", json={"token": mail.token("/verify-email")})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "email_link_invalid")
    headers = user["headers"]
    assert isinstance(headers, dict)
    assert await _balance(mail_client, headers) == 0


async def test_password_reset_by_email_signs_out_everywhere_and_works_once(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    user = await register_user(mail_client, "rosa", password="old-pass-1")
    old_session = user["headers"]
    other_browser = await mail_client.post(
        "/api/auth/login", json={"username": "rosa", "password": "old-pass-1"}
    )
    other_headers = {"Authorization": f"Bearer {other_browser.json()['access_token']}"}
    unknown = await mail_client.post("/api/auth/password-reset", json={"email": "no@example.com"})
    asked = await mail_client.post("/api/auth/password-reset", json={"email": "ROSA@example.com"})
    assert unknown.status_code == asked.status_code == 202
    assert unknown.json() == asked.json()  # nothing tells whether the account exists
    mails = await mail_to(smtp, "rosa@example.com", count=2)  # verification, then reset
    reset = mails[-1]
    assert reset.subject == "Reset your tokenbank password"
    assert smtp.messages("no@example.com") == []
    token = reset.token("/reset-password")
    done = await mail_client.post(
        "/api/auth/password-reset/complete", json={"token": token, "new_password": "new-pass-2"}
    )
    assert done.status_code == 200, done.text
    for headers in (old_session, other_headers):
        r = await mail_client.get("/api/auth/me", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    fresh = {"Authorization": f"Bearer {done.json()['access_token']}"}
    assert (await mail_client.get("/api/auth/me", headers=fresh)).status_code == 200
    again = await mail_client.post(
        "/api/auth/password-reset/complete", json={"token": token, "new_password": "third-pass-3"}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (400, "email_link_invalid")
    old = await mail_client.post("/api/auth/login", json={"username": "rosa", "password": "old-pass-1"})
    new = await mail_client.post("/api/auth/login", json={"username": "rosa", "password": "new-pass-2"})
    assert (old.status_code, new.status_code) == (401, 200)


async def test_a_newer_reset_link_voids_the_older_and_links_expire(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    await register_user(mail_client, "omar", verify=False)
    for _ in range(2):
        await mail_client.post("/api/auth/password-reset", json={"email": "omar@example.com"})
    mails = await mail_to(smtp, "omar@example.com", count=3)
    older, newer = mails[1].token("/reset-password"), mails[2].token("/reset-password")
    r = await mail_client.post(
        "/api/auth/password-reset/complete", json={"token": older, "new_password": "new-pass-2"}
    )
    assert r.json()["error"]["code"] == "email_link_invalid"
    db: Database = mail_client.app.state.db  # type: ignore[attr-defined]
    async with db.transaction() as session:  # half an hour passes
        await session.execute(update(EmailToken).values(expires_at=utcnow()))
    r = await mail_client.post(
        "/api/auth/password-reset/complete", json={"token": newer, "new_password": "new-pass-2"}
    )
    assert r.json()["error"]["code"] == "email_link_invalid"


async def test_reset_mail_is_capped_per_account_per_hour(
    mail_client: httpx.AsyncClient, smtp: SmtpServer
) -> None:
    await register_user(mail_client, "flood", verify=False)
    answers = [
        await mail_client.post("/api/auth/password-reset", json={"email": "flood@example.com"})
        for _ in range(6)
    ]
    assert {a.status_code for a in answers} == {202}
    await mail_to(smtp, "flood@example.com", count=4)  # verification + 3 resets
    assert len(smtp.messages("flood@example.com")) == 4


async def test_the_development_mail_page_shows_caught_mail_and_is_404_elsewhere(
    db_url: str, tmp_path: Path
) -> None:
    from smtp_kit import _free_port

    port = _free_port()
    sink = start_sink(tmp_path / "mail", port)
    try:
        for env, expected in (("development", 200), ("test", 404), ("production", 404)):
            overrides: dict[str, object] = {
                "app_env": env, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
                "dev_mail_dir": str(tmp_path / "mail"), "app_origin": "http://127.0.0.1:8000",
            }
            if env == "production":
                overrides.update(
                    stripe_secret_key="sk_live_" + "a1" * 20,
                    stripe_publishable_key="pk_live_" + "b2" * 20,
                    stripe_webhook_secret="whsec_" + "c3" * 20,
                )
            app = create_app(make_settings(db_url, **overrides))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    if env == "development":
                        await c.post("/api/auth/register", json={
                            "username": "devi", "email": "devi@example.com",
                            "password": "mail-pass-1", "locale": "zh"})
                    page = await c.get("/dev/mail")
            assert page.status_code == expected, env
            if expected == 200:
                assert "请确认您在 tokenbank 的邮箱" in page.text
                assert '<a href="http://127.0.0.1:8000/verify-email?token=' in page.text
    finally:
        sink.stop()
