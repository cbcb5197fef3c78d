"""Raw events partitioned by month on PostgreSQL: dossiers partitioned like hits
(migration 0007) and still idempotent — across a month boundary, under concurrent posts —
and retention that drops whole months (never row-deletes a month partition), waits only
briefly for a busy table, and deletes rows only in the DEFAULT partitions.

Duplicate tests run on both backends (SQLite: the UNIQUE constraint)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest
from conftest import pg_admin, pg_url
from hitrows import hit, ts_of

from collector.dossiers import _INSERT
from collector.retention import retention
from collector.rollup import rollup
from collector.store import Database, migration_files, open_database
from collector.store.postgres import PostgresDatabase, month_start
from collector.tracking import local_day


def event(key: str, ts: int, status: int = 1, site_id: int = 48) -> dict:
    return {"site_id": site_id, "ts": ts, "day": local_day(ts), "dossier": key,
            "profile": "p", "service": "1.001", "service_name": "", "status": status,
            "reception": 1, "payment": 0, "level": 4, "from_dvcqg": 0, "dvcbc": 0,
            "user_type": "", "user_location": "", "user_ref": ""}


@pytest.fixture
def pg(db: Database) -> PostgresDatabase:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("PostgreSQL only")
    return db


async def test_dossier_duplicate_across_a_month_boundary(db: Database) -> None:
    """The same event posted at 23:59 on the last day of a month and again after midnight
    is stored once, though the two copies fall in different month partitions."""
    march_end, april = ts_of("2026-03-31 23:59"), ts_of("2026-04-01 00:01")
    if isinstance(db, PostgresDatabase):
        await db.ensure_partitions(now_ms=march_end, ahead=1)  # dossiers_202603, _202604
    assert await db.execute(_INSERT, event("HS-1", march_end)) == 1
    assert await db.execute(_INSERT, event("HS-1", april)) == 0  # duplicate
    assert await db.execute(_INSERT, event("HS-1", april, status=3)) == 1  # next status
    assert await db.execute(_INSERT, event("HS-1", april, site_id=47)) == 1  # other site
    assert await db.execute(_INSERT, event("HS-2", april)) == 1
    assert await db.execute(_INSERT, event("HS-2", march_end)) == 0  # in the earlier month
    rows = await db.fetch_all("SELECT site_id, dossier, status, day FROM dossiers ORDER BY id")
    assert rows == [
        {"site_id": 48, "dossier": "HS-1", "status": 1, "day": "2026-03-31"},
        {"site_id": 48, "dossier": "HS-1", "status": 3, "day": "2026-04-01"},
        {"site_id": 47, "dossier": "HS-1", "status": 1, "day": "2026-04-01"},
        {"site_id": 48, "dossier": "HS-2", "status": 1, "day": "2026-04-01"},
    ]
    if isinstance(db, PostgresDatabase):
        parts = await db.fetch_all(
            "SELECT tableoid::regclass::text AS p, count(*) AS n FROM dossiers "
            "GROUP BY 1 ORDER BY 1")
        assert parts == [{"p": "dossiers_202603", "n": 1}, {"p": "dossiers_202604", "n": 3}]


async def test_concurrent_posts_of_one_event_store_it_once(db: Database) -> None:
    """Twelve copies of one event at once (PostgreSQL: on twelve connections, so the
    trigger's key lock is what decides): exactly one is inserted."""
    ts = ts_of("2026-04-01 00:00")
    results = await asyncio.gather(*(
        db.execute(_INSERT, event("HS-9", ts + i)) for i in range(12)))
    assert sorted(results) == [0] * 11 + [1]
    assert await db.fetch_one("SELECT count(*) AS n FROM dossiers") == {"n": 1}


async def test_concurrent_posts_in_open_transactions(pg: PostgresDatabase) -> None:
    """A second copy waits for the first one's transaction: skipped if it commits, stored
    if it rolls back."""
    ts = ts_of("2026-04-01 00:00")
    for outcome in ("commit", "rollback"):
        key = f"HS-{outcome}"
        async with pg.pool.acquire() as first:
            tx = first.transaction()
            await tx.start()
            assert await pg_insert(first, event(key, ts)) == 1
            second = asyncio.create_task(pg.execute(_INSERT, event(key, ts + 1)))
            await asyncio.sleep(0.3)
            assert not second.done()  # waits on the event key's lock
            await (tx.commit() if outcome == "commit" else tx.rollback())
            assert await second == (0 if outcome == "commit" else 1)
        assert await pg.fetch_one(
            "SELECT count(*) AS n FROM dossiers WHERE dossier = :k", {"k": key}) == {"n": 1}


async def pg_insert(conn: asyncpg.Connection, row: dict) -> int:
    from collector.store.postgres import _Queries

    return await _Queries(conn).execute(_INSERT, row)


async def test_dossier_trigger_refuses_other_isolation_levels(pg: PostgresDatabase) -> None:
    async with pg.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="READ COMMITTED"):
            async with conn.transaction(isolation="repeatable_read"):
                await pg_insert(conn, event("HS-rr", ts_of("2026-04-01 00:00")))


