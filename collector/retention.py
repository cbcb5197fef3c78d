"""Retention: raw hits and dossier events older than ``retention_days`` are deleted.

Only rows already rolled up (id at or below the rollup watermark) are deleted, in batches
of ``batch`` rows (one short transaction each, so ingest is never blocked for long).
A row is old when its local day is before ``today − retention_days``. The session state
(``visits``) of days that no longer have raw hits goes with them, so a visitor-day is
never recomputed from a partial set of hits. Rollup tables are kept forever.

On PostgreSQL, month partitions of ``hits`` lying wholly before the cutoff, and wholly
rolled up, are dropped first (cheap, no row deletes); the row delete handles the rest.

Every run is recorded in ``retention_runs`` (rows deleted, the day of the oldest remaining
hit — the hit with the lowest id, which on one writer is also the oldest) so reports can
show it. Dossier idempotency keys go with their rows: an event re-posted after the
retention age counts again.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from collector.store import Database
from collector.tracking import local_day

BATCH = 10_000


@dataclass
class RetentionReport:
    cutoff_day: str
    hits_deleted: int = 0
    dossiers_deleted: int = 0
    visits_deleted: int = 0
    oldest_remaining_day: str | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"deleted {self.hits_deleted} hits, {self.dossiers_deleted} dossier events, "
                f"{self.visits_deleted} visits of days before {self.cutoff_day}; oldest "
                f"remaining hit: {self.oldest_remaining_day or 'none'} ({self.seconds:.2f} s)")


def cutoff_for(retention_days: int, now_ms: int) -> str:
    today = dt.date.fromisoformat(local_day(now_ms))
    return (today - dt.timedelta(days=retention_days)).isoformat()


def _local_midnight_ms(day: str) -> int:
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return int(midnight.timestamp() * 1000)


async def _delete_rolled_up(db: Database, table: str, cutoff: str, batch: int) -> int:
    total = 0
    while True:
        async with db.transaction() as q:
            wm = await q.fetch_one(
                "SELECT last_id FROM rollup_watermarks WHERE name = :n", {"n": table})
            n = await q.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                "WHERE id <= :wm AND day < :cutoff ORDER BY id LIMIT :n)",
                {"wm": int(wm["last_id"]) if wm else 0, "cutoff": cutoff, "n": batch})
        total += n
        if n < batch:
            return total


async def retention(
    db: Database, retention_days: int, now_ms: int | None = None, batch: int = BATCH,
) -> RetentionReport:
    """Delete rolled-up raw rows older than ``retention_days``; record and return the run."""
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    report = RetentionReport(cutoff_for(retention_days, now_ms))
    drop_partitions = getattr(db, "drop_partitions_before", None)
    if drop_partitions is not None:  # PostgreSQL: whole old months go as partitions
        wm = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = 'hits'")
        dropped = await drop_partitions(_local_midnight_ms(report.cutoff_day),
                                        int(wm["last_id"]) if wm else 0)
        report.hits_deleted += sum(n for _name, n in dropped)
    report.hits_deleted += await _delete_rolled_up(db, "hits", report.cutoff_day, batch)
    report.dossiers_deleted = await _delete_rolled_up(db, "dossiers", report.cutoff_day, batch)
    oldest = await db.fetch_one("SELECT day FROM hits ORDER BY id LIMIT 1")
    report.oldest_remaining_day = oldest["day"] if oldest else None
    # session state of days with no raw hits left (all of them when hits is empty)
    keep_from = min(report.cutoff_day, report.oldest_remaining_day or report.cutoff_day)
    report.visits_deleted = await db.execute(
        "DELETE FROM visits WHERE day < :d", {"d": keep_from})
    report.seconds = time.perf_counter() - t0
    await db.execute(
        "INSERT INTO retention_runs (ran_ts, cutoff_day, hits_deleted, dossiers_deleted, "
        "visits_deleted, oldest_remaining_day) VALUES (:ran, :cutoff, :h, :d, :v, :oldest)",
        {"ran": now_ms, "cutoff": report.cutoff_day, "h": report.hits_deleted,
         "d": report.dossiers_deleted, "v": report.visits_deleted,
         "oldest": report.oldest_remaining_day})
    return report


async def last_runs(db: Database, limit: int = 10) -> list[dict]:
    """The most recent retention runs, newest first."""
    return await db.fetch_all(
        "SELECT ran_ts, cutoff_day, hits_deleted, dossiers_deleted, visits_deleted, "
        "oldest_remaining_day FROM retention_runs ORDER BY id DESC LIMIT :n", {"n": limit})
