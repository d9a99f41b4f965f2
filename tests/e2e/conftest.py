"""Browser tests: Debian's Chromium driven by Playwright against the real app.

One stack per session: a fresh SQLite database, the local Stripe server (in this
process) and ``tokenbank serve`` (its own process) serving the built client. Playwright
never downloads a browser; it launches /usr/bin/chromium.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from reliability.harness import REPO, AppProcess, free_port
from smtp_kit import SmtpServer, smtp_server
from stripe_sim import SimConfig, SimServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SECRET_KEY = "sk_test_e2e_local"
PUBLISHABLE_KEY = "pk_test_e2e_local"
WEBHOOK_SECRET = "whsec_e2e_test_secret"
JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"


@dataclass
class Stack:
    url: str
    sim: SimServer
    app: AppProcess
    db_url: str
    smtp: SmtpServer

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def verification_link(self, email: str) -> str:
        """The link in the verification email the local SMTP server received."""
        return self.smtp.wait_for(email)[0].link("/verify-email")

    def register(self, username: str | None = None, *, verify: bool = True) -> dict[str, Any]:
        """A user made through the API; ``verify`` follows the emailed link (the bonus)."""
        name = username or f"e{uuid.uuid4().hex[:10]}"
        with self.api() as c:
            r = c.post(
                "/api/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": "e2e-pass-123"},
            )
            assert r.status_code == 201, r.text
            if verify:
                token = self.verification_link(f"{name}@example.com").split("token=", 1)[1]
                v = c.post("/api/auth/verify-email", json={"token": token})
                assert v.status_code == 200, v.text
        body: dict[str, Any] = r.json()
        body["password"] = "e2e-pass-123"
        return body


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip("SKIPPING BROWSER TESTS — " + reason)


@contextmanager
def running_stack(db_url: str, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The local Stripe server (in this process) and ``tokenbank serve`` wired to it
    (``extra_env``: more settings, e.g. the origins of a host app beside it)."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    config = SimConfig(webhook_url=f"{app_url}/api/payment/webhook", webhook_secret=WEBHOOK_SECRET,
                       api_key=SECRET_KEY, publishable_key=PUBLISHABLE_KEY,
                       allowed_origins=[app_url], webhook_backoff_base_s=0.1,
                       webhook_backoff_max_s=1.0)
    with SimServer(config) as sim, smtp_server() as smtp:
        env = {
            "APP_ORIGIN": app_url,
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": str(smtp.port),
            "SMTP_TLS": "none",
            "DATABASE_URL": db_url,
            "JWT_SECRET": JWT_SECRET,
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": sim.url,
            "STRIPE_JS_URL": f"{sim.url}/v3/",
            "RATE_LIMIT_ENABLED": "false",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "AI_PROVIDER": "offline",
            # The app stands in for a host app too: hosted payment pages may return to it.
            "WIDGET_ALLOWED_ORIGINS": app_url,
        } | (extra_env or {})
        app = AppProcess(env, port=port).start(migrate=True)
        try:
            yield Stack(url=app_url, sim=sim, app=app, db_url=db_url, smtp=smtp)
        finally:
            app.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require((REPO / "client" / "dist" / "index.html").is_file(),
             "the web client is not built (make setup builds it)")
    db_path = tmp_path_factory.mktemp("e2e") / "e2e.db"
    with running_stack(f"sqlite:///{db_path}") as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running on this thread while
    it lives, which would break the asyncio tests that run after the browser tests."""
    _require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()
