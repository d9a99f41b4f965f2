"""The price book's shape, its validation, and the arithmetic of a price.

A book is JSON::

    {"models": {"<model>": {"per_reply": 1}},
     "features": {"tts_clip": 20}}

or, for a usage-priced model (tokens per 1000 model tokens)::

    {"models": {"<model>": {"per_1k_input": 500, "per_1k_output": 1000,
                            "per_1k_cached": 100, "minimum": 1}}}

A usage price is the ceiling of the sum of its parts, never below its ``minimum``.
Everything here is pure: no database, no configuration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The most tokens one price may name (keeps every product well inside 64 bits).
MAX_PRICE = 1_000_000_000
MAX_MODELS = 200
MAX_NAME = 100


class BookInvalid(ValueError):
    """A price book that cannot be used; ``str()`` says which field and why."""


@dataclass(frozen=True)
class PerReply:
    tokens: int
    name: str | None = None

    kind = "per_reply"


@dataclass(frozen=True)
class UsagePrice:
    per_1k_input: int
    per_1k_output: int
    per_1k_cached: int
    minimum: int
    name: str | None = None

    kind = "usage"


Price = PerReply | UsagePrice


@dataclass(frozen=True)
class Usage:
    """Model tokens a reply used, as the provider reported (or as estimated)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class Book:
    """One version of the price book, parsed."""

    version: int
    models: Mapping[str, Price]
    features: Mapping[str, int]
    raw: Mapping[str, Any]

    def price(self, model: str) -> Price | None:
        return self.models.get(model)


def _whole(value: object, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BookInvalid(f"{where} must be a whole number")
    if not minimum <= value <= MAX_PRICE:
        raise BookInvalid(f"{where} must be between {minimum} and {MAX_PRICE}")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or value != value.strip():
        raise BookInvalid(f"{where} must be a name of 1 to {MAX_NAME} characters")
    return value


USAGE_FIELDS = ("per_1k_input", "per_1k_output", "per_1k_cached", "minimum")


def parse_price(model: str, entry: object) -> Price:
    where = f"models.{model}"
    if not isinstance(entry, dict):
        raise BookInvalid(f"{where} must be an object")
    name = entry.get("name")
    if name is not None:
        name = _name(name, f"{where}.name")
    known = {"name", "per_reply", *USAGE_FIELDS}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BookInvalid(f"{where} has unknown field {unknown[0]!r}")
    if "per_reply" in entry:
        if any(f in entry for f in USAGE_FIELDS):
            raise BookInvalid(f"{where} is either per_reply or usage-priced, not both")
        return PerReply(_whole(entry["per_reply"], f"{where}.per_reply"), name)
    if "per_1k_input" not in entry or "per_1k_output" not in entry:
        raise BookInvalid(f"{where} needs per_reply, or per_1k_input and per_1k_output")
    price = UsagePrice(
        per_1k_input=_whole(entry["per_1k_input"], f"{where}.per_1k_input"),
        per_1k_output=_whole(entry["per_1k_output"], f"{where}.per_1k_output", minimum=1),
        per_1k_cached=_whole(
            entry.get("per_1k_cached", entry["per_1k_input"]), f"{where}.per_1k_cached"
        ),
        minimum=_whole(entry.get("minimum", 1), f"{where}.minimum"),
        name=name,
    )
    return price


def parse(raw: object, version: int = 0) -> Book:
    """Validate ``raw`` (decoded JSON) into a :class:`Book`; :class:`BookInvalid` if not."""
    if not isinstance(raw, dict):
        raise BookInvalid("the price book must be an object")
    unknown = sorted(set(raw) - {"models", "features"})
    if unknown:
        raise BookInvalid(f"unknown field {unknown[0]!r}")
    models_raw = raw.get("models")
    if not isinstance(models_raw, dict) or not models_raw:
        raise BookInvalid("models must be an object naming at least one model")
    if len(models_raw) > MAX_MODELS:
        raise BookInvalid(f"at most {MAX_MODELS} models")
    models = {_name(m, "a model id"): parse_price(m, e) for m, e in models_raw.items()}
    features_raw = raw.get("features", {})
    if not isinstance(features_raw, dict):
        raise BookInvalid("features must be an object")
    features = {
        _name(f, "a feature id"): _whole(p, f"features.{f}") for f, p in features_raw.items()
    }
    return Book(version=version, models=models, features=features, raw=raw)


def from_reply_costs(
    default_model: str, reply_cost: int, model_costs: Mapping[str, int]
) -> dict[str, Any]:
    """The book that ``REPLY_COST_TOKENS`` and ``MODEL_COSTS`` describe (no ``PRICE_BOOK``)."""
    models: dict[str, Any] = {
        default_model: {"per_reply": model_costs.get(default_model, reply_cost)}
    }
    for model, cost in model_costs.items():
        models[model] = {"per_reply": cost}
    return {"models": models}


# --- the arithmetic ----------------------------------------------------------------

#: A prompt's size in model tokens is estimated (no tokenizer is shipped) from its UTF-8
#: bytes: about 4 bytes make a token in English text and 3 bytes (one character) in
#: Chinese or Japanese, so a third of the bytes overestimates both. Each message adds
#: the chat format's few framing tokens.
BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_PROMPT = 3


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN)


