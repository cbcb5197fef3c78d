"""Retention: only rolled-up raw rows past the age are deleted; every run is recorded."""

from __future__ import annotations

from hitrows import hit, ts_of

from collector.retention import last_runs, retention
from collector.rollup import rollup
from collector.store import Database

NOW = ts_of("2026-03-10 12:00")  # retention 5 days → rows of days before 03-05 are old


async def test_deletes_only_rolled_up_old_rows(db: Database) -> None:
    old = [hit(47, f"2026-03-0{d} 10:00", d) for d in (1, 2, 3, 4)]
    recent = [hit(47, "2026-03-05 10:00", 5), hit(47, "2026-03-09 10:00", 9)]
    await db.write_batch(old + recent, [])
    await db.execute(
        "INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, reception,"
        " payment, level, from_dvcqg, dvcbc) VALUES (48, :ts, '2026-03-01', 'd', 'p', 'S', 1,"
        " 1, 0, 4, 0, 0)", {"ts": ts_of("2026-03-01 09:00")})

    # nothing rolled up yet: nothing may be deleted
    first = await retention(db, 5, now_ms=NOW, batch=2)
    assert (first.cutoff_day, first.hits_deleted, first.dossiers_deleted) == ("2026-03-05", 0, 0)
    assert first.oldest_remaining_day == "2026-03-01"

    await rollup(db)
    before = await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day")
    second = await retention(db, 5, now_ms=NOW, batch=2)  # batches of 2: 4 old hits
    assert (second.hits_deleted, second.dossiers_deleted, second.visits_deleted) == (4, 1, 4)
    assert second.oldest_remaining_day == "2026-03-05"
    assert [r["day"] for r in await db.fetch_all("SELECT day FROM hits ORDER BY id")] == [
        "2026-03-05", "2026-03-09"]
    assert await db.fetch_all("SELECT day FROM visits ORDER BY day") == [
        {"day": "2026-03-05"}, {"day": "2026-03-09"}]
    # rollups are kept
    assert await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day") == before
    # a hit above the watermark is never deleted, however old
    await db.write_batch([hit(47, "2026-03-02 11:00", 77)], [])
    third = await retention(db, 5, now_ms=NOW)
    assert third.hits_deleted == 0
    runs = await last_runs(db)
    assert [(r["hits_deleted"], r["dossiers_deleted"], r["oldest_remaining_day"])
            for r in runs] == [(0, 0, "2026-03-05"), (4, 1, "2026-03-05"),
                               (0, 0, "2026-03-01")]
    # once rolled up, the late old hit is counted, then deleted
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 1
    day2 = await db.fetch_one("SELECT visits FROM rollup_site_day WHERE day = '2026-03-02'")
    assert day2 == {"visits": 2}


async def test_ids_are_not_reused_after_retention_empties_the_table(db: Database) -> None:
    """Once every raw hit is gone, a new hit still gets an id above the rollup watermark."""
    await db.write_batch([hit(47, "2026-03-01 10:00", 1), hit(47, "2026-03-02 10:00", 2)], [])
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 2
    assert await db.fetch_all("SELECT id FROM hits") == []
    await db.write_batch([hit(47, "2026-03-09 10:00", 3)], [])
    await rollup(db)
    day = await db.fetch_one("SELECT visits FROM rollup_site_day WHERE day = '2026-03-09'")
    assert day == {"visits": 1}


async def test_ids_are_not_reused_after_retention_deletes_the_newest_rows(db: Database) -> None:
    """A late hit dated long ago holds the highest id; retention deletes it first."""
    await db.write_batch([hit(47, "2026-03-08 10:00", 1), hit(47, "2026-03-01 10:00", 2)], [])
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).hits_deleted == 1
    await db.write_batch([hit(47, "2026-03-09 10:00", 3)], [])
    await rollup(db)
    days = await db.fetch_all("SELECT day, visits FROM rollup_site_day ORDER BY day")
    assert days == [{"day": "2026-03-01", "visits": 1}, {"day": "2026-03-08", "visits": 1},
                    {"day": "2026-03-09", "visits": 1}]


async def test_dossier_ids_are_not_reused_either(db: Database) -> None:
    async def event(dossier: str, day: str) -> None:
        await db.execute(
            "INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, "
            "reception, payment, level, from_dvcqg, dvcbc) VALUES (48, :ts, :day, :d, 'p', "
            "'S', 1, 1, 0, 4, 0, 0)", {"ts": ts_of(f"{day} 09:00"), "day": day, "d": dossier})

    await event("a", "2026-03-01")
    await rollup(db)
    assert (await retention(db, 5, now_ms=NOW)).dossiers_deleted == 1
    await event("b", "2026-03-09")
    await rollup(db)
    rows = await db.fetch_all("SELECT day, received FROM rollup_dossiers ORDER BY day")
    assert rows == [{"day": "2026-03-01", "received": 1}, {"day": "2026-03-09", "received": 1}]
