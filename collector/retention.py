"""Retention: raw hits and dossier events older than ``retention_days`` are deleted.

Only rows already rolled up (id at or below the rollup watermark) are deleted. Rollup
tables are kept forever. The session state (``visits``) of days that no longer have raw
hits goes with them, so a visitor-day is never recomputed from a partial set of hits.

PostgreSQL: month granularity. The cutoff is rounded down to the first day of its local
month, and whole month partitions (``hits_YYYYMM``, ``dossiers_YYYYMM``) before it are
dropped once every row in them is rolled up — no row deletes, no bloat, no vacuum. Rows
are deleted only in the DEFAULT partitions (rows outside every month partition), bounded
by ``ts``. A raw event is therefore kept between ``retention_days`` and
``retention_days`` + 31 days. A partition whose rows are not all rolled up yet, or that is
busy (see ``drop_partitions_before``), stays until a later run.

SQLite: day granularity, in short batches, each its own transaction (an autocommit
``DELETE``), with a pause between them, so the single write lock is held for a few ms at
a time and ingest keeps committing meanwhile:

1. the first id whose day is at or after the cutoff is found by a binary search on the
   id (ids grow with time on one writer; a few dozen primary-key look-ups);
2. ids below it (and at or below the watermark) go in id ranges of ``batch`` rows —
   ``DELETE … WHERE id >= a AND id < b AND day < cutoff``, one primary-key range each,
   pages in order;
3. hits whose day is before the cutoff but whose id is above that boundary (hits that
   arrived out of order, e.g. after the clock was set back) are found through the index
   ``hits_visitor_day`` (site, day, …), site by site, and deleted in batches as well.
   Dossier events have no index with their day; ids follow their receipt time, so an
   out-of-order event goes with its id neighbours.
``visits`` goes site by site through its primary key (site, day, …) on both backends.

Every run is recorded in ``retention_runs`` (rows deleted, the day of the oldest remaining
hit — the hit with the lowest id, which on one writer is also the oldest) so reports can
show it. Dossier idempotency keys go with their rows: an event re-posted after the
retention age counts again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field

from collector.store import Database
from collector.tracking import local_day

BATCH = 10_000  # PostgreSQL: rows per DELETE in the DEFAULT partitions and in visits
SQLITE_BATCH = 2_000  # SQLite: rows per DELETE (a few ms of the single write lock)
SQLITE_PAUSE = 0.02  # s, at least, between two SQLite deletes (ingest takes the lock)

# every site id present in `table`, one index seek each (a skip scan over the index that
# leads with site_id: hits_visitor_day, the primary key of visits), with work for it
_SITES = """
WITH RECURSIVE s(site) AS (
  SELECT (SELECT min(site_id) FROM {table})
  UNION ALL
  SELECT (SELECT min(site_id) FROM {table} WHERE site_id > s.site) FROM s
  WHERE s.site IS NOT NULL
)
SELECT site FROM s WHERE site IS NOT NULL AND EXISTS (
  SELECT 1 FROM {table} x WHERE x.site_id = s.site AND x.day < :cutoff{extra})
"""
SQL = {
    # SQLite, step 1: the first row at or after an id (primary key)
    "probe": "SELECT id, day FROM {table} WHERE id >= :id AND id <= :hi ORDER BY id LIMIT 1",
    # SQLite, step 2: where a range of `batch` rows from :lo ends (primary key)
    "range_end": ("SELECT id FROM {table} WHERE id >= :lo AND id < :hi "
                  "ORDER BY id LIMIT 1 OFFSET :n"),
    "delete_range": "DELETE FROM {table} WHERE id >= :lo AND id < :hi AND day < :cutoff",
    # SQLite, step 3 (+id: the range is on the index, never on the primary key)
    "straggler_sites": _SITES.format(table="hits", extra=" AND +x.id <= :wm"),
    "delete_stragglers": (
        "DELETE FROM hits WHERE id IN (SELECT id FROM hits WHERE site_id = :site "
        "AND day < :cutoff AND +id <= :wm LIMIT :n)"),
    # both: visits
    "visit_sites": _SITES.format(table="visits", extra=""),
    "delete_visits_sqlite": (
        "DELETE FROM visits WHERE rowid IN (SELECT rowid FROM visits WHERE site_id = :site "
        "AND day < :cutoff LIMIT :n)"),
    "delete_visits_postgres": (
        "DELETE FROM visits WHERE ctid = ANY(ARRAY(SELECT ctid FROM visits "
        "WHERE site_id = :site AND day < :cutoff LIMIT :n))"),
}


@dataclass
class RetentionReport:
    cutoff_day: str
    hits_deleted: int = 0
    dossiers_deleted: int = 0
    visits_deleted: int = 0
    oldest_remaining_day: str | None = None
    seconds: float = 0.0
    partitions_dropped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = (f" (partitions {', '.join(self.partitions_dropped)})"
                 if self.partitions_dropped else "")
        return (f"deleted {self.hits_deleted} hits, {self.dossiers_deleted} dossier events, "
                f"{self.visits_deleted} visits of days before {self.cutoff_day}{parts}; "
                f"oldest remaining hit: {self.oldest_remaining_day or 'none'} "
                f"({self.seconds:.2f} s)")


def cutoff_for(retention_days: int, now_ms: int, whole_months: bool = False) -> str:
    """The first local day that is kept: ``today − retention_days``, or (``whole_months``,
    PostgreSQL) the first day of that day's month."""
    today = dt.date.fromisoformat(local_day(now_ms))
    cutoff = today - dt.timedelta(days=retention_days)
    return (cutoff.replace(day=1) if whole_months else cutoff).isoformat()


