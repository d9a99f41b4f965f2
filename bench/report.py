"""``bench/results/latest.json`` (flat keys + details) and the results in docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def markers(mode: str) -> tuple[str, str]:
    """Each mode keeps its own block, so a full run does not hide the quick one."""
    return f"<!-- bench:{mode}:start -->", f"<!-- bench:{mode}:end -->"


#: key -> (goal as text, test) — the issue's goals, checked on every run.
GOALS: dict[str, tuple[str, Any]] = {
    "ledger_vs_pgbench_c32": ("≥ 0.6", lambda v: v >= 0.6),
    "billing_throughput_ratio_c64": ("≥ 0.9", lambda v: v >= 0.9),
    "billing_added_p50_ms": ("≤ 1 ms", lambda v: v <= 1.0),
    "billing_added_p99_ms": ("≤ 5 ms", lambda v: v <= 5.0),
    "refused_hold_ratio": ("≤ 1.5", lambda v: v <= 1.5),
    "generate_history_ratio": ("≤ 1.25", lambda v: v <= 1.25),
    "sqlite_vs_raw_c1": ("≥ 0.2", lambda v: v >= 0.2),
    "balance_read_ratio_1e6_vs_1e3": ("≤ 1.5", lambda v: v <= 1.5),
    "memory_rss_second_half_growth_mb": ("no upward trend (≤ 5 MB)", lambda v: v <= 5.0),
    "webhooks_ack_p99_ms": ("≤ 20 ms", lambda v: v <= 20.0),
    "webhooks_applied_per_s": ("≥ 300", lambda v: v >= 300.0),
    "webhooks_ack_p99_ms_slow_stripe": ("< 50 ms", lambda v: v < 50.0),
    "sdk_added_p50_ms": ("≤ 3 ms", lambda v: v <= 3.0),
    "sdk_throughput_ratio_c32": ("≥ 0.5", lambda v: v >= 0.5),
}


def _get(details: dict[str, Any], *path: str) -> Any:
    node: Any = details
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def flat_keys(details: dict[str, Any]) -> dict[str, Any]:
    """The flat keys the issue names, plus the numbers they are made of."""
    d = details
    keys: dict[str, Any] = {
        "mode": _get(d, "mode"),
        "ledger_vs_pgbench_c32": _get(d, "ledger", "ratio_c32"),
        "ledger_vs_pgbench_c8": _get(d, "ledger", "ratio_c8"),
        "ledger_vs_pgbench_c1": _get(d, "ledger", "ratio_c1"),
    }
    for c in (1, 8, 32):
        keys[f"ledger_charges_per_s_c{c}"] = _get(d, "ledger", f"ours_c{c}", "median")
        keys[f"pgbench_charges_per_s_c{c}"] = _get(d, "ledger", f"pgbench_c{c}", "median")
    keys["ledger_vs_pgbench_c32_2proc"] = _get(d, "ledger", "ratio_2proc_c32")
    keys["ledger_charges_per_s_c32_2proc"] = _get(d, "ledger", "ours_2proc_c32", "median")
    keys["ledger_python_calls_per_charge"] = _get(d, "ledger", "python_calls_per_charge")
    keys["sqlite_charges_per_s_c1"] = _get(d, "sqlite", "c1", "median")
    keys["sqlite_charges_per_s_c8"] = _get(d, "sqlite", "c8", "median")
    keys["sqlite_vs_raw_c1"] = _get(d, "sqlite", "vs_raw_c1")
    keys["sqlite_raw_charges_per_s_c1"] = _get(d, "sqlite", "raw_c1", "median")
    keys["billing_throughput_ratio_c64"] = _get(d, "billing", "throughput_ratio_c64")
    keys["billing_throughput_ratio_c1"] = _get(d, "billing", "throughput_ratio_c1")
    keys["billing_added_p50_ms"] = _get(d, "billing", "added_p50_ms_c1")
    keys["billing_added_p99_ms"] = _get(d, "billing", "added_p99_ms_c1")
    keys["rate_limit_store"] = _get(d, "billing", "rate_limits", "store")
    keys["refused_hold_ratio"] = _get(d, "chat", "holds", "ratio")
    keys["refused_hold_p50_ms"] = _get(d, "chat", "holds", "refused_p50_ms")
    keys["granted_hold_p50_ms"] = _get(d, "chat", "holds", "granted_p50_ms")
    keys["generate_history_ratio"] = _get(d, "chat", "history", "ratio")
    for cost in (0, 1):
        for n in (1, 64):
            keys[f"generate_per_s_cost{cost}_c{n}"] = _get(
                d, "billing", "median", f"cost{cost}_c{n}", "per_s"
            )
            keys[f"generate_p50_ms_cost{cost}_c{n}"] = _get(
                d, "billing", "median", f"cost{cost}_c{n}", "p50_ms"
            )
    keys["balance_read_ratio_1e6_vs_1e3"] = _get(d, "scale", "balance_read_ratio")
    keys["history_first_page_ratio_1e6_vs_1e3"] = _get(d, "scale", "history_ratio")
    keys["scale_total_rows"] = _get(d, "scale", "total_rows")
    keys["scale_big_user_rows"] = _get(d, "scale", "big_user_rows")
    keys["webhooks_per_s"] = _get(d, "webhooks", "per_s", "median")
    keys["webhooks_ack_p99_ms"] = _get(d, "webhooks", "ack_p99_ms", "median")
    keys["webhooks_applied_per_s"] = _get(d, "webhooks", "applied_per_s", "median")
    keys["webhooks_ack_p99_ms_slow_stripe"] = _get(d, "webhooks", "slow_stripe", "ack_p99_ms")
    keys["memory_requests"] = _get(d, "billing", "memory", "requests")
    keys["memory_rss_before_mb"] = _get(d, "billing", "memory", "rss_before_mb")
    keys["memory_rss_after_mb"] = _get(d, "billing", "memory", "rss_after_mb")
    keys["memory_rss_growth_mb"] = _get(d, "billing", "memory", "growth_mb")
    keys["memory_rss_second_half_growth_mb"] = _get(d, "billing", "memory", "second_half_growth_mb")
    keys["sdk_added_p50_ms"] = _get(d, "sdk", "added_p50_ms_c1")
    keys["sdk_throughput_ratio_c32"] = _get(d, "sdk", "throughput_ratio_c32")
    for way in ("inprocess", "sdk"):
        for n in (1, 32):
            keys[f"sdk_{way}_per_s_c{n}"] = _get(d, "sdk", "median", f"{way}_c{n}", "per_s")
            keys[f"sdk_{way}_p50_ms_c{n}"] = _get(d, "sdk", "median", f"{way}_c{n}", "p50_ms")
    return {k: _round(v) for k, v in keys.items()}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def goals(keys: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, (text, test) in GOALS.items():
        value = keys.get(key)
        out[key] = {"goal": text, "value": value, "met": None if value is None else test(value)}
    return out


def previous_details(mode: str) -> dict[str, Any]:
    """The details of the last run of ``mode`` (empty when there is none)."""
    for path in (RESULTS / f"latest-{mode}.json", RESULTS / "latest.json"):
        if path.exists():
            found: dict[str, Any] = json.loads(path.read_text()).get("details", {})
            if found.get("mode") == mode:
                return found
    return {}


def write_json(details: dict[str, Any], *, record: bool = True) -> tuple[dict[str, Any], Path]:
    """The run's document, written where it belongs: a recorded run replaces
    ``latest.json`` (committed) and ``latest-<mode>.json``; a trial run (``--no-doc``)
    writes only ``trial-<mode>.json`` (ignored by git), so comparing two trees never
    touches the record. Returns the document and the file it was written to."""
    keys = flat_keys(details)
    document = {**keys, "goals": goals(keys), "details": details}
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str) + "\n"
    mode = details.get("mode")
    if not record:
        path = RESULTS / f"trial-{mode}.json"
        path.write_text(text)
        return document, path
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"latest-{mode}.json").write_text(text)
    return document, RESULTS / "latest.json"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def _met(flag: bool | None) -> str:
    return "—" if flag is None else ("**met**" if flag else "**not met**")


def ratio_or_none(num: Any, den: Any) -> float | None:
    numbers = isinstance(num, int | float) and isinstance(den, int | float)
    return num / den if numbers and den else None


def diff_or_none(a: Any, b: Any) -> float | None:
    return a - b if isinstance(a, int | float) and isinstance(b, int | float) else None


def markdown(document: dict[str, Any]) -> str:
    d, g = document["details"], document["goals"]
    m = d.get("machine", {})
    led = d.get("ledger", {})
    start, end = markers(str(d.get("mode")))
    lines = [
        start,
        f"### Latest {d.get('mode')} run: `{d.get('command')}` — {d.get('finished_at')}",
        "",
        f"Mode **{d.get('mode')}**, {d.get('runs')} runs per measurement (medians), "
        f"took {_fmt(d.get('elapsed_s'))} s. Commit `{d.get('commit')}`.",
        "",
        f"Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory_gb')} GB RAM, "
        f"Linux {m.get('kernel')}; PostgreSQL {m.get('postgresql')} "
        f"(fsync {_get(m, 'postgresql_settings', 'fsync')}, synchronous_commit "
        f"{_get(m, 'postgresql_settings', 'synchronous_commit')}, shared_buffers "
        f"{_get(m, 'postgresql_settings', 'shared_buffers')}); Python {m.get('python')}, "
        f"SQLAlchemy {m.get('sqlalchemy')}, asyncpg {m.get('asyncpg')}, FastAPI "
        f"{m.get('fastapi')}, uvloop {m.get('uvloop')}; {m.get('pgbench')}; "
        f"{' '.join(m.get('wrk') or [])}. Load average at start: {m.get('loadavg')}.",
        "",
        "| Goal | Key | Result | Goal | Met |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "ledger_vs_pgbench_c32": "Charge path vs pgbench, 32 clients",
        "billing_throughput_ratio_c64": "Generate throughput, cost 1 / cost 0, c=64",
        "billing_added_p50_ms": "p50 added by billing, c=1",
        "billing_added_p99_ms": "p99 added by billing, c=1",
        "refused_hold_ratio": "A 402's unit / a granted hold's, p50",
        "generate_history_ratio": "Generate req/s, 1-message / 100-message chat",
        "sqlite_vs_raw_c1": "SQLite charge path / sqlite3, same statements, c=1",
        "balance_read_ratio_1e6_vs_1e3": "Balance read, big / small user",
        "memory_rss_second_half_growth_mb": "RSS growth over the second half",
        "webhooks_ack_p99_ms": "Webhook acknowledged, p99",
        "webhooks_applied_per_s": "Webhooks applied (received → applied), one process",
        "webhooks_ack_p99_ms_slow_stripe": "Webhook acknowledged with Stripe at 2 s a call, p99",
        "sdk_added_p50_ms": "p50 the Python SDK's hold + commit adds over in-process, c=1",
        "sdk_throughput_ratio_c32": "SDK holds + commits/s / in-process charges/s, c=32",
    }
    for key, row in g.items():
        unit = " MB" if key.startswith("memory") else (" ms" if key.endswith("_ms") else "")
        lines.append(
            f"| {labels[key]} | `{key}` | {_fmt(row['value'], unit)} | {row['goal']} "
            f"| {_met(row['met'])} |"
        )
    lines += [
        "",
        "**Ledger charge path** (reserve + commit of 1 token, charges/s; ours = the service "
        "functions in one process; pgbench = the same SQL, `-M prepared`):",
        "",
        "| clients | ours | pgbench | ours / pgbench | per run |",
        "|---|---|---|---|---|",
    ]
    for c in led.get("clients", []):
        per_run = ", ".join(f"{r:.2f}" for r in led.get(f"ratio_c{c}_per_run", []))
        lines.append(
            f"| {c} | {_fmt(_get(led, f'ours_c{c}', 'median'))} "
            f"| {_fmt(_get(led, f'pgbench_c{c}', 'median'))} "
            f"| {_fmt(led.get(f'ratio_c{c}'))} | {per_run} |"
        )
    k = document
    if k.get("ledger_charges_per_s_c32_2proc") is not None:
        lines += [
            "",
            f"The same 32 clients split over two processes (16 each, as two app workers "
            f"would run): {_fmt(k.get('ledger_charges_per_s_c32_2proc'))} charges/s, "
            f"{_fmt(k.get('ledger_vs_pgbench_c32_2proc'))} × pgbench.",
        ]
    lines += [
        "",
        f"Python function calls per charge: {_fmt(k.get('ledger_python_calls_per_charge'))}. "
        f"SQLite (WAL, synchronous=NORMAL), same service calls: "
        f"{_fmt(k.get('sqlite_charges_per_s_c1'))} charges/s at 1 client, "
        f"{_fmt(k.get('sqlite_charges_per_s_c8'))} at 8; Python's `sqlite3` running the "
        f"same {_get(d, 'sqlite', 'statements_per_charge')} statements in one thread: "
        f"{_fmt(k.get('sqlite_raw_charges_per_s_c1'))} (per run: "
        + ", ".join(f"{r:.2f}" for r in _get(d, "sqlite", "vs_raw_c1_per_run") or [])
        + "). "
        f"Ledger violations after the load: {led.get('violations')}.",
        "",
        "**Billing per reply** (`POST /api/chats/{id}/generate`, offline provider, wrk; "
        f"rate limits on, counted in {k.get('rate_limit_store')}; hits Redis failed to "
        f"count in time: {_fmt(_get(d, 'billing', 'rate_limits', 'redis_errors'))}):",
        "",
        "| | cost 0 req/s | cost 1 req/s | ratio | ratio per run | cost 0 p50 | cost 1 p50 "
        "| added p50 | added p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in (1, 64):
        c0 = _get(d, "billing", "median", f"cost0_c{n}") or {}
        c1 = _get(d, "billing", "median", f"cost1_c{n}") or {}
        ratio_key = f"throughput_ratio_c{n}"
        per_run = ", ".join(f"{r:.2f}" for r in _get(d, "billing", f"{ratio_key}_per_run") or [])
        added = _get(d, "billing", f"added_p50_ms_c{n}")
        added_p99 = _get(d, "billing", f"added_p99_ms_c{n}")
        lines.append(
            f"| c={n} | {_fmt(c0.get('per_s'))} | {_fmt(c1.get('per_s'))} "
            f"| {_fmt(_get(d, 'billing', ratio_key))} | {per_run} "
            f"| {_fmt(c0.get('p50_ms'), ' ms')} "
            f"| {_fmt(c1.get('p50_ms'), ' ms')} | {_fmt(added, ' ms')} "
            f"| {_fmt(added_p99, ' ms')} |"
        )
    if d.get("sdk") and not d["sdk"].get("error"):
        lines += [
            "",
            "**Python SDK over HTTP** (`async with billing.hold(customer, 1)`: hold + commit, "
            "two requests, vs the ledger's reserve + commit in-process; ledger violations "
            f"after the load: {_fmt(_get(d, 'sdk', 'invariant_violations'))}):",
            "",
            "| | in-process/s | SDK/s | ratio | in-process p50 | SDK p50 | added p50 "
            "| CPU per op: in-process | SDK: server + client |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for n in (1, 32):
            ip = _get(d, "sdk", "median", f"inprocess_c{n}") or {}
            sd = _get(d, "sdk", "median", f"sdk_c{n}") or {}
            lines.append(
                f"| c={n} | {_fmt(ip.get('per_s'))} | {_fmt(sd.get('per_s'))} "
                f"| {_fmt(ratio_or_none(sd.get('per_s'), ip.get('per_s')))} "
                f"| {_fmt(ip.get('p50_ms'), ' ms')} | {_fmt(sd.get('p50_ms'), ' ms')} "
                f"| {_fmt(diff_or_none(sd.get('p50_ms'), ip.get('p50_ms')), ' ms')} "
                f"| {_fmt(ip.get('client_cpu_ms'), ' ms')} "
                f"| {_fmt(sd.get('server_cpu_ms'), ' ms')} "
                f"+ {_fmt(sd.get('client_cpu_ms'), ' ms')} |"
            )
    hist, holds = _get(d, "chat", "history") or {}, _get(d, "chat", "holds") or {}
    short, long = _get(hist, "runs", "short") or [], _get(hist, "runs", "long") or []
    lines += [
        "",
        f"**History** (generate at {hist.get('connections')} connections, cost 1, limits on): "
        "1-message chats "
        + ", ".join(_fmt(r["per_s"]) for r in short)
        + " req/s; 100-message chats "
        + ", ".join(_fmt(r["per_s"]) for r in long)
        + " req/s; ratio per run "
        + ", ".join(f"{r:.2f}" for r in hist.get("ratio_per_run", []))
        + ".",
        "",
        f"**Holds** (`chat.start_reply`, one at a time, {holds.get('samples_per_run')} of each "
        f"per run): refused (402) p50 {_fmt(holds.get('refused_p50_ms'), ' ms')}, granted "
        f"p50 {_fmt(holds.get('granted_p50_ms'), ' ms')}; ratio per run "
        + ", ".join(f"{r:.2f}" for r in holds.get("ratio_per_run", []))
        + ".",
    ]
    sc = d.get("scale", {})
    mem = _get(d, "billing", "memory") or {}
    lines += [
        "",
        f"**Scale**: {_fmt(sc.get('total_rows'))} ledger rows in all ({sc.get('table_size')}, "
        f"generated in {_fmt(sc.get('generate_s'))} s); big user "
        f"{_fmt(sc.get('big_user_rows'))} rows, small user {_fmt(sc.get('small_user_rows'))}. "
        f"Balance read p50 {_fmt(_get(sc, 'median', 'balance_big_p50_ms'), ' ms')} vs "
        f"{_fmt(_get(sc, 'median', 'balance_small_p50_ms'), ' ms')} (ratio "
        f"{_fmt(sc.get('balance_read_ratio'))}); first history page "
        f"{_fmt(_get(sc, 'median', 'history_big_p50_ms'), ' ms')} vs "
        f"{_fmt(_get(sc, 'median', 'history_small_p50_ms'), ' ms')} (ratio "
        f"{_fmt(sc.get('history_ratio'))}).",
        "",
        f"**Webhooks**: {_fmt(_get(d, 'webhooks', 'per_s', 'median'))} signed "
        f"`payment_intent.succeeded` events/s applied (received → handled) in one app "
        f"process ({_get(d, 'webhooks', 'senders')} concurrent senders, "
        f"{_get(d, 'webhooks', 'events_per_run')} events per run); acknowledged in p50 "
        f"{_fmt(_get(d, 'webhooks', 'p50_ms'), ' ms')}, p99 "
        f"{_fmt(_get(d, 'webhooks', 'ack_p99_ms', 'median'), ' ms')}; CPU per event "
        f"(received → applied): app process "
        f"{_fmt(_get(d, 'webhooks', 'app_cpu_ms_per_event', 'median'), ' ms')}, the local "
        f"Stripe server's own process "
        f"{_fmt(_get(d, 'webhooks', 'sim_cpu_ms_per_event', 'median'), ' ms')}.",
        "",
        f"**Memory**: one app process, {_fmt(mem.get('rss_before_mb'), ' MB')} before and "
        f"{_fmt(mem.get('rss_after_mb'), ' MB')} after {_fmt(mem.get('requests'))} generate "
        f"requests; growth over the second half {_fmt(mem.get('second_half_growth_mb'), ' MB')} "
        f"(trend {_fmt(mem.get('slope_mb_per_10k_second_half'), ' MB')} per 10k requests). "
        "Samples: " + ", ".join(f"{s['requests']:,}→{s['rss_mb']}" for s in mem.get("samples", [])),
    ]
    errors = {k: v["error"] for k, v in d.items() if isinstance(v, dict) and "error" in v}
    if errors:
        lines += ["", "**Sections that failed in this run:**", ""]
        lines += [f"- {k}: `{v}`" for k, v in errors.items()]
    lines.append(end)
    return "\n".join(lines)


def update_doc(document: dict[str, Any]) -> None:
    start, end = markers(str(document["details"].get("mode")))
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = markdown(document)
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
