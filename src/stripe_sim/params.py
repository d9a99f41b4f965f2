"""Stripe's request parameters: nested form keys and typed, checked access.

Stripe bodies are ``application/x-www-form-urlencoded`` with bracketed keys:
``metadata[user_id]=1``, ``expand[]=latest_charge``, ``payment_method_types[0]=card``.
:func:`decode_form` turns them into nested dicts and lists; :class:`Params` reads
values with Stripe's type rules and reports every parameter nobody read as
``parameter_unknown``, as Stripe does.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import (
    FeatureNotSimulated,
    ParameterInvalid,
    ParameterMissing,
    ParameterUnknown,
    StripeApiError,
)

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


class MalformedParameters(StripeApiError):
    validation = True


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [head]
    rest = "[" + rest
    parts = _KEY_PART.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest or not head:
        raise MalformedParameters(f"Invalid parameter name: {key}", param=key)
    return [head, *parts]


def _insert(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            # "a[]" appends: give it the next free numeric key.
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            if isinstance(node.get(part), dict):
                raise MalformedParameters(f"Invalid parameter: {key}", param=key)
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise MalformedParameters(f"Invalid parameter: {key}", param=key)
        node = child


def _listify(value: Any, key: str = "") -> Any:
    """Dicts keyed only by indexes ("0", "1", ...) become lists, recursively.

    Metadata is exempt: ``metadata[42]=x`` is a key named "42", not a list.
    """
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_form(raw: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        _insert(root, _split_key(key), value, key)
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """Form bodies as Stripe's; JSON objects are accepted too (convenient from JS)."""
    text = raw.decode("utf-8") if raw else ""
    if "application/json" in content_type and text.strip():
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedParameters(f"Invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedParameters("The JSON body must be an object.")
        return {k: _stringify(v) for k, v in data.items()}
    return decode_form(text)


def _stringify(value: Any) -> Any:
    """JSON scalars become the strings a form body would have carried."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return value


class Params:
    """Typed reads of one (possibly nested) parameter dict, tracking what was read."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix
        self._read: set[str] = set()
        self._children: list[Params] = []

    def name(self, key: str) -> str:
        return f"{self._prefix}[{key}]" if self._prefix else key

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str) -> Any:
        self._read.add(key)
        return self._data.get(key)

    def refuse(self, *keys: str, on: str = "") -> None:
        """Parameters of Stripe's that the simulator does not model: 400 when one is given
        (``on`` names where, in the message)."""
        for key in keys:
            if self.has(key):
                where = f" on {on}" if on else ""
                message = f"stripe_sim does not simulate '{key}'{where}."
                raise FeatureNotSimulated(message, param=key)

    def ignore(self, *keys: str) -> None:
        """Accept parameters Stripe knows but the simulator has no use for."""
        self._read.update(keys)

    def text(
        self, key: str, *, required: bool = False, choices: tuple[str, ...] = ()
    ) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise ParameterMissing(self.name(key))
            return None
        if not isinstance(value, str):
            raise ParameterInvalid(f"Invalid string: {json.dumps(value)}", self.name(key))
        if choices and value not in choices and value != "":
            raise ParameterInvalid(
                f"Invalid {self.name(key)}: must be one of {', '.join(choices)}",
                self.name(key),
                code="parameter_invalid_string",
            )
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise ParameterInvalid(
                f"Invalid integer: {value}", self.name(key), code="parameter_invalid_integer"
            ) from None

    def boolean(self, key: str) -> bool | None:
        value = self.text(key)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise ParameterInvalid(f"Invalid boolean: {value}", self.name(key))
        return value == "true"

    def _array(self, key: str, item: type) -> list[Any] | None:
        """An array whose every element is an ``item`` ("" sends an empty one)."""
        value = self.raw(key)
        if value is None:
            return None
        if value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise ParameterInvalid(f"Invalid array: {self.name(key)}", self.name(key))
        return list(value)

    def str_list(self, key: str) -> list[str] | None:
        return self._array(key, str)

    def nested(self, key: str) -> Params | None:
        value = self.raw(key)
        if value is None:
            return None
        if value == "":
            return Params({}, self.name(key))
        if not isinstance(value, dict):
            raise ParameterInvalid(f"Invalid object: {self.name(key)}", self.name(key))
        child = Params(value, self.name(key))
        self._children.append(child)
        return child

    def object_list(self, key: str) -> list[Params] | None:
        """An array of hashes (``items[0][price]=...``), each read as nested params."""
        value = self._array(key, dict)
        if value is None:
            return None
        children = [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]
        self._children.extend(children)
        return children

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """Stripe's metadata patch: None = untouched, "" value = delete that key."""
        value = self.raw(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ParameterInvalid("Invalid metadata: must be a hash of strings", key)
        for k, v in value.items():
            if len(k) > 40 or len(v) > 500:
                raise ParameterInvalid(
                    "Metadata keys are limited to 40 characters and values to 500.", f"{key}[{k}]"
                )
        return dict(value)

    def unread(self) -> list[str]:
        names = [self.name(k) for k in self._data if k not in self._read]
        for child in self._children:
            names.extend(child.unread())
        return names

    def finish(self) -> None:
        """Raise ``parameter_unknown`` for the first parameter nobody read."""
        unread = self.unread()
        if unread:
            raise ParameterUnknown(unread[0])


def apply_metadata(current: dict[str, str], patch: dict[str, str] | None) -> dict[str, str]:
    if patch is None:
        return current
    if not patch:
        return {}
    merged = dict(current)
    for k, v in patch.items():
        if v == "":
            merged.pop(k, None)
        else:
            merged[k] = v
    if len(merged) > 50:
        raise ParameterInvalid("You can have at most 50 metadata keys.", "metadata")
    return merged
