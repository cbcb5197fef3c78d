"""Daily salts are created a day ahead, so a collector crosses local midnight without the
database: unit behaviour on both backends, and a real PostgreSQL outage across midnight
(a private server, stopped while the collector's clock passes 00:00)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from pathlib import Path

import httpx
import pytest
from conftest import UA_CHROME, PrivatePostgres
from test_spool import _prepare

from collector.app import create_app
from collector.config import Config
from collector.enrich import Salts, visitor_id
from collector.store import Database, open_database
from collector.tracking import local_day

D0, D1, D2 = "2026-05-10", "2026-05-11", "2026-05-12"


async def salt_rows(db: Database) -> dict[str, bytes]:
    return {r["day"]: bytes.fromhex(r["salt"])
            for r in await db.fetch_all("SELECT day, salt FROM salts")}


async def until(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_next_days_salt_is_made_ahead(database_url: str) -> None:
    db = await open_database(database_url)
    await db.migrate()
    await db.execute("INSERT INTO salts (day, salt) VALUES ('2026-05-01', :s)", {"s": "ab" * 32})
    salts = Salts(db)
    s0 = await salts.for_day(D0)
    stored = await salt_rows(db)
    assert set(stored) == {D0, D1} and stored[D0] == s0  # the old day's salt is deleted
    assert salts.cached(D0) == s0
    assert salts.cached(D1) is None  # not in use yet: its next day is not made
    # another collector on the same database uses the same salts
    other = Salts(db)
    assert await other.for_day(D0) == s0 and await other.for_day(D1) == stored[D1]
    await db.close()
    # midnight with the database away: the next day needs no database
    assert await salts.for_day(D1) == stored[D1]
    with pytest.raises(Exception):  # noqa: B017 - a day never prepared needs the database
        await salts.for_day(D2)
    assert salts.cached(D1) is None  # still preparing D2 (in the background, later)

    db = await open_database(database_url)
    try:
        salts = Salts(db)
        assert await salts.for_day(D0) == s0
        assert await salts.for_day(D1) == stored[D1]  # held: answered at once …
        await until(lambda: salts.cached(D1) is not None)  # … D2 made in the background
        assert salts.cached(D1) == stored[D1]
        assert set(await salt_rows(db)) == {D0, D1, D2}
        salts.clear()
        assert salts.cached(D0) is None and await salts.for_day(D0) == s0  # from the table
    finally:
        await db.close()


async def test_outage_across_local_midnight_keeps_taking_hits(
    private_pg: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector started before the outage; the server stops at 23:59:58 local time
    and the clock passes midnight: hits of the new day are still accepted (spooled), and
    once the server is back they are stored once, hashed with the new day's salt."""
    url = await _prepare(private_pg)
    real = time.time
    offset = 0.0
    monkeypatch.setattr(time, "time", lambda: real() + offset)

    def set_local(ms: int) -> None:
        nonlocal offset
        offset = ms / 1000 - real()

    today = dt.date.fromisoformat(local_day(int(real() * 1000)))
    midnight = int(dt.datetime.combine(
        today + dt.timedelta(days=1), dt.time(), dt.timezone(dt.timedelta(hours=7))
    ).timestamp() * 1000)
    new_day = (today + dt.timedelta(days=1)).isoformat()
    set_local(midnight - 3_600_000)  # 23:00 local
    config = Config(database_url=url, registry_refresh=0, rollup_interval=0,
                    spool_dir=str(tmp_path / "spool"))
    app = create_app(config)
    acked: list[tuple[int, int]] = []  # (hit number, collector time when sent, ms)
    refused: list[tuple[int, int, str]] = []
    counter = itertools.count()
    sending = True
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector.test",
                                     headers={"user-agent": UA_CHROME}) as c:

            async def sender() -> None:
                while sending:
                    i = next(counter)
                    sent = int(time.time() * 1000)
                    r = await c.post(
                        "/tracking", content=f"idsite=47&rec=1&url=https://hanoi.gov.vn/m/{i}",
                        headers={"content-type": "application/x-www-form-urlencoded"})
                    if r.status_code == 204:
                        acked.append((i, sent))
                    else:
                        refused.append((i, r.status_code, r.headers.get("x-giamsat-error")))
                    await asyncio.sleep(0.005)

            senders = [asyncio.create_task(sender()) for _ in range(3)]
            await until(lambda: len(acked) >= 20)
            set_local(midnight - 2_000)  # 23:59:58
            await asyncio.to_thread(private_pg.stop)
            await until(lambda: acked and acked[-1][1] >= midnight + 1_500, timeout=30)
            after = sum(1 for _i, t in acked if t >= midnight)
            assert after >= 20, after  # the new day's hits were taken …
            assert (await c.get("/healthz")).json()["status"] == "degraded"  # … into the spool
            await asyncio.to_thread(private_pg.start)
            await until(lambda: sum(1 for _i, t in acked if t >= midnight) >= after + 20,
                        timeout=30)
            sending = False
            await asyncio.gather(*senders)
            deadline = time.monotonic() + 30
            while (body := (await c.get("/healthz")).json())["status"] != "ok":
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)

    assert refused == []  # no 503 at midnight
    db = await open_database(url)
    try:
        rows = await db.fetch_all("SELECT path, day, visitor FROM hits")
        salts = await salt_rows(db)
    finally:
        await db.close()
    by_path: dict[str, list[dict]] = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    assert sorted(by_path) == sorted(f"/m/{i}" for i, _t in acked)
    assert {len(v) for v in by_path.values()} == {1}  # each acknowledged hit exactly once
    new = [by_path[f"/m/{i}"][0] for i, t in acked if t >= midnight]
    assert new and {r["day"] for r in new} == {new_day}
    # hashed with the new day's salt, the one every collector reads from the table
    expected = visitor_id(salts[new_day], 47, "203.0.113.7", UA_CHROME)
    assert {r["visitor"] for r in new} == {expected}
