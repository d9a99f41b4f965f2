"""The offline model: instant, deterministic replies computed locally, no network.

It is the default when no AI key is configured, so a newcomer's chat works at once,
and it keeps benchmarks of the billing path free of network noise. Every reply says
plainly that it comes from the offline model, never passing for a real AI answer.
"""

from __future__ import annotations

import ast
import operator
import re
import zlib
from collections.abc import AsyncIterator, Callable, Sequence

from tokenbank.chat.providers.base import ChatTurn, ReplyReport

OFFLINE_LABEL = "[offline model]"
OFFLINE_MODEL = "offline-1"

_OPENERS = (
    "Got it.",
    "Thanks for the message.",
    "Noted.",
    "Understood.",
)
_WORDS_PER_CHUNK = 4
_MAX_EXPRESSION_CHARS = 120
_EXCERPT_CHARS = 60
# A cheap gate, so ordinary sentences never reach the parser.
_ARITHMETIC = re.compile(r"[\d\s.+\-*/%()]+")
_CHUNK = re.compile(r"\S+\s*")
# Digits joined by dashes are phone numbers, dates and ids, not subtractions.
_DASHED_DIGITS = re.compile(r"\d+(?:-\d+)+")
_QUESTION = re.compile(r"^(?:what\s+is|what's|calculate|compute)\s+", re.IGNORECASE)

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


class OfflineProvider:
    """An `AIProvider` that answers from local rules in microseconds."""

    is_offline = True

    def __init__(self) -> None:
        self.name = "offline"
        self.model = OFFLINE_MODEL

    # The offline model has one model and no output limit, and reports no usage (a
    # usage price charges it by the estimate of the delivered text).
    async def complete(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> str:
        if report is not None:
            report.finish_reason = "stop"
        return offline_reply(turns)

    async def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> AsyncIterator[str]:
        for chunk in _chunks(offline_reply(turns)):
            yield chunk
        if report is not None:
            report.finish_reason = "stop"

    async def aclose(self) -> None:
        return None


def offline_reply(turns: Sequence[ChatTurn]) -> str:
    """The reply to `turns`: the same turns always give the same reply."""
    user_turns = [turn.content for turn in turns if turn.role == "user"]
    message = user_turns[-1].strip() if user_turns else ""
    answer = _arithmetic_answer(message)
    if answer is not None:
        return f"{OFFLINE_LABEL} {answer}"
    opener = _OPENERS[_digest(turns) % len(_OPENERS)]
    return (
        f"{OFFLINE_LABEL} {opener} You wrote {_count(len(message.split()), 'word')}"
        f"{_excerpt(message)}; this is message {len(user_turns)} of this chat. "
        "This reply comes from the built-in offline model, which answers instantly "
        "without a real AI; it can also work out arithmetic such as 12 * (3 + 4). "
        "Set an AI provider key on the server for full answers."
    )


def _digest(turns: Sequence[ChatTurn]) -> int:
    # crc32, not hash(): hash() of a str changes between processes.
    state = 0
    for turn in turns:
        state = zlib.crc32(f"{turn.role}\x1f{turn.content}\x1e".encode(), state)
    return state


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _excerpt(message: str) -> str:
    if not message:
        return ""
    first_line = message.splitlines()[0]
    if len(first_line) <= _EXCERPT_CHARS and first_line == message:
        return f': "{message}"'
    return f', starting "{first_line[:_EXCERPT_CHARS].rstrip()}…"'


def _chunks(text: str) -> list[str]:
    words = _CHUNK.findall(text)
    return [
        "".join(words[i : i + _WORDS_PER_CHUNK]) for i in range(0, len(words), _WORDS_PER_CHUNK)
    ]


def _arithmetic_answer(message: str) -> str | None:
    expression = _QUESTION.sub("", message).rstrip("=? ").strip()
    if (
        len(expression) > _MAX_EXPRESSION_CHARS
        or not _ARITHMETIC.fullmatch(expression)
        or not any(op in expression for op in "+-*/%")
        or _DASHED_DIGITS.fullmatch(expression)
    ):
        return None
    try:
        value = _evaluate(ast.parse(expression, mode="eval").body)
    except ZeroDivisionError:
        return f"{expression} has no value: it divides by zero."
    except (SyntaxError, ValueError, OverflowError):
        return None
    shown = str(value) if isinstance(value, int) else f"{value:.12g}"
    return f"{expression} = {shown}"


def _evaluate(node: ast.expr) -> float:
    """Evaluate numbers, + - * / // % and parentheses; anything else is a ValueError."""
    # bool is an int subclass, and True + 1 is not arithmetic anyone typed.
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if not isinstance(node.value, bool):
            return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError("not plain arithmetic")
