"""Choosing the turns to send: the most recent history that fits the budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokenbank.chat.providers import ChatTurn, build_prompt


def conversation(*contents: str) -> list[ChatTurn]:
    roles = ("user", "assistant")
    return [ChatTurn(roles[i % 2], text) for i, text in enumerate(contents)]  # type: ignore[arg-type]


def test_everything_fits_in_order_after_the_system_prompt() -> None:
    history = conversation("Hi", "Hello!", "Price?", "One token.")

    prompt = build_prompt(history, "Thanks", budget_chars=1000, system_prompt="Be brief.")

    assert prompt == [
        ChatTurn("system", "Be brief."),
        *history,
        ChatTurn("user", "Thanks"),
    ]


def test_oldest_turns_are_dropped_first_when_over_budget() -> None:
    history = conversation("a" * 40, "b" * 40, "c" * 10, "d" * 10)

    # 5 (new) + 25 left: "d" and "c" fit (20), "b" does not.
    prompt = build_prompt(history, "x" * 5, budget_chars=30, system_prompt=None)

    assert prompt == [history[2], history[3], ChatTurn("user", "x" * 5)]


def test_history_stops_at_the_first_turn_that_does_not_fit() -> None:
    # "tiny" would fit, but keeping it without the long turn after it would leave a gap.
    history = conversation("tiny", "L" * 100, "recent")

    prompt = build_prompt(history, "now", budget_chars=20, system_prompt=None)

    assert prompt == [history[2], ChatTurn("user", "now")]


def test_system_prompt_counts_against_the_budget() -> None:
    history = conversation("0123456789")

    with_system = build_prompt(history, "new", budget_chars=15, system_prompt="sys-prompt")
    without = build_prompt(history, "new", budget_chars=15, system_prompt=None)

    assert with_system == [ChatTurn("system", "sys-prompt"), ChatTurn("user", "new")]
    assert without == [history[0], ChatTurn("user", "new")]


def test_new_message_is_kept_whole_even_past_the_budget() -> None:
    long_message = "m" * 500

    prompt = build_prompt(conversation("Hi"), long_message, budget_chars=100, system_prompt="S")

    assert prompt == [ChatTurn("system", "S"), ChatTurn("user", long_message)]


def test_empty_history_gives_just_the_new_message() -> None:
    assert build_prompt([], "Hello", budget_chars=100, system_prompt=None) == [
        ChatTurn("user", "Hello")
    ]


@given(
    contents=st.lists(st.text(max_size=50), max_size=20),
    new=st.text(max_size=50),
    budget=st.integers(min_value=0, max_value=400),
)
def test_kept_history_is_the_longest_recent_stretch_within_budget(
    contents: list[str], new: str, budget: int
) -> None:
    history = conversation(*contents)

    prompt = build_prompt(history, new, budget_chars=budget, system_prompt=None)

    kept = prompt[:-1]
    assert prompt[-1] == ChatTurn("user", new)
    assert kept == history[len(history) - len(kept) :]
    used = sum(len(t.content) for t in prompt)
    assert used <= max(budget, len(new))
    if len(kept) < len(history):
        next_older = history[len(history) - len(kept) - 1]
        assert used + len(next_older.content) > budget
