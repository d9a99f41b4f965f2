"""Stripe's search (``GET /v1/{objects}/search?query=…``), the part apps use.

A query is clauses ``field:'value'`` joined by ``AND``; a field is one of the
object's plain fields the endpoint allows, or ``metadata['key']``. Matching is exact
(Stripe's ``~`` substring and ``-`` negation, ``OR`` and numeric comparisons are not
simulated and are refused). Results come newest first; one page (``next_page`` null).
Stripe's search is eventually consistent (new objects appear within about a minute);
here they appear at once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

from .errors import ParameterInvalid
from .objects import Obj
from .params import Params
from .store import Collection

_CLAUSE = re.compile(
    r"""^\s*(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)\s*:\s*['"]([^'"]*)['"]\s*$"""
)


def search(
    collection: Collection,
    p: Params,
    fields: tuple[str, ...],
    keep: Callable[[Obj], bool] = lambda _: True,
) -> Obj:
    query = p.text("query", required=True) or ""
    limit = p.integer("limit") or 10
    p.ignore("page")
    p.finish()
    tests = [_clause(clause, fields) for clause in re.split(r"\s+AND\s+", query.strip())]

    def matches(obj: Obj) -> bool:
        for field, meta_key, value in tests:
            actual: object = obj["metadata"].get(meta_key) if meta_key else obj.get(field)
            if isinstance(actual, bool):
                actual = "true" if actual else "false"
            if actual != value:
                return False
        return True

    found = [o for o in reversed(collection.all()) if keep(o) and matches(o)]
    return {
        "object": "search_result",
        "data": [copy.deepcopy(o) for o in found[:limit]],
        "has_more": len(found) > limit,
        "next_page": None,
        "url": f"{collection.url}/search",
    }


def _clause(clause: str, fields: tuple[str, ...]) -> tuple[str, str | None, str]:
    match = _CLAUSE.match(clause)
    if match is None or (match.group(2) is None and match.group(1) not in fields):
        raise ParameterInvalid(
            f"stripe_sim searches by {', '.join(fields)} and metadata['key'] (exact "
            f"matches joined by AND); it cannot parse: {clause!r}",
            "query",
        )
    return match.group(1), match.group(2), match.group(3)