def _local_midnight_ms(day: str) -> int:
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return int(midnight.timestamp() * 1000)


async def _watermark(db: Database, table: str) -> int:
    row = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = :n",
                             {"n": table})
    return int(row["last_id"]) if row else 0


class _Pacer:
    """SQLite: after each write, sleep at least as long as it held the lock (and
    ``SQLITE_PAUSE``), so retention takes at most half of the write lock's time."""

    def __init__(self) -> None:
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    async def pause(self) -> None:
        await asyncio.sleep(max(SQLITE_PAUSE, time.perf_counter() - self._t))


async def _first_id_from(db: Database, table: str, cutoff: str, lo: int, hi: int) -> int:
    """The lowest id in ``[lo, hi]`` whose day is ``cutoff`` or later, by binary search
    on the primary key, taking days to grow with ids (``hi + 1`` when none is)."""
    a, b = lo, hi + 1
    sql = SQL["probe"].format(table=table)
    while a < b:
        mid = (a + b) // 2
        row = await db.fetch_one(sql, {"id": mid, "hi": hi})
        if row is None or row["day"] >= cutoff:
            b = mid  # no old row in [mid, row id]: rows from mid on are new (or absent)
        else:
            a = int(row["id"]) + 1
    return a


async def _sqlite_delete(db: Database, table: str, cutoff: str, wm: int, batch: int) -> int:
    """SQLite: delete rolled-up rows of ``table`` dated before ``cutoff`` (steps 1-3)."""
    low = await db.fetch_one(f"SELECT min(id) AS id FROM {table}")
    if low is None or low["id"] is None:
        return 0
    boundary = await _first_id_from(db, table, cutoff, int(low["id"]), wm)
    total, lo = 0, int(low["id"])
    pacer = _Pacer()
    while lo < boundary:
        end = await db.fetch_one(SQL["range_end"].format(table=table),
                                 {"lo": lo, "hi": boundary, "n": batch})
        hi = int(end["id"]) if end else boundary
        pacer.start()
        total += await db.execute(SQL["delete_range"].format(table=table),
                                  {"lo": lo, "hi": hi, "cutoff": cutoff})
        await pacer.pause()
        lo = hi
    if table == "hits":
        sites = await db.fetch_all(SQL["straggler_sites"], {"cutoff": cutoff, "wm": wm})
        for r in sites:
            while True:
                pacer.start()
                n = await db.execute(SQL["delete_stragglers"], {
                    "site": r["site"], "cutoff": cutoff, "wm": wm, "n": batch})
                await pacer.pause()
                total += n
                if n < batch:
                    break
    return total


async def _postgres_delete(db: Database, table: str, cutoff: str, wm: int, batch: int,
                           report: RetentionReport) -> int:
    """PostgreSQL: drop whole old months of ``table``, then rows in its DEFAULT partition."""
    cutoff_ms = _local_midnight_ms(cutoff)
    dropped = await db.drop_partitions_before(  # type: ignore[attr-defined]
        cutoff_ms, wm, table=table)
    report.partitions_dropped.extend(name for name, _n in dropped)
    deleted = await db.delete_default_before(  # type: ignore[attr-defined]
        table, cutoff_ms, wm, batch)
    return sum(n for _name, n in dropped) + deleted


async def _delete_visits(db: Database, before: str, batch: int) -> int:
    sites = await db.fetch_all(SQL["visit_sites"], {"cutoff": before})
    sql = SQL[f"delete_visits_{db.dialect}"]
    pacer = _Pacer()
    total = 0
    for r in sites:
        while True:
            pacer.start()
            n = await db.execute(sql, {"site": r["site"], "cutoff": before, "n": batch})
            if db.dialect == "sqlite":
                await pacer.pause()
            total += n
            if n < batch:
                break
    return total


async def retention(
    db: Database, retention_days: int, now_ms: int | None = None, batch: int | None = None,
) -> RetentionReport:
    """Delete rolled-up raw rows older than ``retention_days``; record and return the run.

    ``batch``: rows per delete (default ``SQLITE_BATCH`` on SQLite, ``BATCH`` on
    PostgreSQL)."""
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    postgres = db.dialect == "postgres"
    batch = batch or (BATCH if postgres else SQLITE_BATCH)
    report = RetentionReport(cutoff_for(retention_days, now_ms, whole_months=postgres))
    for table in ("hits", "dossiers"):
        wm = await _watermark(db, table)
        if postgres:
            n = await _postgres_delete(db, table, report.cutoff_day, wm, batch, report)
        else:
            n = await _sqlite_delete(db, table, report.cutoff_day, wm, batch)
        if table == "hits":
            report.hits_deleted = n
        else:
            report.dossiers_deleted = n
    oldest = await db.fetch_one("SELECT day FROM hits ORDER BY id LIMIT 1")
    report.oldest_remaining_day = oldest["day"] if oldest else None
    # session state of days with no raw hits left (all of them when hits is empty)
    keep_from = min(report.cutoff_day, report.oldest_remaining_day or report.cutoff_day)
    report.visits_deleted = await _delete_visits(db, keep_from, batch)
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
