"""Who owns a transaction: the unit-of-work rule, checked over the source (docs/architecture.md, "Units of work").

Who owns a transaction is visible in the signature:

- A function that opens transactions — ``db.transaction()``, ``db.driver_transaction()``
  or ``db.run(work)`` — or takes a ``Database`` lives in a module allowed to own units of
  work: a domain's ``flows.py`` (it calls Stripe, an AI provider or Redis, or must commit
  part of its work whatever the outcome), ``deps.py`` (the request's unit), ``jobs.py``
  (background rounds), ``cli.py`` (one command, one unit), ``db.py`` (the mechanism) and
  ``app.py`` (the lifespan builds the Database and hands it to the jobs and workers).
- Everything else takes a session or a unit and never commits: ``.commit()`` appears only
  in ``db.py``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tokenbank"

#: Modules (relative to the package) that may own units of work, besides any flows.py.
OWNERS = {"deps.py", "jobs.py", "cli.py", "db.py", "app.py"}
#: Edges a domain may have of its own (its request dependencies, its CLI commands).
DOMAIN_EDGES = {"flows.py", "deps.py", "cli.py"}


#: Method names that open a unit of work on a Database.
OPENERS = {"transaction", "driver_transaction"}


@dataclass(frozen=True)
class Violation:
    where: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.what}"


def _receiver(node: ast.expr) -> str:
    return ast.unparse(node).lower()


def _opens_unit(call: ast.Call) -> str | None:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in OPENERS and not call.args:
        return f"{ast.unparse(func)}()"
    # ``.run(work)`` on a Database (db, self._db, job_db, ...): asyncio.run and friends
    # are called on other names.
    receiver = _receiver(func.value)
    if func.attr == "run" and (receiver.endswith("db") or receiver.endswith("database")):
        return f"{ast.unparse(func)}(...)"
    return None


def _takes_database(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    params = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    return any(
        p.annotation is not None and ast.unparse(p.annotation) == "Database" for p in params
    )


def violations(source: str, where: str, *, may_own: bool) -> list[Violation]:
    """Every break of the rule in one module's source."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "commit" and where != "db.py":
                found.append(Violation(where, node.lineno, f"commits: {ast.unparse(func)}()"))
            opened = None if may_own else _opens_unit(node)
            if opened:
                found.append(Violation(where, node.lineno, f"opens a unit of work: {opened}"))
        if (
            not may_own
            and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and _takes_database(node)
        ):
            found.append(Violation(where, node.lineno, f"{node.name}() takes a Database"))
    return found


def _may_own(relative: Path) -> bool:
    return relative.name in DOMAIN_EDGES or str(relative) in OWNERS


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] not in {"migrations", "stripe_sim"}
    )


def test_only_flows_and_the_edges_own_units_of_work() -> None:
    found: list[Violation] = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        found += violations(path.read_text(), str(relative), may_own=_may_own(relative))
    assert not found, "the unit-of-work rule is broken:\n" + "\n".join(map(str, found))


def test_the_rule_has_owners_to_check() -> None:
    """The scan sees the package and the flows it allows (it is not vacuously green)."""
    names = {str(p.relative_to(PACKAGE)) for p in _modules()}
    assert {"chat/flows.py", "auth/flows.py", "deps.py", "ledger/service.py"} <= names


def test_the_checker_catches_each_kind_of_break() -> None:
    service = '''
async def charge(db: Database, user_id: int) -> None:
    async with db.transaction() as session:
        await session.commit()

async def hot(self) -> None:
    await self._db.run(work)
    async with self.db.driver_transaction() as tx:
        pass
'''
    found = violations(service, "chat/service.py", may_own=False)
    assert sorted(v.what for v in found) == [
        "charge() takes a Database",
        "commits: session.commit()",
        "opens a unit of work: db.transaction()",
        "opens a unit of work: self._db.run(...)",
        "opens a unit of work: self.db.driver_transaction()",
    ]
    # The same code in a flow owns its units, but still never calls commit() itself.
    flow = violations(service, "chat/flows.py", may_own=True)
    assert [v.what for v in flow] == ["commits: session.commit()"]
    # asyncio.run and a session's own methods are not units of work.
    assert not violations("asyncio.run(main())\nawait session.execute(q)\n", "x.py", may_own=False)