# -- retention by whole months ----------------------------------------------------------


async def test_retention_drops_whole_months_of_hits_and_dossiers(pg: PostgresDatabase) -> None:
    now = ts_of("2026-06-10 12:00")  # 40 days → 2026-05-01: months before May go
    await pg.ensure_partitions(now_ms=ts_of("2026-03-15 00:00"), ahead=3)  # March … June
    await pg.write_batch([hit(47, f"2026-0{m}-{d:02d} 10:00", m * 100 + d)
                          for m in (3, 4, 5, 6) for d in (1, 10, 28)], [])
    for m in (3, 4, 5):
        await pg.execute(_INSERT, event(f"HS-{m}", ts_of(f"2026-0{m}-05 09:00")))
    await rollup(pg)
    # a hit of a very old day outside every partition (hits_default), rolled up too
    await pg.write_batch([hit(47, "2025-01-05 10:00", 7)], [])
    await rollup(pg)
    # a late hit into April, not rolled up: April's partition must stay
    await pg.write_batch([hit(47, "2026-04-20 10:00", 8)], [])
    report = await retention(pg, 40, now_ms=now)
    assert report.cutoff_day == "2026-05-01"
    assert report.partitions_dropped == ["hits_202603", "dossiers_202603", "dossiers_202604"]
    assert (report.hits_deleted, report.dossiers_deleted) == (3 + 1, 2)
    left = await pg.fetch_all("SELECT tableoid::regclass::text AS p, count(*) AS n FROM hits "
                              "GROUP BY 1 ORDER BY 1")
    assert left == [{"p": "hits_202604", "n": 4}, {"p": "hits_202605", "n": 3},
                    {"p": "hits_202606", "n": 3}]  # May is whole: past 40 days but its month
    assert [r["dossier"] for r in await pg.fetch_all("SELECT dossier FROM dossiers")] == ["HS-5"]
    assert report.oldest_remaining_day == "2026-04-01"
    # the old day's visits went with its hits, April's stay with theirs
    assert await pg.fetch_one("SELECT min(day) AS d FROM visits") == {"d": "2026-04-01"}
    # once the late hit is rolled up, April goes whole too
    await rollup(pg)
    again = await retention(pg, 40, now_ms=now)
    assert again.partitions_dropped == ["hits_202604"] and again.hits_deleted == 4
    # an event re-posted after its month was dropped counts again (its key went with it)
    assert await pg.execute(_INSERT, event("HS-3", now)) == 1
    # rollups stay
    months = await pg.fetch_all("SELECT substr(day, 1, 7) AS m, sum(hits) AS n "
                                "FROM rollup_site_day GROUP BY 1 ORDER BY 1")
    assert months == [{"m": "2025-01", "n": 1}, {"m": "2026-03", "n": 3},
                      {"m": "2026-04", "n": 4}, {"m": "2026-05", "n": 3},
                      {"m": "2026-06", "n": 3}]


async def test_a_busy_table_keeps_its_partition_until_a_later_run(pg: PostgresDatabase) -> None:
    """Dropping needs hits exclusively; a long reader keeps it from that, and the drop
    gives up after lock_timeout (ingest would be queued behind it meanwhile) instead of
    waiting for the reader."""
    await pg.ensure_partitions(now_ms=ts_of("2026-03-15 00:00"), ahead=0)
    await pg.write_batch([hit(47, "2026-03-02 10:00", 1)], [])
    await rollup(pg)
    cutoff = month_start(2026, 4)
    async with pg.pool.acquire() as reader, reader.transaction():
        await reader.fetchval("SELECT count(*) FROM hits")  # holds ACCESS SHARE on hits
        t0 = asyncio.get_running_loop().time()
        assert await pg.drop_partitions_before(cutoff, 10**9, lock_timeout=0.3) == []
        assert asyncio.get_running_loop().time() - t0 < 5
        # ingest meanwhile is not blocked by a drop that gave up
        await asyncio.wait_for(pg.write_batch([hit(47, "2026-12-02 10:00", 2)], []), 5)
    assert await pg.drop_partitions_before(cutoff, 10**9) == [("hits_202603", 1)]


