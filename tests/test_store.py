"""The storage contract on both backends, and what only PostgreSQL has (rebinding,
partitions, concurrent migration, the rollup horizon)."""

from __future__ import annotations

import asyncio

import pytest

from collector.store import HIT_COLUMNS, Database, migration_files, open_database
from collector.store.postgres import PostgresDatabase, month_start, rebind
from collector.tracking import local_day


def hit(site_id: int = 47, ts: int = 1_763_900_000_000, **kw: object) -> tuple:
    row = {c: "" for c in HIT_COLUMNS}
    row.update(site_id=site_id, ts=ts, day=local_day(ts), kind="pageview", visitor=-(2**63),
               host="hanoi.gov.vn", path="/", url="https://hanoi.gov.vn/", e_v=None,
               dvc_state=None)
    row.update(kw)
    return tuple(row[c] for c in HIT_COLUMNS)


def test_rebind_names_literals_comments_and_casts() -> None:
    sql, names = rebind(
        "SELECT ':no', \"a:b\", x::text, $$ :nor $$ -- :neither\n"
        "FROM t WHERE a = :a AND b = :b_1 OR a = :a /* :c */"
    )
    assert names == ("a", "b_1")
    assert sql == (
        "SELECT ':no', \"a:b\", x::text, $$ :nor $$ -- :neither\n"
        "FROM t WHERE a = $1 AND b = $2 OR a = $1 /* :c */"
    )
    assert rebind("SELECT 'it''s :x', :y")[0] == "SELECT 'it''s :x', $1"


async def test_queries_and_rowcounts(db: Database) -> None:
    n = await db.execute(
        "INSERT INTO settings (key, value) VALUES (:k, :v) ON CONFLICT (key) DO NOTHING",
        {"k": "a", "v": "1"},
    )
    assert n == 1
    await db.execute_many("INSERT INTO settings (key, value) VALUES (:k, :v)",
                          [{"k": "b", "v": "2"}, {"k": "c", "v": "3"}])
    assert await db.execute("UPDATE settings SET value = :v WHERE key <> :k",
                            {"v": "x", "k": "secret"}) == 3
    rows = await db.fetch_all("SELECT key, value FROM settings WHERE key IN ('a', 'b', 'c') "
                              "ORDER BY key LIMIT :n OFFSET :m", {"n": 2, "m": 1})
    assert rows == [{"key": "b", "value": "x"}, {"key": "c", "value": "x"}]
    assert await db.fetch_one("SELECT value FROM settings WHERE key = :k", {"k": "zz"}) is None


async def test_write_batch_keeps_every_column_of_mixed_rows_in_order(db: Database) -> None:
    """Page views and events in one batch (SQLite writes them with two statements shapes),
    more rows than one statement takes: every value back, ids in arrival order."""
    rows = []
    for i in range(75):
        if i % 7 == 3:
            rows.append(hit(ts=1_763_900_000_000 + i, kind="dvc", e_c="dvc", e_a="step",
                            e_n="1.000046", e_v=1.0, dvc_service="1.000046", dvc_state=1,
                            dvc_ref=f"r{i}", target="", path=f"/p{i}"))
        elif i % 11 == 5:
            rows.append(hit(ts=1_763_900_000_000 + i, kind="outlink", target=f"https://x.vn/{i}",
                            path=f"/p{i}"))
        else:
            rows.append(hit(ts=1_763_900_000_000 + i, path=f"/p{i}", title=f"t{i}"))
    await db.write_batch(rows, [])
    stored = await db.fetch_all(f"SELECT {', '.join(HIT_COLUMNS)} FROM hits ORDER BY id")
    assert [tuple(r[c] for c in HIT_COLUMNS) for r in stored] == rows


async def test_aggregates_come_back_as_int_and_float(db: Database) -> None:
    await db.write_batch([hit(dvc_state=2, e_v=1.5), hit(dvc_state=3, e_v=2.0)], [])
    row = await db.fetch_one(
        "SELECT sum(dvc_state) AS s, count(*) AS n, sum(dvc_state) * 1.0 / count(*) AS r, "
        "round(avg(e_v), 2) AS a FROM hits"
    )
    assert row == {"s": 5, "n": 2, "r": 2.5, "a": 1.75}
    assert type(row["s"]) is int and type(row["r"]) is float


