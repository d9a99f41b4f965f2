"""The turns sent to a provider: as much recent history as a size budget allows."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from operator import attrgetter

from tokenbank.chat.providers.base import ChatTurn


def history_budget(budget_chars: int, new_user_message: str, system_prompt: str | None) -> int:
    """The characters of history a prompt can take: the budget less the turns always sent.

    Below zero when those alone exceed it (then no history fits). The history read uses
    it to fetch only what :func:`build_prompt` will keep.
    """
    return budget_chars - len(new_user_message) - len(system_prompt or "")


def build_prompt(
    history: Sequence[ChatTurn],
    new_user_message: str,
    *,
    budget_chars: int,
    system_prompt: str | None,
) -> list[ChatTurn]:
    """The system prompt, the most recent history that fits, then the new message.

    The budget counts the characters of every turn's content. The system prompt and
    the new message are always included, whole, even past the budget (the caller
    validates the message length); history fills what is left, newest first, and
    stops at the first turn that does not fit, so the kept history is one unbroken
    recent stretch of the conversation. The result is in chronological order.
    """
    system = [ChatTurn("system", system_prompt)] if system_prompt else []
    new_turn = ChatTurn("user", new_user_message)
    remaining = history_budget(budget_chars, new_user_message, system_prompt)
    # Characters used by the newest 1, 2, ... turns; it only grows, so the turns that fit
    # are the newest ``fit`` (counted in C: the history is up to a hundred turns).
    used = list(accumulate(map(len, map(attrgetter("content"), reversed(history)))))
    fit = bisect_right(used, remaining)
    kept = history[len(history) - fit :] if fit else []
    return [*system, *kept, new_turn]
