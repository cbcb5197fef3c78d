"""Group commit: few transactions for many hits, ack only after commit, flush on shutdown,
storage failure refuses (503) and acknowledges nothing. Failures come from a real database
condition (a trigger that raises, in each backend's own syntax), not a mock. On PostgreSQL
such a batch is refused for its content (not an outage): answered 503, never spooled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from conftest import FORM, GOOD, form

from collector.app import create_app
from collector.config import Config
from collector.store import HIT_COLUMNS, Database
from collector.tracking import local_day
from collector.writer import Unavailable, Writer


async def refuse(db: Database, table: str, message: str) -> None:
    """Make every insert into ``table`` fail with ``message`` (trigger ``refuse_<table>``)."""
    if db.dialect == "sqlite":
        await db.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                         f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        return
    await db.execute(
        f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$")
    # a row trigger on a partitioned table is on every partition (COPY included)
    await db.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                     f"FOR EACH ROW EXECUTE FUNCTION refuse_{table}()")


async def allow(db: Database, table: str) -> None:
    if db.dialect == "sqlite":
        await db.execute(f"DROP TRIGGER refuse_{table}")
    else:
        await db.execute(f"DROP TRIGGER refuse_{table} ON {table}")


def no_spool_files(config: Config) -> bool:
    return not list(Path(config.spool_dir).glob("*.log"))


def row(n: int) -> tuple:
    now = int(time.time() * 1000)
    values = {c: "" for c in HIT_COLUMNS}
    values.update(site_id=47, ts=now, day=local_day(now), kind="pageview", visitor=n,
                  pv_id=f"p{n}", host="hanoi.gov.vn", path=f"/{n}", url=f"https://hanoi.gov.vn/{n}",
                  e_v=None, dvc_state=None)
    return tuple(values[c] for c in HIT_COLUMNS)


async def count(db: Database, sql: str = "SELECT count(*) AS n FROM hits") -> int:
    return (await db.fetch_one(sql))["n"]


async def test_group_commit_batches_concurrent_submits(db: Database) -> None:
    writer = Writer(db)
    writer.start()
    try:
        await asyncio.gather(*(writer.submit([row(n)]) for n in range(500)))
        assert writer.rows == 500 == await count(db)
        assert 1 <= writer.batches <= 5  # 500 waiting requests, a handful of transactions
        # and one at a time, each is its own transaction
        for n in range(500, 505):
            await writer.submit([row(n)])
        assert writer.batches <= 10
    finally:
        await writer.close()


async def test_write_lock_held_elsewhere_waits_off_the_loop(db: Database) -> None:
    """SQLite writes batches on the loop's thread without waiting for the lock; while
    another connection holds it (a rollup batch), the batch waits on the writer's thread:
    committed once the lock is free, and the loop keeps running meanwhile."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's write lock")
    import sqlite3

    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    writer = Writer(db)
    writer.start()
    try:
        await writer.submit([row(0)])  # the writer connection is open
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        pending = asyncio.create_task(writer.submit([row(1)]))
        await asyncio.sleep(0.4)
        assert not pending.done()  # waiting for the lock, not refused
        assert ticks >= 10  # ... and not on the event loop
        await asyncio.to_thread(other.execute, "COMMIT")
        await asyncio.wait_for(pending, 10)
        tick.cancel()
        assert writer.failures == 0 and await count(db) == 2
    finally:
        other.close()
        await writer.close()


async def test_batch_max_splits_large_queues(db: Database) -> None:
    writer = Writer(db, batch_max=50)
    writer.start()
    try:
        await asyncio.gather(*(writer.submit([row(n)]) for n in range(200)))
        assert writer.batches >= 4 and await count(db) == 200
    finally:
        await writer.close()


async def test_acknowledged_means_committed(db: Database) -> None:
    writer = Writer(db)
    writer.start()

    async def one(n: int) -> None:
        await writer.submit([row(n)])
        # visible at once to another connection: committed, not merely queued
        assert await count(db, f"SELECT count(*) AS n FROM hits WHERE pv_id = 'p{n}'") == 1

    try:
        await asyncio.gather(*(one(n) for n in range(100)))
    finally:
        await writer.close()


async def test_close_flushes_everything_accepted(db: Database) -> None:
    writer = Writer(db)
    writer.start()
    tasks = [asyncio.create_task(writer.submit([row(n)])) for n in range(300)]
    await asyncio.sleep(0)  # all 300 queued
    await writer.close()
    await asyncio.gather(*tasks)
    assert await count(db) == 300
    with pytest.raises(Unavailable, match="shutting down"):
        await writer.submit([row(999)])