async def test_transaction_commits_or_rolls_back(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO settings (key, value) VALUES ('t1', 'v')")
        await tx.advisory_lock("test")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO settings (key, value) VALUES ('t2', 'v')")
            raise RuntimeError("boom")
    keys = await db.fetch_all("SELECT key FROM settings WHERE key LIKE 't%' ORDER BY key")
    assert keys == [{"key": "t1"}]


async def test_write_batch_hits_and_dropped(db: Database) -> None:
    await db.write_batch([hit(), hit(48, kind="dvc", dvc_state=1, dvc_service="1.001")],
                         [(0, "2026-11-23", "unknown-site", "", 2)])
    await db.write_batch([hit()], [(0, "2026-11-23", "unknown-site", "", 3)])
    rows = await db.fetch_all("SELECT site_id, kind, visitor, dvc_state FROM hits ORDER BY id")
    assert [(r["site_id"], r["kind"], r["dvc_state"]) for r in rows] == [
        (47, "pageview", None), (48, "dvc", 1), (47, "pageview", None)]
    assert rows[0]["visitor"] == -(2**63)
    assert await db.fetch_all("SELECT reason, n FROM dropped") == [
        {"reason": "unknown-site", "n": 5}]
    ids = [r["id"] for r in await db.fetch_all("SELECT id FROM hits ORDER BY id")]
    assert await db.hits_horizon() == max(ids)


async def test_migrate_is_idempotent(db: Database) -> None:
    assert await db.migrate() == []
    names = await db.fetch_all("SELECT name FROM schema_migrations ORDER BY name")
    assert names[0]["name"] == "0001_init"


# -- PostgreSQL only --------------------------------------------------------------------


@pytest.fixture
def pg(db: Database) -> PostgresDatabase:
    if not isinstance(db, PostgresDatabase):
        pytest.skip("PostgreSQL only")
    return db


async def test_partitions_ahead_default_and_retention(pg: PostgresDatabase) -> None:
    # start from no month partition at all (migrate made the clock's month and two more),
    # so what exists below is what this test made, whatever the date it runs on
    for table in ("hits", "dossiers"):
        await pg.drop_partitions_before(2**62, table=table)
        assert await pg.partitions(table) == []
    nov = month_start(2026, 11)
    # the month of `now` (local time) and `ahead` more, across a year end, for both raw
    # tables; made once
    months = ["202611", "202612", "202701"]
    assert await pg.ensure_partitions(now_ms=nov + 5, ahead=2) == [
        *(f"hits_{m}" for m in months), *(f"dossiers_{m}" for m in months)]
    assert await pg.ensure_partitions(now_ms=nov + 5, ahead=2) == []
    # a hit far outside the created months goes to DEFAULT, never refused
    old = month_start(2020, 1) + 5
    await pg.write_batch([hit(ts=old), hit(ts=nov + 1)], [])
    assert await pg.fetch_one("SELECT count(*) AS n FROM hits_default") == {"n": 1}
    assert await pg.fetch_one("SELECT count(*) AS n FROM hits_202611") == {"n": 1}
    # creating that month's partition moves the row out of DEFAULT
    created = await pg.ensure_partitions(now_ms=old, ahead=1)
    assert created == ["hits_202001", "hits_202002", "dossiers_202001", "dossiers_202002"]
    assert await pg.fetch_one("SELECT count(*) AS n FROM hits_default") == {"n": 0}
    assert await pg.fetch_one("SELECT count(*) AS n FROM hits_202001") == {"n": 1}
    # local month: 2026-10-31 17:00 UTC is already November in Vietnam
    assert nov == 1_793_466_000_000
    assert [(lo, hi) for name, lo, hi in await pg.partitions("dossiers")
            if name == "dossiers_202611"] == [(nov, month_start(2026, 12))]
    # retention keeps a partition holding hits not rolled up yet, then drops it
    cut = month_start(2020, 3)
    assert await pg.drop_partitions_before(cut, max_id=0) == [("hits_202002", 0)]
    assert await pg.drop_partitions_before(cut) == [("hits_202001", 1)]
    assert await pg.fetch_one("SELECT count(*) AS n FROM hits") == {"n": 1}
    assert [name for name, _lo, _hi in await pg.partitions()] == [
        f"hits_{m}" for m in months]
    assert await pg.drop_partitions_before(cut, table="dossiers") == [
        ("dossiers_202001", 0), ("dossiers_202002", 0)]


async def test_concurrent_migrations_apply_once(database_url: str) -> None:
    if not database_url.startswith("postgresql://"):
        pytest.skip("PostgreSQL only")
    dbs = [await open_database(database_url) for _ in range(3)]
    try:
        await dbs[0].execute("DROP SCHEMA public CASCADE")
        await dbs[0].execute("CREATE SCHEMA public")
        results = await asyncio.gather(*(d.migrate() for d in dbs))
        files = [p.stem for p in migration_files("postgres")]
        assert sorted(results, key=len) == [[], [], files]  # one applied them, once
    finally:
        for d in dbs:
            await d.close()


INSERTS = {
    "hits": ("INSERT INTO hits (site_id, ts, day, kind, visitor, host, path, url) "
             "VALUES (47, $1, 'd', 'pageview', 1, 'h', '/', 'u')"),
    "dossiers": ("INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, "
                 "reception, payment, level, from_dvcqg, dvcbc) "
                 "VALUES (48, $1, 'd', 'x', 'p', '1.001', 1, 1, 0, 4, 0, 0)"),
}


@pytest.mark.parametrize("table", ["hits", "dossiers"])
async def test_horizon_waits_for_inflight_insert(pg: PostgresDatabase, table: str) -> None:
    """An insert holding a low id but not yet committed keeps the horizon below it, even
    when a later insert (higher id) has committed already."""
    async with pg.pool.acquire() as slow, slow.transaction():
        await slow.execute(INSERTS[table].replace("'x'", "'slow'"), month_start(2026, 11))
        async with pg.pool.acquire() as fast:  # commits a higher id first
            await fast.execute(INSERTS[table], month_start(2026, 11))
        horizon = asyncio.create_task(pg.horizon(table))
        await asyncio.sleep(0.2)
        assert not horizon.done()  # waits: the in-flight id must not be skipped
    ids = [r["id"] for r in await pg.fetch_all(f"SELECT id FROM {table} ORDER BY id")]
    assert len(ids) == 2 and await horizon == max(ids)


async def test_retention_drops_old_partitions_after_rollup(db: Database) -> None:
    from collector.retention import retention
    from collector.rollup import rollup

    now = month_start(2026, 11) + 86_400_000
    old = month_start(2025, 3) + 86_400_000  # > 400 days before `now`
    if isinstance(db, PostgresDatabase):
        await db.ensure_partitions(now_ms=old, ahead=0)
    await db.write_batch([hit(ts=old), hit(ts=old + 1), hit(ts=now)], [])
    report = await retention(db, 400, now_ms=now)
    assert report.hits_deleted == 0  # nothing rolled up yet: nothing may go
    await rollup(db)
    report = await retention(db, 400, now_ms=now)
    assert report.hits_deleted == 2
    assert await db.fetch_all("SELECT ts FROM hits") == [{"ts": now}]
    if isinstance(db, PostgresDatabase):
        assert "hits_202503" not in [name for name, _lo, _hi in await db.partitions()]
    days = await db.fetch_all("SELECT day, hits FROM rollup_site_day ORDER BY day")
    assert [d["hits"] for d in days] == [2, 1]  # rollups stay


@pytest.mark.parametrize("n", [3, 250])  # one-statement path and COPY path
async def test_a_batch_id_is_written_once(pg: PostgresDatabase, n: int) -> None:
    hits = [hit(path=f"/{i}", e_v=float(i), dvc_state=i) for i in range(n)]
    dropped = [(0, "2026-11-23", "bot", "", 2)]
    assert await pg._write("batch-a", hits, dropped) is True
    assert await pg._write("batch-a", hits, dropped) is False  # a replay adds nothing
    assert await pg.fetch_one("SELECT count(*) AS n, sum(dvc_state) AS s FROM hits") == {
        "n": n, "s": n * (n - 1) // 2}
    assert await pg.fetch_all("SELECT n FROM dropped") == [{"n": 2}]
