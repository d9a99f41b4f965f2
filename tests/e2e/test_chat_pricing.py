"""Priced replies in a real browser: the model picker, the quote before sending, a reply
rendered as Markdown, and what the reply cost.

The app talks to a fake OpenAI-compatible server (the real ``openai`` SDK on the wire)
that answers in Markdown and reports usage; the price book prices its model by usage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from chat.fake_openai import FakeOpenAI
from chat.harness import served_fake_openai
from e2e.conftest import Stack, running_stack
from e2e.flows import balance, expect_balance, send_message, sign_in

SIGNUP_BONUS = 50  # enough to hold a usage-priced reply's upper bound
USAGE_MODEL = "gpt-test"
FLAT_MODEL = "gpt-flat"
# Tokens per 1,000 model tokens: 120 in + 30 out (the fake's usage) costs ceil(12 + 3) = 15.
PRICE_BOOK = {
    "models": {
        USAGE_MODEL: {"name": "GPT Test", "per_1k_input": 100, "per_1k_output": 100, "minimum": 1},
        FLAT_MODEL: {"name": "GPT Flat", "per_reply": 2},
    }
}
# The fake reports the same usage whatever it is sent: about what the app's estimate of
# this test's prompt (system prompt, history, message) comes to, so the charge can be
# checked against the quote's range.
USAGE = (120, 30)
USAGE_COST = 15

MARKDOWN_REPLY = """Here is what you asked for:

- first item
- second item
- third item

| Plan | Tokens |
| ---- | ------ |
| Basic | 300 |
| Pro | 1000 |

```python
def add(a, b):
    return a + b
```

<img src="x" onerror="alert(1)"> stays text.
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with served_fake_openai() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[Stack]:
    db_path = tmp_path_factory.mktemp("e2e-pricing") / "pricing.db"
    env = {
        "AI_PROVIDER": "openai",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_MODEL": USAGE_MODEL,
        "AI_TIMEOUT_S": "10",
        # A small output ceiling keeps a reply's hold (and the quote's maximum) small.
        "AI_MAX_OUTPUT_TOKENS": "40",
        "PRICE_BOOK": json.dumps(PRICE_BOOK),
        "SIGNUP_BONUS_TOKENS": str(SIGNUP_BONUS),
    }
    with running_stack(f"sqlite:///{db_path}", env) as s:
        yield s


def test_model_picker_quote_markdown_reply_and_its_cost(
    page: Page, stack: Stack, fake: FakeOpenAI
) -> None:
    fake.set(text=MARKDOWN_REPLY, usage=USAGE, chunks=4)
    user = stack.register()
    sign_in(page, user["user"]["username"], user["password"])
    expect_balance(page, SIGNUP_BONUS)

    # The picker lists the price book's models with their prices.
    picker = page.get_by_test_id("model-picker")
    expect(picker.locator("option")).to_have_count(2)
    expect(picker.locator(f"option[value='{FLAT_MODEL}']")).to_contain_text("2 tokens")
    expect(picker).to_have_value(USAGE_MODEL)  # the server's default

    # The first message, on the flat model, makes the chat (a quote needs a chat).
    picker.select_option(FLAT_MODEL)
    send_message(page, "Hello there.")
    expect(page).to_have_url(re.compile(r"/chat/\d+"))
    expect(page.get_by_test_id("ai-message")).to_have_count(1)
    expect(page.get_by_test_id("message-cost").last).to_have_text(re.compile(r"^\s*2 tokens\s*$"))
    expect_balance(page, SIGNUP_BONUS - 2)
    assert fake.requests[-1]["model"] == FLAT_MODEL
    # The flat model's quote is its one price.
    page.get_by_test_id("chat-input").fill("And once more, please.")
    quote = page.get_by_test_id("quote")
    expect(quote).to_have_text(re.compile(r"≈\s*2 tokens"))

    # The usage-priced model: typing shows a range.
    picker.select_option(USAGE_MODEL)
    expect(picker).to_have_value(USAGE_MODEL)
    page.get_by_test_id("chat-input").fill("Show me a list, a table and some code.")
    expect(quote).to_contain_text(re.compile(r"≈\s*\d+\s*–\s*\d+ tokens"))
    low, high = (int(n) for n in re.findall(r"\d+", quote.inner_text())[:2])
    assert 1 <= low <= high <= SIGNUP_BONUS - 2

    page.get_by_test_id("send-button").click()
    expect(page.get_by_test_id("ai-message")).to_have_count(2)
    reply = page.get_by_test_id("ai-message").last

    # The reply renders as Markdown: a list, a table, a code block with a copy button.
    expect(reply.locator("ul > li")).to_have_count(3)
    expect(reply.locator("table tr")).to_have_count(3)
    expect(reply.locator("table")).to_contain_text("Basic")
    expect(reply.locator("pre code")).to_contain_text("return a + b")
    expect(reply.get_by_test_id("copy-code")).to_be_visible()
    # Raw HTML is not rendered as HTML.
    expect(reply.locator("img")).to_have_count(0)
    expect(reply).to_contain_text("stays text")

    # Its cost: the usage the provider reported, at the model's price, within the quote.
    expect(page.get_by_test_id("message-cost").last).to_have_text(
        re.compile(rf"^\s*{USAGE_COST} tokens\s*$")
    )
    assert low <= USAGE_COST <= high
    expect_balance(page, SIGNUP_BONUS - 2 - USAGE_COST)
    assert fake.requests[-1]["model"] == USAGE_MODEL
    page.reload()  # the server remembers the cost and the model
    expect(page.get_by_test_id("message-cost").last).to_have_text(
        re.compile(rf"^\s*{USAGE_COST} tokens\s*$")
    )
    expect(page.get_by_test_id("model-picker")).to_have_value(USAGE_MODEL)
    assert balance(page) == SIGNUP_BONUS - 2 - USAGE_COST
