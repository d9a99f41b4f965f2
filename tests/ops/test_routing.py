"""Which router answers a request does not depend on the order the routers are included
in (the app puts the service API first, to find its routes sooner): every operation of
the schema is matched by one included router only, and a wrong method by one at most,
the client's catch-all (last) aside."""

from __future__ import annotations

import re

from starlette.routing import Match

from tokenbank.app import create_app
from tokenbank.config import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_every_operation_is_answered_by_one_router_whatever_their_order() -> None:
    app = create_app(Settings(_env_file=None, app_env="development"))  # type: ignore[call-arg]
    entries = app.router.routes
    catch_all = len(entries) - 1
    assert getattr(entries[catch_all], "path", None) == "/{path:path}"
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in METHODS:
            scope = {
                "type": "http", "path": concrete, "method": method, "root_path": "",
                "headers": [], "query_string": b"",
            }
            matches = [entries.index(r) for r in entries if r.matches(scope)[0] != Match.NONE]
            owners = [i for i in matches if i != catch_all]
            if method.lower() in operations:
                full = [i for i in owners if entries[i].matches(scope)[0] == Match.FULL]
                assert len(full) == 1, f"{method} {path}: answered by routers {full}"
                checked += 1
            assert len(owners) <= 1, f"{method} {path}: routers {owners} all claim it"
    assert checked > 80