async def test_default_partition_rows_are_deleted_by_ts(pg: PostgresDatabase) -> None:
    """Rows outside every month partition are deleted in DEFAULT, in batches, bounded by
    ts and the watermark; a month partition is never row-deleted."""
    await pg.ensure_partitions(now_ms=ts_of("2026-03-15 00:00"), ahead=0)  # March only
    rows = [hit(47, f"2026-02-{d:02d} 10:00", d) for d in range(1, 16)]  # DEFAULT, ids 1-15
    rows += [hit(47, f"2026-03-{d:02d} 10:00", d) for d in range(1, 6)]  # hits_202603
    rows += [hit(47, "2026-04-02 10:00", 99)]  # DEFAULT, after the cutoff (id 21)
    rows += [hit(47, f"2026-02-{d:02d} 11:00", d) for d in range(20, 25)]  # late, ids 22-26
    await pg.write_batch(rows, [])
    assert (await pg.fetch_one("SELECT max(id) AS m FROM hits"))["m"] == 26
    n = await pg.delete_default_before("hits", month_start(2026, 4), 24, batch=4)
    assert n == 15 + 3  # February up to the watermark (id 24)
    left = await pg.fetch_all("SELECT tableoid::regclass::text AS p, day FROM hits ORDER BY id")
    assert left == [*({"p": "hits_202603", "day": f"2026-03-0{d}"} for d in range(1, 6)),
                    {"p": "hits_default", "day": "2026-04-02"},
                    {"p": "hits_default", "day": "2026-02-23"},
                    {"p": "hits_default", "day": "2026-02-24"}]


# -- migration 0007 on a database with dossier events -----------------------------------


@pytest.fixture
async def empty_pg(pg_template: str) -> str:
    name = f"giamsat_m_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_0007_partitions_existing_dossiers(empty_pg: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = migration_files("postgres")
    folder = tmp_path / "migrations" / "postgres"
    folder.mkdir(parents=True)
    for path in real:
        if path.stem < "0007":
            shutil.copy(path, folder / path.name)
    monkeypatch.setattr("collector.store.MIGRATIONS", tmp_path / "migrations")
    db = await open_database(empty_pg)
    try:
        await db.migrate()
        old = """INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status,
                 reception, payment, level, from_dvcqg, dvcbc) VALUES (48, :ts, :day, :k, 'p',
                 'S', 1, 1, 0, 4, 0, 0) ON CONFLICT (site_id, dossier, status) DO NOTHING"""
        for k, local in [("a", "2026-01-31 23:00"), ("b", "2026-02-01 00:30"),
                         ("c", "2026-02-15 10:00"), ("d", "2026-05-03 10:00")]:
            await db.execute(old, {"ts": ts_of(local), "day": local[:10], "k": k})
        await db.execute("DELETE FROM dossiers WHERE dossier = 'd'")  # id 4 used, gone
        await db.execute("UPDATE rollup_watermarks SET last_id = 2 WHERE name = 'dossiers'")
        before = await db.fetch_all("SELECT * FROM dossiers ORDER BY id")
        for path in real:
            shutil.copy(path, folder / path.name)
        assert "0007_dossiers_partitioned" in await db.migrate()
        assert await db.fetch_all("SELECT * FROM dossiers ORDER BY id") == before
        parts = await db.fetch_all(
            "SELECT tableoid::regclass::text AS p, dossier FROM dossiers ORDER BY id")
        assert [r["p"] for r in parts] == ["dossiers_202601", "dossiers_202602",
                                           "dossiers_202602"]
        assert isinstance(db, PostgresDatabase)
        assert await db.horizon("dossiers") == 4  # the sequence remembers id 4
        assert await db.execute(_INSERT, event("a", ts_of("2026-02-20 10:00"))) == 0
        assert await db.execute(_INSERT, event("e", ts_of("2026-02-20 10:00"))) == 1
        # the skipped copy used up id 5 (the default is computed before the trigger runs):
        # a hole, as after a rollback, which the horizon steps over
        assert (await db.fetch_one("SELECT max(id) AS m FROM dossiers"))["m"] == 6
        assert await db.horizon("dossiers") == 6
        # the horizon's insert barrier is on the new table: an insert in flight holds it
        async with db.pool.acquire() as slow, slow.transaction():
            await pg_insert(slow, event("f", ts_of("2026-02-21 10:00")))
            waiting = asyncio.create_task(db.horizon("dossiers"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
        assert await waiting == 7
    finally:
        await db.close()
