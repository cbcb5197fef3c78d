"""Retention: only rolled-up raw rows past the age are deleted; every run is recorded.

SQLite deletes by day, in short id-bounded batches; PostgreSQL keeps whole months (the
cutoff is rounded down to the 1st) and drops month partitions, deleting rows only in the
DEFAULT partitions. The test database has month partitions for the clock's month and two
ahead, so the fixed 2026 dates below land in hits_default / dossiers_default unless a
test creates their months (tests/test_pg_partitions.py drops real partitions).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from hitrows import hit, ts_of

from collector import retention as ret
from collector.retention import cutoff_for, last_runs, retention
from collector.rollup import rollup
from collector.store import Database

NOW = ts_of("2026-04-10 12:00")  # retention 5 days: SQLite keeps 04-05 on, PostgreSQL 04-01 on

DOSSIER = (
    "INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, reception,"
    " payment, level, from_dvcqg, dvcbc) VALUES (48, :ts, :day, :d, 'p', 'S', 1, 1, 0, 4, 0, 0)")


async def dossier(db: Database, key: str, day: str) -> None:
    await db.execute(DOSSIER, {"ts": ts_of(f"{day} 09:00"), "day": day, "d": key})


def test_cutoff_day_or_whole_month() -> None:
    assert cutoff_for(5, NOW) == "2026-04-05"
    assert cutoff_for(5, NOW, whole_months=True) == "2026-04-01"
    assert cutoff_for(10, NOW, whole_months=True) == "2026-03-01"
    # local day: 2026-03-31 17:30 UTC is already April 1st in Vietnam
    assert cutoff_for(0, ts_of("2026-04-01 00:30"), whole_months=True) == "2026-04-01"


async def test_deletes_only_rolled_up_old_rows(db: Database) -> None:
    pg = db.dialect == "postgres"
    march = [hit(47, f"2026-03-{d} 10:00", d) for d in (28, 29, 30, 31)]
    early_april = [hit(47, f"2026-04-0{d} 10:00", d) for d in (1, 2, 3, 4)]  # SQLite: old
    recent = [hit(47, "2026-04-05 10:00", 5), hit(47, "2026-04-09 10:00", 9)]
    await db.write_batch(march + early_april + recent, [])
    await dossier(db, "a", "2026-03-30")
    await dossier(db, "b", "2026-04-02")

    # nothing rolled up yet: nothing may be deleted
    first = await retention(db, 5, now_ms=NOW, batch=2)
    assert (first.cutoff_day, first.hits_deleted, first.dossiers_deleted) == (
        "2026-04-01" if pg else "2026-04-05", 0, 0)
    assert first.oldest_remaining_day == "2026-03-28"

    await rollup(db)
    before = await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day")
    second = await retention(db, 5, now_ms=NOW, batch=2)  # batches of 2
    gone = 4 if pg else 8
    assert (second.hits_deleted, second.dossiers_deleted, second.visits_deleted) == (
        gone, 1 if pg else 2, gone)
    kept = [r[2] for r in (march + early_april + recent)[gone:]]  # the `day` column
    assert [r["day"] for r in await db.fetch_all("SELECT day FROM hits ORDER BY id")] == kept
    assert second.oldest_remaining_day == kept[0]
    assert [r["day"] for r in await db.fetch_all("SELECT day FROM visits ORDER BY day")] == kept
    assert [r["dossier"] for r in await db.fetch_all("SELECT dossier FROM dossiers")] == (
        ["b"] if pg else [])
    # rollups are kept
    assert await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day") == before
    # a hit above the watermark is never deleted, however old
    await db.write_batch([hit(47, "2026-03-29 11:00", 77)], [])
    third = await retention(db, 5, now_ms=NOW)
    assert third.hits_deleted == 0
    runs = await last_runs(db)
    assert [(r["hits_deleted"], r["dossiers_deleted"], r["oldest_remaining_day"])
            for r in runs] == [(0, 0, kept[0]), (gone, 1 if pg else 2, kept[0]),
                               (0, 0, "2026-03-28")]
    # once rolled up, the late old hit is counted, then deleted
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 1
    day = await db.fetch_one("SELECT visits FROM rollup_site_day WHERE day = '2026-03-29'")
    assert day == {"visits": 2}


async def test_ids_are_not_reused_after_retention_empties_the_table(db: Database) -> None:
    """Once every raw hit is gone, a new hit still gets an id above the rollup watermark."""
    await db.write_batch([hit(47, "2026-03-01 10:00", 1), hit(47, "2026-03-02 10:00", 2)], [])
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 2
    assert await db.fetch_all("SELECT id FROM hits") == []
    await db.write_batch([hit(47, "2026-04-09 10:00", 3)], [])
    await rollup(db)
    day = await db.fetch_one("SELECT visits FROM rollup_site_day WHERE day = '2026-04-09'")
    assert day == {"visits": 1}


async def test_ids_are_not_reused_after_retention_deletes_the_newest_rows(db: Database) -> None:
    """A late hit dated long ago holds the highest id; retention deletes it first (on
    SQLite it lies beyond the id boundary: the index pass finds it)."""
    await db.write_batch([hit(47, "2026-04-08 10:00", 1), hit(47, "2026-03-01 10:00", 2)], [])
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 1
    await db.write_batch([hit(47, "2026-04-09 10:00", 3)], [])
    await rollup(db)
    days = await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day")
    assert days == [{"day": "2026-03-01", "visits": 1}, {"day": "2026-04-08", "visits": 1},
                    {"day": "2026-04-09", "visits": 1}]


async def test_dossier_ids_are_not_reused_either(db: Database) -> None:
    await dossier(db, "a", "2026-03-01")
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).dossiers_deleted == 1
    await dossier(db, "b", "2026-04-09")
    await rollup(db)
    rows = await db.fetch_all("SELECT day, received FROM rollup_dossiers ORDER BY day")
    assert rows == [{"day": "2026-03-01", "received": 1}, {"day": "2026-04-09", "received": 1}]


async def test_many_sites_out_of_order_and_not_rolled_up(db: Database) -> None:
    """Rows of several sites, ids not in day order, some above the watermark: exactly the
    rolled-up rows dated before the cutoff go, on both backends, in batches of 3."""
    pg = db.dialect == "postgres"
    cutoff = "2026-04-01" if pg else "2026-04-05"
    days = ["2026-03-20", "2026-04-06", "2026-03-02", "2026-04-03", "2026-04-09",
            "2026-03-31", "2026-04-04", "2026-04-05"]
    rows = [hit(site, f"{days[(i * 3 + site) % len(days)]} 1{i % 10}:00", i)
            for i in range(40) for site in (47, 48)]
    await db.write_batch(rows, [])
    await rollup(db)
    late = [hit(47, "2026-03-03 09:00", 900), hit(48, "2026-04-09 09:00", 901)]
    await db.write_batch(late, [])  # above the watermark: kept whatever their day
    report = await retention(db, 5, now_ms=NOW, batch=3)
    expect = sorted(r[2] for r in rows + late if r[2] >= cutoff or r in late)
    left = sorted(r["day"] for r in await db.fetch_all("SELECT day FROM hits"))
    assert left == expect
    assert report.hits_deleted == len(rows) + len(late) - len(expect)
    assert not await db.fetch_all("SELECT day FROM visits WHERE day < :c", {"c": cutoff})


# -- SQLite: short batches, index look-ups only -----------------------------------------


def sqlite_only(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite's batched row deletes")


PARAMS = {"id": 1, "hi": 10, "lo": 1, "n": 10, "cutoff": "2026-04-05", "wm": 10, "site": 47}


async def test_sqlite_statements_never_scan_a_whole_table(db: Database) -> None:
    """Every statement retention runs on SQLite reads through the primary key or an index:
    none walks all of hits, dossiers or visits (under the write lock, that stalled ingest)."""
    sqlite_only(db)
    await db.write_batch([hit(47, f"2026-04-0{d} 10:00", d) for d in range(1, 10)], [])
    await rollup(db)
    for name, sql in ret.SQL.items():
        if name.endswith("_postgres"):
            continue
        for table in (("hits", "dossiers") if "{table}" in sql else ("",)):
            text = sql.format(table=table) if table else sql
            used = set(re.findall(r":(\w+)", text))
            plan = await db.fetch_all(f"EXPLAIN QUERY PLAN {text}",
                                      {k: v for k, v in PARAMS.items() if k in used})
            details = [r["detail"] for r in plan]
            scans = [d for d in details if re.match(r"SCAN (hits|dossiers|visits)\b", d)]
            assert not scans, (name, table, details)
            assert any(d.startswith("SEARCH") for d in details), (name, table, details)
            # a primary-key range is bounded on both sides (``id <= watermark`` alone
            # would walk every row below the watermark)
            for d in details:
                if "INTEGER PRIMARY KEY" in d:
                    assert "rowid>? AND rowid<?" in d or "rowid=?" in d, (name, d)


async def test_sqlite_ingest_commits_while_retention_deletes(db: Database,
                                                             monkeypatch) -> None:
    """The write lock is taken batch by batch: hits are committed while old rows are still
    being deleted, not only once retention is done."""
    sqlite_only(db)
    monkeypatch.setattr(ret, "SQLITE_PAUSE", 0.01)
    old = [hit(47, ts_of("2026-03-01 00:00") + i * 1000, i % 500) for i in range(20_000)]
    for i in range(0, len(old), 2000):
        await db.write_batch(old[i:i + 2000], [])
    await db.execute("UPDATE rollup_watermarks SET last_id = (SELECT max(id) FROM hits) "
                     "WHERE name = 'hits'")  # as if rolled up (the rollup is not under test)
    run = asyncio.create_task(retention(db, 5, now_ms=NOW, batch=500))
    while (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == len(old):
        await asyncio.sleep(0.005)
    remaining = []
    for k in range(5):
        await db.write_batch([hit(47, f"2026-04-09 10:0{k}", 1000 + k)], [])
        remaining.append((await db.fetch_one(
            "SELECT count(*) AS n FROM hits WHERE day < '2026-04-05'"))["n"])
    assert not run.done() and remaining[0] > 0, remaining  # committed in between batches
    report = await run
    assert report.hits_deleted == len(old)
    assert (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == 5
