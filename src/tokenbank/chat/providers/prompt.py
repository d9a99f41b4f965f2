"""The turns sent to a provider: as much recent history as a size budget allows."""

from __future__ import annotations

from collections.abc import Sequence

from tokenbank.chat.providers.base import ChatTurn


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
    remaining = budget_chars - len(new_user_message) - sum(len(t.content) for t in system)
    kept: list[ChatTurn] = []
    for turn in reversed(history):
        if len(turn.content) > remaining:
            break
        kept.append(turn)
        remaining -= len(turn.content)
    kept.reverse()
    return [*system, *kept, new_turn]
