"""Screenshots of every page, for the README: ``make screenshots``.

Starts the same stack as the browser tests (a fresh SQLite database, the local Stripe
server, ``tokenbank serve`` serving the built client), fills it the way people would —
sign-ups, card payments through the local Stripe server, chats, a refund, a dispute, an
admin's grant — and saves desktop (1280×860) and phone (375×812) PNGs into
``docs/screenshots/``. Everything happens today: no timestamps are faked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run as a script or with -m from the repo root
    sys.path.insert(0, str(TESTS))

import httpx  # noqa: E402
import stripe  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from e2e.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    running_stack,
)
from e2e.flows import fill_card  # noqa: E402
from reliability.harness import REPO  # noqa: E402
from stripe_sim import SimServer  # noqa: E402

OUT = REPO / "docs" / "screenshots"
PASSWORD = "screens-pass-123"
VIEWPORTS = {
    "desktop": {"width": 1280, "height": 860},
    "mobile": {"width": 375, "height": 812},
}
MAX_BYTES = 300_000


@dataclass
class Person:
    username: str
    token: str
    id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Seed:
    """What the pages will show, made through the public API and the local Stripe."""

    app: httpx.Client
    sim: SimServer
    people: dict[str, Person] = field(default_factory=dict)
    chats: dict[str, int] = field(default_factory=dict)

    def register(self, name: str) -> Person:
        r = self.app.post(
            "/api/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        person = Person(name, body["access_token"], int(body["user"]["id"]))
        self.people[name] = person
        return person

    def buy(self, person: Person, tier: str, pm: str = "pm_card_visa") -> str:
        """Pay as the browser does (publishable key + client secret), then let the app check."""
        intent = self.app.post(
            "/api/payment/create-payment-intent", json={"tier": tier}, headers=person.headers
        ).json()
        browser = stripe.StripeClient(PUBLISHABLE_KEY, base_addresses={"api": self.sim.url})
        browser.v1.payment_intents.confirm(
            intent["payment_intent_id"],
            {
                "payment_method": pm,
                "client_secret": intent["client_secret"],
                "return_url": f"{self.app.base_url}/payment",
            },
        )
        r = self.app.post(
            "/api/payment/confirm-payment",
            json={"payment_intent_id": intent["payment_intent_id"]},
            headers=person.headers,
        )
        assert r.status_code == 200, r.text
        return str(intent["payment_intent_id"])

    def refund(self, payment_intent: str, cents: int) -> None:
        server = stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.sim.url})
        server.v1.refunds.create({"payment_intent": payment_intent, "amount": cents})
        self.sim.wait_webhooks_idle(30)

    def chat(self, person: Person, title: str, messages: list[str]) -> int:
        chat = self.app.post("/api/chats", json={"title": title}, headers=person.headers).json()
        for i, content in enumerate(messages):
            r = self.app.post(
                f"/api/chats/{chat['id']}/generate",
                json={"content": content},
                headers=person.headers | {"Idempotency-Key": f"seed-{chat['id']}-{i}"},
            )
            assert r.status_code == 200, r.text
        self.chats[f"{person.username}:{title}"] = int(chat["id"])
        return int(chat["id"])

    def grant(self, admin: Person, person: Person, amount: int, reason: str) -> None:
        r = self.app.post(
            f"/api/admin/users/{person.id}/tokens",
            json={"amount": amount, "reason": reason},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text


def promote(person: Person, db_url: str) -> None:
    """The operator's way: ``tokenbank users promote ID --yes`` makes an account an admin."""
    subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "users", "promote", str(person.id), "--yes"],
        env=os.environ | {"DATABASE_URL": db_url},
        check=True,
        capture_output=True,
        timeout=60,
    )


def seed(s: Seed, db_url: str) -> None:
    ops = s.register("ops")
    promote(ops, db_url)
    ada = s.register("ada")
    grace = s.register("grace")
    linus = s.register("linus")
    margaret = s.register("margaret")
    s.register("alan")
    s.register("newbie")

    s.buy(ada, "standard")
    s.buy(grace, "starter")
    s.buy(grace, "premium")
    refunded = s.buy(linus, "starter")
    s.buy(margaret, "standard", pm="pm_card_createDispute")
    s.sim.wait_webhooks_idle(30)
    s.refund(refunded, 250)

    s.chat(
        ada,
        "Trip to Kyoto",
        [
            "Plan three days in Kyoto in April, with temples and food.",
            "Which temples are best early in the morning?",
            "And where should we eat near Nishiki Market?",
        ],
    )
    s.chat(ada, "Sourdough", ["Why did my sourdough come out flat?", "How warm should it proof?"])
    s.chat(
        grace,
        "Compiler notes",
        [f"Explain step {i} of a compiler pipeline." for i in range(1, 31)],
    )
    s.chat(linus, "Kernel", [f"Question {i} about schedulers." for i in range(1, 13)])
    s.chat(margaret, "Apollo", [f"Checklist item {i}." for i in range(1, 6)])
    s.grant(ops, ada, 25, "support ticket 42: two replies failed")
    s.grant(ops, linus, -3, "duplicate test credit")
    # The person who runs out: all ten sign-up tokens spent.
    s.chat(s.people["newbie"], "First steps", [f"Tell me fact {i}." for i in range(1, 11)])


