"""``python -m bench run --quick|--full`` (``make bench-quick`` / ``make bench``).

Also: ``python -m bench profile`` (pyinstrument over the charge path),
``python -m bench ratelimit`` (where a rate-limit counter costs least) and
``python -m bench clean`` (drop bench databases a killed run left behind).
Results: ``bench/results/latest.json`` and the "Latest run" block of docs/benchmarks.md;
with ``--no-doc`` (a trial run, say before/after a change) only
``bench/results/trial-<mode>.json``, which git ignores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bench import report
from bench.common import FULL, QUICK, Mode, drop_leftover_databases, log, machine_info, run_async

SECTIONS = ("ledger", "sqlite", "scale", "billing", "chat", "webhooks", "sdk")


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


async def _section(name: str, mode: Mode) -> dict[str, Any]:
    from bench import billing, chat, ledger, scale, sdk, webhooks

    runners: dict[str, Callable[[Mode], Awaitable[dict[str, Any]]]] = {
        "ledger": ledger.bench_ledger,
        "sqlite": ledger.bench_sqlite,
        "scale": scale.bench_scale,
        "billing": billing.bench_billing,
        "chat": chat.bench_chat,
        "webhooks": webhooks.bench_webhooks,
        "sdk": sdk.bench_sdk,
    }
    return await runners[name](mode)


async def run(mode: Mode, sections: list[str], command: str, write_doc: bool) -> int:
    started = time.perf_counter()
    await drop_leftover_databases()
    details: dict[str, Any] = {
        "mode": mode.name,
        "runs": mode.runs,
        "command": command,
        "commit": _commit(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**await machine_info(), "loadavg": [round(x, 2) for x in os.getloadavg()]},
    }
    failed = 0
    for name in sections:
        log(f"--- {name} ({mode.name})")
        t0 = time.perf_counter()
        try:
            details[name] = await _section(name, mode)
        except Exception as exc:  # one broken section must not lose the others' numbers
            traceback.print_exc()
            details[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed += 1
        details[name]["elapsed_s"] = round(time.perf_counter() - t0, 1)
        log(f"--- {name} done in {details[name]['elapsed_s']} s")
    details["elapsed_s"] = round(time.perf_counter() - started, 1)
    details["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _keep_sections_not_rerun(details, mode, sections)
    document, written = report.write_json(details, record=write_doc)
    if write_doc:
        report.update_doc(document)
    for key, row in document["goals"].items():
        log(f"{key} = {row['value']} (goal {row['goal']}): {row['met']}")
    log(f"wrote {written} in {details['elapsed_s']} s")
    return 1 if failed else 0


def _keep_sections_not_rerun(details: dict[str, Any], mode: Mode, sections: list[str]) -> None:
    """``--only``: the sections not run keep the previous run's figures (of the same mode),
    each marked with the commit and time it was measured at, instead of vanishing."""
    previous = report.previous_details(mode.name)
    for name in SECTIONS:
        if name in sections or name not in previous:
            continue
        details[name] = {
            **previous[name],
            "kept_from_commit": previous[name].get("kept_from_commit", previous.get("commit")),
            "kept_from_run": previous[name].get("kept_from_run", previous.get("finished_at")),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the benchmarks")
    size = run_p.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_true", help="under five minutes")
    size.add_argument("--full", action="store_true", help="the full sizes (10^7 rows)")
    run_p.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    run_p.add_argument(
        "--no-doc",
        action="store_true",
        help="a trial run: touch neither docs/benchmarks.md nor bench/results/latest.json "
        "(results go to bench/results/trial-<mode>.json)",
    )
    prof = sub.add_parser("profile", help="pyinstrument over the charge path")
    prof.add_argument("--charges", type=int, default=2000)
    sub.add_parser("clean", help="drop leftover bench databases")
    sub.add_parser("ratelimit", help="where a rate-limit counter costs least (micro-measure)")
    args = parser.parse_args(argv)

    if args.command == "profile":
        from bench.profile import profile_charges

        run_async(profile_charges(args.charges))
        return 0
    if args.command == "ratelimit":
        import json

        from bench.ratelimit import measure

        print(json.dumps(run_async(measure()), indent=2))
        return 0
    if args.command == "clean":
        dropped = asyncio.run(drop_leftover_databases())
        log(f"dropped {len(dropped)} database(s)")
        return 0
    mode = QUICK if args.quick else FULL
    sections = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    return run_async(run(mode, sections, command, write_doc=not args.no_doc))


if __name__ == "__main__":
    raise SystemExit(main())
