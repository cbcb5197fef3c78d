"""Group commit: few transactions for many hits, ack only after commit, flush on shutdown,
storage failure refuses (503) and acknowledges nothing. Failures come from a real SQLite
condition (a trigger that raises), not a mock."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from conftest import FORM, GOOD, form

from collector.app import create_app
from collector.config import Config
from collector.store import HIT_COLUMNS, Database
from collector.tracking import local_day
from collector.writer import Unavailable, Writer

FAIL_TRIGGER = (
    "CREATE TRIGGER refuse_hits BEFORE INSERT ON hits "
    "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
)


def row(n: int) -> tuple:
    now = int(time.time() * 1000)
    values = {c: "" for c in HIT_COLUMNS}
    values.update(site_id=47, ts=now, day=local_day(now), kind="pageview", visitor=n,
                  pv_id=f"p{n}", host="hanoi.gov.vn", path=f"/{n}", url=f"https://hanoi.gov.vn/{n}",
                  e_v=None, dvc_state=None)
    return tuple(values[c] for c in HIT_COLUMNS)


def sqlite_only(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the failing trigger is written in SQLite's syntax")


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


async def test_storage_failure_acknowledges_nothing(db: Database) -> None:
    sqlite_only(db)
    writer = Writer(db)
    writer.start()
    try:
        await db.execute(FAIL_TRIGGER)
        writer.drop(47, "2026-01-01", "bot")
        results = await asyncio.gather(*(writer.submit([row(n)]) for n in range(50)),
                                       return_exceptions=True)
        assert all(isinstance(r, Unavailable) and "disk says no" in str(r) for r in results)
        assert writer.failures >= 1
        assert await count(db) == 0
        assert await count(db, "SELECT count(*) AS n FROM dropped") == 0
        await db.execute("DROP TRIGGER refuse_hits")
        await writer.submit([row(1)])
        assert await count(db) == 1
        # the drop count of the failed batch was kept, not lost and not doubled
        assert await db.fetch_all("SELECT reason, n FROM dropped") == [{"reason": "bot", "n": 1}]
    finally:
        await writer.close()


async def test_storage_failure_is_503_through_the_app(client: httpx.AsyncClient,
                                                      db: Database) -> None:
    sqlite_only(db)
    await db.execute(FAIL_TRIGGER)
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.headers["x-giamsat-error"] == "storage unavailable: disk says no"
    bulk = await client.post("/tracking", content='{"requests": ["?idsite=47&rec=1&url='
                             'https://hanoi.gov.vn/b"]}')
    assert bulk.status_code == 503
    health = await client.get("/healthz")
    assert health.json()["writer"]["failures"] >= 2
    await db.execute("DROP TRIGGER refuse_hits")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 204
    assert await count(db) == 1


async def test_salt_storage_failure_is_503(client: httpx.AsyncClient, db: Database) -> None:
    sqlite_only(db)
    await db.execute("DELETE FROM salts")
    client.app.state.giamsat.enricher.salts._cache.clear()  # type: ignore[attr-defined]
    await db.execute("CREATE TRIGGER refuse_salts BEFORE INSERT ON salts "
                     "BEGIN SELECT RAISE(ABORT, 'salts locked'); END")
    r = await client.post("/tracking", content=form(GOOD), headers=FORM)
    assert r.status_code == 503
    assert r.headers["x-giamsat-error"] == "storage unavailable: salts locked"


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