def fail_a_webhook(s: Seed) -> None:
    """A real event Stripe could not deliver, arriving while Stripe's API is unreachable.

    With webhooks dropped, a payment is confirmed at Stripe; its ``payment_intent.succeeded``
    event stays undelivered. Then the local Stripe server stops and the event is delivered
    twice, signed as Stripe signs: the app records it and answers 2xx, and its webhook
    worker, unable to look the payment up, records the attempt as failed (to be retried
    after a backoff) — what the inbox's "process again" is for.
    """
    alan = s.people["alan"]
    s.sim.set_faults(drop_all=True)
    pi = s.buy(alan, "starter")
    server = stripe.StripeClient(SECRET_KEY, base_addresses={"api": s.sim.url})
    events = server.v1.events.list({"type": "payment_intent.succeeded", "limit": 100})
    event = next(e for e in events.data if e.data.object["id"] == pi)
    payload = json.dumps(event.to_dict()).encode()
    s.sim.stop()
    answers = []
    for _ in range(2):
        stamp = int(time.time())
        mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
        r = s.app.post(
            "/api/payment/webhook",
            content=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}",
            },
        )
        assert r.status_code == 200, (r.status_code, r.text)
        answers.append(r.json()["status"])
    assert answers == ["received", "duplicate"], answers
    ops = s.people["ops"]
    deadline = time.monotonic() + 60
    while not any(e["id"] == event.id for e in s.app.get(
        "/api/admin/webhooks", params={"status": "failed"}, headers=ops.headers
    ).json()):
        assert time.monotonic() < deadline, "the worker never recorded the failed attempt"
        time.sleep(0.2)  # polling the worker, which retries the lookup in another thread


@contextmanager
def stack_on_a_temporary_database() -> Iterator[tuple[str, SimServer, str]]:
    with tempfile.TemporaryDirectory(prefix="tokenbank-screens-") as tmp:
        with running_stack(f"sqlite:///{Path(tmp) / 'screens.db'}") as stack:
            yield stack.url, stack.sim, stack.db_url