@pytest.mark.parametrize("n", [50, 400])  # PostgreSQL: one statement, and COPY (> 200)
async def test_storage_failure_acknowledges_nothing(db: Database, n: int) -> None:
    writer = Writer(db)
    writer.start()
    try:
        await refuse(db, "hits", "disk says no")
        writer.drop(47, "2026-01-01", "bot")
        # queued at once: a batch of n hits (PostgreSQL: 400 go by COPY)
        results = await asyncio.gather(*(writer.submit([row(i)]) for i in range(n)),
                                       return_exceptions=True)
        assert all(isinstance(r, Unavailable) and "disk says no" in str(r) for r in results)
        assert writer.failures >= 1
        assert await count(db) == 0
        assert await count(db, "SELECT count(*) AS n FROM dropped") == 0
        if db.dialect == "postgres":  # refused for its content: not spooled, not degraded
            assert db.degraded is False and db.spool is None
        await allow(db, "hits")
        await writer.submit([row(1)])
        assert await count(db) == 1
        # the drop count of the failed batch was kept, not lost and not doubled
        assert await db.fetch_all("SELECT reason, n FROM dropped") == [{"reason": "bot", "n": 1}]
    finally:
        await writer.close()


async def test_storage_failure_is_503_through_the_app(client: httpx.AsyncClient,
                                                      db: Database, config: Config) -> None:
    await refuse(db, "hits", "disk says no")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.headers["x-giamsat-error"] == "storage unavailable: disk says no"
    bulk = await client.post("/tracking", content='{"requests": ["?idsite=47&rec=1&url='
                             'https://hanoi.gov.vn/b"]}')
    assert bulk.status_code == 503
    health = await client.get("/healthz")
    assert health.json()["writer"]["failures"] >= 2
    if db.dialect == "postgres":
        # the app's store has a spool: a bad batch is not an outage, nothing was spooled
        store = client.app.state.giamsat.db  # type: ignore[attr-defined]
        assert store.spool is not None and store.spool.appended == 0
        assert store.degraded is False and no_spool_files(config)
        assert health.json()["store"]["degraded"] is False
    await allow(db, "hits")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 204
    assert await count(db) == 1


async def test_salt_storage_failure_is_503(client: httpx.AsyncClient, db: Database) -> None:
    """A day whose salt was never created cannot take hits until the database creates it."""
    await db.execute("DELETE FROM salts")
    client.app.state.giamsat.enricher.salts.clear()  # type: ignore[attr-defined]
    await refuse(db, "salts", "salts locked")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 503
    assert r.headers["x-giamsat-error"] == "storage unavailable: salts locked"
    await allow(db, "salts")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 204


async def test_lifespan_exit_flushes_accepted_hits(db: Database, config: Config) -> None:
    app = create_app(config)
    statuses: list[int] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test", headers={
                "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                "Gecko) Chrome/130.0.0.0 Safari/537.36"}) as c:

            async def send(n: int) -> None:
                r = await c.post("/tracking", headers=FORM, content=form(
                    {**GOOD, "url": f"https://hanoi.gov.vn/s/{n}"}))
                statuses.append(r.status_code)

            tasks = [asyncio.create_task(send(n)) for n in range(200)]
            writer = app.state.giamsat.writer
            for _ in range(100_000):  # leave while hits are queued, not yet committed
                if writer.pending >= 1:
                    break
                await asyncio.sleep(0)
            pending_at_exit = writer.pending
    # the lifespan has exited: the writer flushed what it had accepted, then closed
    await asyncio.gather(*tasks)
    assert set(statuses) <= {204, 503}
    answered = statuses.count(204)
    assert pending_at_exit >= 1 and answered >= pending_at_exit
    assert await count(db) == answered


async def test_sqlite_group_commit_gets_in_between_rollup_batches(db: Database) -> None:
    """A rollup of many batches takes the write lock again and again; the group commit
    waiting meanwhile gets in between two batches, not only after the whole run."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's single writer")
    from collector.rollup import rollup

    # 20 sites × 150 visitors × 2 page views: 40 batches of 150 hits each
    rows = [row(n) for n in range(6000)]
    rows = [(r[0] + n % 20, *r[1:4], n // 2, *r[5:]) for n, r in enumerate(rows)]
    for i in range(0, len(rows), 1000):
        await db.write_batch(rows[i:i + 1000], [])
    await db.write_batch([row(10**6)], [])  # the writer connection is open

    running = asyncio.create_task(rollup(db, batch=150))
    while (await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = 'hits'")
           or {"last_id": 0})["last_id"] == 0:
        await asyncio.sleep(0.002)  # the first batch has committed
    await asyncio.wait_for(db.write_batch([row(10**6 + 1)], []), 30)
    still_running = not running.done()
    report = await running
    assert report.batches >= 30
    assert still_running, "the hit waited for the whole rollup"
