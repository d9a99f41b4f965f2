"""The error hierarchy drawn in ``errors.py`` is the one the code has: every error class
is in the drawing, each error code belongs to one class, and the configuration errors
share one base."""

from __future__ import annotations

import importlib
import pkgutil

import tokenbank
from tokenbank import errors
from tokenbank.errors import AppError, ConfigError

#: Every invalid field answers ``validation_error``, pydantic's and the chat's own checks.
SHARED_CODES = {"validation_error"}


def _all_subclasses(base: type) -> set[type]:
    for info in pkgutil.walk_packages(tokenbank.__path__, "tokenbank."):
        if not any(part in info.name for part in (".migrations", ".stripe_sim")):
            importlib.import_module(info.name)
    found: set[type] = set()
    todo = [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_error_class_is_in_the_drawing() -> None:
    drawing = errors.__doc__ or ""
    public = {c for c in _all_subclasses(AppError) if not c.__name__.startswith("_")}
    missing = sorted(c.__qualname__ for c in public if c.__name__ not in drawing)
    assert not missing, f"draw these in errors.py's docstring: {missing}"
    config = {c.__name__ for c in _all_subclasses(ConfigError)}
    assert {
        "ProductionConfigError",
        "UnsupportedDatabaseURL",
        "ProviderNotConfigured",
        "HoldShorterThanAITimeout",
    } <= config
    assert not [name for name in config if name not in drawing]


def test_one_class_per_error_code() -> None:
    owners: dict[str, list[str]] = {}
    for cls in _all_subclasses(AppError) | {AppError}:
        if "code" in vars(cls):  # the class that names the code, not one inheriting it
            owners.setdefault(vars(cls)["code"], []).append(cls.__qualname__)
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert set(shared) <= SHARED_CODES, shared
    assert owners["idempotency_key_reused"] == ["IdempotencyKeyReused"]
