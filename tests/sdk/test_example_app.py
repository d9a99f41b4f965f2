"""examples/fastapi-chat in a browser, beside a real tokenbank and the local Stripe server:
sign up in the example, buy 100 tokens with 4242 on tokenbank's hosted page, chat until
they run out, see the 402 on the example's page (the <OutOfTokens/> widget), and buy more
right there with the <BuyTokens/> widget inside it.

Replies cost 40 tokens here (``TOKENS_PER_REPLY``) so 100 tokens run out on the third.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from e2e.flows import fill_card
from reliability.harness import REPO, wait_until

from sdk_kit import HOST_ORIGIN, HOST_PORT, WIDGET_SECRET, TokenbankServer, create_api_key

EXAMPLE = REPO / "examples" / "fastapi-chat"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def widget_bundle() -> Path:
    """The page's bundle of @tokenbank/react (``make sdk-js`` builds it; built here when
    missing or older than the widgets' sources)."""
    bundle = EXAMPLE / "static" / "widgets" / "widgets.js"
    sources = [*(REPO / "sdk" / "js").glob("*/src/**/*.ts*"), EXAMPLE / "web" / "widgets.tsx"]
    newest = max(p.stat().st_mtime for p in sources)
    if not bundle.exists() or bundle.stat().st_mtime < newest:
        web = EXAMPLE / "web"
        link = web / "node_modules"
        if not link.exists():
            link.symlink_to(Path("../../../client/node_modules"))
        subprocess.run([str(link / ".bin" / "vite"), "build", "--config", "vite.config.ts",
                        "--logLevel", "error"], cwd=web, check=True, timeout=300)
    return bundle


@pytest.fixture
def example(tokenbank: TokenbankServer, widget_bundle: Path, tmp_path: Path) -> Iterator[str]:
    """The example app on HOST_PORT (the origin tokenbank lets purchases return to)."""
    env = os.environ | {
        "TOKENBANK_URL": tokenbank.url,
        "TOKENBANK_API_KEY": create_api_key(tokenbank.stack.db_url, "read,charge,checkout"),
        "TOKENBANK_WIDGET_SECRET": WIDGET_SECRET,
        "EXAMPLE_DB": str(tmp_path / "example.db"),
        "EXAMPLE_ORIGIN": HOST_ORIGIN,
        "TOKENS_PER_REPLY": "40",
    }
    log = (tmp_path / "example.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE),
         "--host", "127.0.0.1", "--port", str(HOST_PORT)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "example.log").read_text())
        try:
            return httpx.get(f"{HOST_ORIGIN}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 30, "the example app to answer")
        yield HOST_ORIGIN
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def expect_balance(page: Page, value: int) -> None:
    expect(page.get_by_test_id("token-balance")).to_have_text(str(value), timeout=20_000)


def sign_up(page: Page) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(f"ex{uuid.uuid4().hex[:8]}")
    page.get_by_label("Password").fill("example-pass-1")
    page.get_by_role("button", name="Sign up").click()


def chat(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("send-button").click()


def pay_with_4242(page: Page) -> None:
    expect(page.locator("input[name=cardnumber]")).to_be_visible()
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_test_id("pay-button").click()


@pytest.mark.e2e
@pytest.mark.parametrize("tokenbank", ["sqlite"], indirect=True)
def test_sign_up_buy_chat_run_out(browser: Browser, example: str) -> None:
    context = browser.new_context(base_url=example, viewport={"width": 1100, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        sign_up(page)
        expect_balance(page, 0)  # <TokenBalance/>, from tokenbank's widget endpoint

        page.get_by_test_id("buy-starter").click()  # tokenbank's hosted payment page
        expect(page).to_have_url(re.compile(r"/checkout#token="))
        pay_with_4242(page)
        expect(page.get_by_test_id("payment-success")).to_be_visible(timeout=30_000)
        expect(page).to_have_url(re.compile(rf"^{re.escape(example)}/"), timeout=30_000)
        expect_balance(page, 100)

        for n, text in enumerate(["hello", "again"], start=1):
            chat(page, text)
            expect(page.get_by_test_id("ai-message")).to_have_count(n)
        expect(page.get_by_test_id("ai-message").last).to_have_text("You said: again")
        expect_balance(page, 20)

        chat(page, "one more")  # 40 tokens needed, 20 left: the example's 402
        out = page.get_by_test_id("insufficient-tokens")  # <OutOfTokens/>
        expect(out).to_contain_text("This needs 40 tokens and you have 20 tokens.")
        expect(page.get_by_test_id("ai-message")).to_have_count(2)
        expect_balance(page, 20)

        out.get_by_test_id("tier-starter").click()  # <BuyTokens/> inside it, in the page
        pay_with_4242(page)
        expect(page.get_by_test_id("payment-success")).to_be_visible(timeout=30_000)
        expect_balance(page, 120)
        chat(page, "now it works")
        expect(page.get_by_test_id("ai-message")).to_have_count(3)
        expect(out).to_have_count(0)
        expect_balance(page, 80)
    finally:
        context.close()


def billing_lines() -> list[str]:
    """The example's billing code: billing.py without blank lines, comments and docstrings,
    plus app.py's lines marked ``# billing``."""
    source = (EXAMPLE / "billing.py").read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = [
        line for n, line in enumerate(source.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#") and n not in docstrings
        and line.strip() != "from __future__ import annotations"
    ]
    marked = [line for line in (EXAMPLE / "app.py").read_text().splitlines()
              if line.rstrip().endswith("# billing")]
    return lines + marked


def test_the_billing_fits_in_30_lines() -> None:
    counted = len(billing_lines())
    assert counted <= 30, counted
    readme = (EXAMPLE / "README.md").read_text()
    assert f"**{counted} lines of the app's own code**" in readme, "update the README's count"
