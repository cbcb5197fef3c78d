"""The local spool: record format, replay exactly once, and a real PostgreSQL outage."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx
from conftest import UA_CHROME, PrivatePostgres, pg_admin, pg_url

from collector.app import create_app
from collector.config import Config
from collector.registry import load_agencies, make_site, save_site
from collector.spool import Spool, encode, records
from collector.store import open_database


def test_records_stop_at_a_torn_or_corrupt_tail() -> None:
    a = encode("a", [[1, "x", None, 1.5]], [])
    b = encode("b", [], [[0, "2026-11-23", "bot", "", 2]])
    assert [r["id"] for r in records(a + b)] == ["a", "b"]
    assert [r["id"] for r in records(a + b[:-3])] == ["a"]  # crash mid-append
    bad = bytearray(a + b)
    bad[len(a) + 12] ^= 0xFF
    assert [r["id"] for r in records(bytes(bad))] == ["a"]
    assert next(records(a))["hits"] == [[1, "x", None, 1.5]]


async def test_replay_applies_each_batch_once_and_keeps_what_failed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        await spool.append(f"b{i}", [[i]], [])
    seen: list[str] = []

    async def flaky(batch_id: str, hits: list, dropped: list) -> None:
        if batch_id == "b1" and "b1" not in seen:
            seen.append("b1")
            raise ConnectionRefusedError("down again")
        seen.append(batch_id)

    try:
        await spool.replay(flaky)
    except ConnectionRefusedError:
        pass
    assert seen == ["b0", "b1"] and len(spool.files()) == 1  # the file stays
    await spool.append("b3", [[3]], [])  # a new active file, locked while open
    assert await spool.replay(flaky) == 4  # sealed file (b0 again: apply dedups) + b3
    assert seen == ["b0", "b1", "b0", "b1", "b2", "b3"] and spool.files() == []
    spool.close()


async def _prepare(server: PrivatePostgres) -> str:
    await pg_admin("CREATE DATABASE giamsat", server.admin_url)
    url = pg_url("giamsat", server.admin_url)
    db = await open_database(url)
    await db.migrate()
    await load_agencies(db)
    await save_site(db, make_site(47, "H26", "portal", "Cổng TTĐT Hà Nội", ["hanoi.gov.vn"]))
    await db.close()
    return url


async def test_postgres_outage_every_acknowledged_hit_exactly_once(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    url = await _prepare(private_pg)
    config = Config(database_url=url, registry_refresh=0, rollup_interval=0,
                    spool_dir=str(tmp_path / "spool"))
    app = create_app(config)
    acked: list[int] = []
    refused: list[tuple[int, int]] = []
    counter = itertools.count()
    sending = True

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector.test",
                                     headers={"user-agent": UA_CHROME}) as c:

            async def sender() -> None:
                while sending:
                    i = next(counter)
                    r = await c.post(
                        "/tracking", content=f"idsite=47&rec=1&url=https://hanoi.gov.vn/p/{i}",
                        headers={"content-type": "application/x-www-form-urlencoded"})
                    if r.status_code == 204:
                        acked.append(i)
                    else:
                        refused.append((i, r.status_code))
                    await asyncio.sleep(0.002)

            async def until(n: int) -> None:
                while len(acked) < n:
                    await asyncio.sleep(0.01)

            senders = [asyncio.create_task(sender()) for _ in range(4)]
            await until(40)
            await asyncio.to_thread(private_pg.stop)  # mid-stream
            health = await c.get("/healthz")  # the database is away, hits still taken
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert health.json()["database_ok"] is False
            before_restart = len(acked)
            await until(before_restart + 60)  # acknowledged while the server is down
            health = await c.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["store"]["degraded"] is True
            assert health.json()["store"]["spool"]["appended"] > 0
            await asyncio.to_thread(private_pg.start)
            await until(len(acked) + 40)
            sending = False
            await asyncio.gather(*senders)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                body = (await c.get("/healthz")).json()
                if body["status"] == "ok":
                    break
                await asyncio.sleep(0.2)
            assert body["status"] == "ok", body
            assert body["store"]["spool"]["replayed"] > 0

    assert refused == []  # the spool took everything while the server was away
    db = await open_database(url)
    try:
        rows = await db.fetch_all("SELECT path, count(*) AS n FROM hits GROUP BY path")
    finally:
        await db.close()
    counts = {r["path"]: r["n"] for r in rows}
    assert sorted(counts) == sorted(f"/p/{i}" for i in acked)
    assert set(counts.values()) == {1}
    assert list((tmp_path / "spool").glob("*.log")) == []


async def test_replay_sets_aside_a_batch_the_database_refuses(db, tmp_path: Path) -> None:
    from collector.store.postgres import PostgresDatabase

    if not isinstance(db, PostgresDatabase):
        import pytest

        pytest.skip("PostgreSQL only")
    from test_store import hit

    db.spool = Spool(tmp_path)
    await db.spool.append("bad", [list(hit(visitor="not a number"))], [])
    await db.spool.append("good", [list(hit(path="/ok"))], [])
    assert await db.replay_spool() == 2
    assert await db.fetch_all("SELECT path FROM hits") == [{"path": "/ok"}]
    assert [r["id"] for r in records((tmp_path / "rejected.log").read_bytes())] == ["bad"]
    assert await db.replay_spool() == 0  # nothing left to replay