def estimate_prompt(contents: Sequence[str]) -> int:
    """A generous estimate of a prompt's input tokens, given its messages' texts."""
    return TOKENS_PER_PROMPT + sum(TOKENS_PER_MESSAGE + estimate_tokens(c) for c in contents)


def usage_cost(price: UsagePrice, usage: Usage) -> int:
    """Tokens charged for ``usage``: the ceiling of the sum, at least ``minimum``."""
    cached = min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0))
    fresh = max(usage.input_tokens, 0) - cached
    thousandths = (
        fresh * price.per_1k_input
        + cached * price.per_1k_cached
        + max(usage.output_tokens, 0) * price.per_1k_output
    )
    return max(price.minimum, -(-thousandths // 1000))


@dataclass(frozen=True)
class Quote:
    """What a reply may cost before it is asked for.

    ``min`` is the cost of the shortest possible reply (the prompt alone), ``max`` what is
    held: the prompt plus ``max_tokens`` of output, within ``cap``. ``max_tokens`` is what
    the provider is told (None: its own default, for a per-reply price).
    """

    min: int
    max: int
    cap: int | None
    max_tokens: int | None
    input_tokens: int


class CapTooLow(ValueError):
    def __init__(self, cap: int, required: int) -> None:
        super().__init__(f"the cap {cap} is below the least this reply can cost ({required})")
        self.cap = cap
        self.required = required


def quote(price: Price, prompt: Sequence[str], *, max_output_tokens: int, cap: int | None) -> Quote:
    """The range a reply to ``prompt`` costs at ``price``, held within ``cap``."""
    if isinstance(price, PerReply):
        if cap is not None and cap < price.tokens:
            raise CapTooLow(cap, price.tokens)
        return Quote(price.tokens, price.tokens, cap, None, 0)
    input_tokens = estimate_prompt(prompt)
    least = usage_cost(price, Usage(input_tokens, 1))
    most = usage_cost(price, Usage(input_tokens, max_output_tokens))
    max_tokens = max_output_tokens
    if cap is not None and cap < most:
        if cap < least:
            raise CapTooLow(cap, least)
        # The most output whose cost fits the cap, given the prompt's.
        room = cap * 1000 - input_tokens * price.per_1k_input
        max_tokens = max(1, min(max_output_tokens, room // price.per_1k_output))
        most = min(cap, usage_cost(price, Usage(input_tokens, max_tokens)))
    return Quote(least, most, cap, max_tokens, input_tokens)


def charge_for(
    price: Price,
    held: int,
    usage: Usage | None,
    *,
    input_estimate: int,
    delivered: str,
) -> int:
    """What a finished (or cut) reply is charged: by usage, never above the hold.

    A per-reply price charges what was held. A usage price charges the provider's usage;
    when the provider reported none, the prompt's estimate and the delivered text's.
    """
    if isinstance(price, PerReply):
        return held
    if usage is None:
        usage = Usage(input_estimate, estimate_tokens(delivered))
    return max(0, min(held, usage_cost(price, usage)))
