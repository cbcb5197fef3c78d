"""Two collector processes and two rollup runners at once on one PostgreSQL give the same
numbers as one runner over the same raw hits.

Two ``giamsat serve`` processes take hits for the same sites and visitors at once (ids
commit out of order between them) and each runs its in-server rollup every 0.2 s (two
runners racing on the watermarks). Afterwards the raw hits are copied, in id order, into a
fresh database and rolled up by one runner in one go: every rollup table must be equal.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import hitrows as rows
import httpx
import pytest
from conftest import pg_admin, pg_url
from test_workers import free_port, wait_healthy

from collector.rollup import rollup
from collector.store import HIT_COLUMNS, Database, open_database

SLOW = 4
TABLES = {
    "rollup_site_day": "site_id, day",
    "rollup_dimensions": "site_id, dimension, day, value",
    "rollup_dvc": "site_id, day, service",
    "visits": "site_id, day, visitor, start_ts",
}


def _collector(database_url: str, port: int, tmp: Path, n: int) -> subprocess.Popen:
    env = {**os.environ, "GIAMSAT_DATABASE_URL": database_url,
           "GIAMSAT_SPOOL_DIR": str(tmp / "spool"), "GIAMSAT_REGISTRY_REFRESH": "0",
           "GIAMSAT_ROLLUP_INTERVAL": "0.2", "GIAMSAT_TRUSTED_PROXIES": "127.0.0.1"}
    with open(tmp / f"collector{n}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=log)


async def _table(db: Database, table: str, key: str) -> list[dict]:
    return await db.fetch_all(f"SELECT * FROM {table} ORDER BY {key}")


@asynccontextmanager
async def reference_db(pg_template: str) -> AsyncIterator[Database]:
    """A fresh, migrated PostgreSQL database for the one-runner reference, dropped after."""
    name = f"giamsat_ref_{os.getpid()}_{free_port()}"
    await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    ref = await open_database(pg_url(name))
    try:
        await ref.migrate()
        yield ref
    finally:
        await ref.close()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_collectors_two_runners_equal_one_runner(
    db: Database, database_url: str, pg_template: str, tmp_path: Path
) -> None:
    if db.dialect != "postgres":
        pytest.skip("several collector processes need PostgreSQL")
    ports = [free_port(), free_port()]
    procs = [_collector(database_url, p, tmp_path, i) for i, p in enumerate(ports)]
    rng = random.Random(7)
    acked = 0
    try:
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}") for p in ports]
        for c, proc in zip(clients, procs, strict=True):
            await wait_healthy(c, proc)

        async def send(i: int) -> None:
            nonlocal acked
            visitor = rng.randrange(40)  # the same visitors reach both collectors
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/{120 + visitor % 5}.0"
            headers = {"x-forwarded-for": f"198.51.100.{visitor}", "user-agent": ua,
                       "content-type": "application/x-www-form-urlencoded"}
            if i % 5 == 0:
                body = (f"idsite=48&rec=1&url=https://dichvucong.hanoi.gov.vn/tt/{i % 3}"
                        f"&e_c=dvc&e_a=step&e_n=1.00{i % 3}&e_v={rng.choice([-1, 1])}")
            else:
                body = (f"idsite=47&rec=1&url=https://hanoi.gov.vn/p/{rng.randrange(12)}"
                        f"&urlref=https://www.google.com/")
            r = await clients[i % 2].post("/tracking", content=body, headers=headers)
            assert r.status_code == 204, r.text
            acked += 1

        async def slow_collector() -> None:
            """A collector whose batches take 0.6 s to commit: its (lower) ids become visible
            after faster collectors' higher ids were committed and rolled up."""
            for k in range(SLOW):
                async with db.pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table("hits", records=[
                        rows.hit(47, int(time.time() * 1000), 1000 + k, path=f"/slow/{k}")],
                        columns=HIT_COLUMNS)
                    await asyncio.sleep(0.6)

        slow = asyncio.create_task(slow_collector())
        for start in range(0, 600, 20):  # waves of 20 concurrent hits over both collectors
            await asyncio.gather(*(send(i) for i in range(start, start + 20)))
        await slow
        await asyncio.sleep(0.5)
        for c in clients:
            await c.aclose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    during = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = 'hits'")
    assert during["last_id"] > 0, "the in-server rollup runners should have run during ingest"
    await rollup(db)  # whatever the runners had not reached yet
    hits = await db.fetch_all(f"SELECT {', '.join(HIT_COLUMNS)} FROM hits ORDER BY id")
    assert acked == 600 and len(hits) == 600 + SLOW
    wm = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = 'hits'")
    assert wm["last_id"] == (await db.fetch_one("SELECT max(id) AS m FROM hits"))["m"]

    async with reference_db(pg_template) as ref:
        await ref.write_batch([tuple(h[c] for c in HIT_COLUMNS) for h in hits], [])
        await rollup(ref)
        for table, key in TABLES.items():
            assert await _table(db, table, key) == await _table(ref, table, key), table
        site_day = await _table(ref, "rollup_site_day", "site_id, day")
        assert sum(r["hits"] for r in site_day) == 600 + SLOW
        assert sum(r["visits"] for r in site_day) > 0
