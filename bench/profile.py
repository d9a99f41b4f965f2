"""Where a charge's time goes in Python: pyinstrument over the real service calls.

``python -m bench profile`` writes ``bench/results/profile_charge.txt`` (the call tree of
``ledger.reserve`` + ``ledger.commit``, each its own unit of work as the chat route runs
them, one client, PostgreSQL). :func:`calls_per_charge` counts the Python function calls a charge
makes: unlike a time, that number does not move with the machine's load, so it is the
figure to compare before and after a change to the hot path.
"""

from __future__ import annotations

import cProfile
import pstats
import uuid
from pathlib import Path

from bench.common import charge_once, log, scratch_database, seed_users
from tokenbank.db import Database

RESULTS = Path(__file__).parent / "results"


async def _charge(db: Database, user_id: int, key: str) -> None:
    await charge_once(db, user_id, key)


async def calls_per_charge(url: str, charges: int = 200) -> float:
    """Python function calls per charge (deterministic), after a warm-up."""
    db = Database(url, pool_size=1)
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(50):
            await _charge(db, 1 + i % 100, f"w{run}{i}")
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(charges):
            await _charge(db, 1 + i % 100, f"c{run}{i}")
        profiler.disable()
        return pstats.Stats(profiler).total_calls / charges  # type: ignore[attr-defined,no-any-return]
    finally:
        await db.dispose()


async def profile_charges(charges: int) -> Path:
    from pyinstrument import Profiler

    async with scratch_database("profile") as url:
        await seed_users(url, 100, 10**15)
        calls = await calls_per_charge(url)
        db = Database(url, pool_size=1)
        run = uuid.uuid4().hex[:8]
        try:
            for i in range(100):
                await _charge(db, 1 + i % 100, f"w{run}{i}")
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            for i in range(charges):
                await _charge(db, 1 + i % 100, f"p{run}{i}")
            profiler.stop()
        finally:
            await db.dispose()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "profile_charge.txt"
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    # Paths relative to the repository: the file is committed, the checkout's place is not.
    text = text.replace(str(RESULTS.parents[1]) + "/", "")
    out.write_text(f"{charges} charges; {calls:.0f} Python calls per charge\n{text}")
    log(f"profile written to {out} ({calls:.0f} Python calls per charge)")
    return out