class Shooter:
    """One browser; a fresh context per person and viewport; PNGs with stable names."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.saved: list[Path] = []

    @contextmanager
    def page(self, viewport: str, person: str | None = None) -> Iterator[Page]:
        mobile = viewport == "mobile"
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
            device_scale_factor=1,
            is_mobile=mobile,
            has_touch=mobile,
            reduced_motion="reduce",
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        try:
            if person:
                sign_in(page, person)
            yield page
        finally:
            context.close()

    def shot(self, page: Page, name: str, viewport: str, full_page: bool = False) -> None:
        path = OUT / f"{name}-{viewport}.png"
        # Nothing keyboard-focused or hovered in a picture; a full page starts at its top.
        page.evaluate(
            "document.activeElement instanceof HTMLElement && document.activeElement.blur()"
        )
        page.mouse.move(0, 0)
        if full_page:
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        self.saved.append(path)


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat"))
    expect(page.get_by_test_id("token-balance").first).to_have_text(re.compile(r"\d"))


def shoot_public(sh: Shooter, viewport: str) -> None:
    with sh.page(viewport) as page:
        page.goto("/login")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        sh.shot(page, "login", viewport)
        page.goto("/register")
        expect(page.get_by_role("button", name="Create account")).to_be_visible()
        sh.shot(page, "register", viewport)


def shoot_chat(sh: Shooter, s: Seed, viewport: str) -> None:
    with sh.page(viewport, "ada") as page:
        page.goto(f"/chat/{s.chats['ada:Trip to Kyoto']}")
        expect(page.get_by_test_id("ai-message")).to_have_count(3)
        page.get_by_test_id("chat-input").fill("Is a rail pass worth it?")
        sh.shot(page, "chat", viewport)
    with sh.page(viewport, "newbie") as page:
        page.goto(f"/chat/{s.chats['newbie:First steps']}")
        expect(page.get_by_test_id("ai-message")).to_have_count(10)
        page.get_by_test_id("chat-input").fill("One more fact, please?")
        page.get_by_test_id("send-button").click()
        expect(page.get_by_test_id("insufficient-tokens")).to_be_visible()
        page.get_by_test_id("insufficient-tokens").scroll_into_view_if_needed()
        sh.shot(page, "chat-out-of-tokens", viewport)


def shoot_payment(sh: Shooter, viewport: str) -> None:
    with sh.page(viewport, "grace") as page:
        page.get_by_test_id("nav-payment").first.click()
        expect(page.get_by_test_id("tier-standard")).to_be_visible()
        sh.shot(page, "payment", viewport, full_page=True)
        page.get_by_test_id("tier-starter").click()
        expect(page.locator("input[name=cardnumber]")).to_be_visible()
        fill_card(page, "4242 4242 4242 4242")
        sh.shot(page, "payment-card", viewport, full_page=True)
        page.get_by_test_id("pay-button").click()
        expect(page.get_by_test_id("payment-success")).to_be_visible()
        sh.shot(page, "payment-success", viewport)


def shoot_history(sh: Shooter, viewport: str) -> None:
    with sh.page(viewport, "ada") as page:
        page.get_by_test_id("nav-history").first.click()
        expect(page.get_by_test_id("transaction-row").first).to_be_visible()
        sh.shot(page, "history", viewport, full_page=True)


def shoot_admin(sh: Shooter, s: Seed, viewport: str) -> None:
    with sh.page(viewport, "ops") as page:
        page.goto("/admin")
        expect(
            page.locator("[data-testid=admin-chart-daily] .recharts-bar-rectangle").first
        ).to_be_visible()
        expect(
            page.locator("[data-testid=admin-chart-top-spenders] .recharts-bar-rectangle").first
        ).to_be_visible()
        sh.shot(page, "admin-overview", viewport, full_page=True)

        page.get_by_test_id("admin-tab-users").click()
        expect(page.get_by_test_id("admin-user-row").first).to_be_visible()
        sh.shot(page, "admin-users", viewport, full_page=True)

        page.goto(f"/admin/users/{s.people['ada'].id}")
        expect(page.get_by_test_id("admin-ledger-row").first).to_be_visible()
        page.get_by_test_id("admin-grant-amount").fill("10")
        page.get_by_test_id("admin-grant-reason").fill("Apology for the outage on Tuesday")
        sh.shot(page, "admin-user", viewport, full_page=True)

        page.goto("/admin/payments")
        expect(page.get_by_test_id("admin-payment-row").first).to_be_visible()
        sh.shot(page, "admin-payments", viewport, full_page=True)

        page.goto("/admin/webhooks")
        expect(page.get_by_test_id("admin-webhook-row").first).to_be_visible()
        # The inbox is long: the first screenful shows the failed event and its button.
        sh.shot(page, "admin-webhooks", viewport)


def take_all(base_url: str, s: Seed) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            sh = Shooter(browser, base_url)
            steps: list[Callable[[str], None]] = [
                lambda v: shoot_public(sh, v),
                lambda v: shoot_chat(sh, s, v),
                lambda v: shoot_payment(sh, v),
                lambda v: shoot_history(sh, v),
            ]
            for step in steps:
                for viewport in VIEWPORTS:
                    step(viewport)
            s.sim.wait_webhooks_idle(30)
            fail_a_webhook(s)  # stops the local Stripe server: the admin pages come last
            for viewport in VIEWPORTS:
                shoot_admin(sh, s, viewport)
            return sh.saved
        finally:
            browser.close()


def main() -> int:
    if not (REPO / "client" / "dist" / "index.html").is_file():
        print("the web client is not built: cd client && npm run build", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 1
    with stack_on_a_temporary_database() as (url, sim, db_url):
        with httpx.Client(base_url=url, timeout=60) as client:
            s = Seed(client, sim)
            seed(s, db_url)
            sim.wait_webhooks_idle(30)
            saved = take_all(url, s)
    too_big = [p for p in saved if p.stat().st_size > MAX_BYTES]
    for path in saved:
        print(f"{path.relative_to(REPO)}  {path.stat().st_size // 1024} KB")
    if too_big:
        print(f"over {MAX_BYTES // 1000} KB: {', '.join(p.name for p in too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
