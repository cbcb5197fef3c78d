"""Two collector processes and two rollup runners at once on one PostgreSQL, with page
views, DVC steps *and* dossier events from one-stop systems, give the same numbers as one
runner over the same raw rows — the monthly dimensions and the dossier rollup included.

Both ``giamsat serve`` processes take hits and ``/TrackingMCDT`` events at once (ids of
both raw tables commit out of order between them) and each runs its in-server rollup every
0.2 s. Every event is posted twice, to both collectors at the same moment (a one-stop
system retrying): exactly one copy is stored, the other answered as a duplicate. A slow
writer holds a low dossier id uncommitted for 0.6 s while higher ones are committed and
rolled up. Afterwards the raw rows are copied in id order into a fresh database and rolled
up by one runner: every rollup table must be equal.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from test_rollup_concurrent import _collector, _table, reference_db
from test_workers import free_port, wait_healthy

from collector.dossiers import _INSERT, issue_token
from collector.rollup import rollup
from collector.store import HIT_COLUMNS, Database
from collector.store.postgres import _Queries
from collector.tracking import local_day

TABLES = {
    "rollup_site_day": "site_id, day",
    "rollup_dimensions": "site_id, dimension, day, value",
    "rollup_dimensions_month": "site_id, dimension, month, value",
    "rollup_dvc": "site_id, day, service",
    "rollup_dossiers": "site_id, day, service",
    "visits": "site_id, day, visitor, start_ts",
}
DOSSIER_COLUMNS = ("site_id", "ts", "day", "dossier", "profile", "service", "service_name",
                   "status", "reception", "payment", "level", "from_dvcqg", "dvcbc",
                   "user_type", "user_location", "user_ref")
EVENTS = 120
SLOW = 3


def dossier_event(i: int, rng: random.Random) -> dict:
    return {
        "CodeProfile": f"P-{i}", "SiteId": "48", "CodeTTHC": f"1.00{i % 4}",
        "NameTTHC": "Cấp giấy phép", "MaHoSo": f"HS-{i // 3}",  # three statuses a dossier
        "Status": [1, 2, 3][i % 3], "FormsReception": rng.choice([1, 2]),
        "FormsPayments": rng.choice([0, 1, 2]), "Level": rng.choice([1, 3, 4]),
        "IsFromDVCQG": 0, "IsDVCBC": 0, "User": {"TYPE": "CongDan", "LOCATION": "H26"},
    }


async def test_two_collectors_two_runners_with_dossiers_equal_one_runner(
    db: Database, database_url: str, pg_template: str, tmp_path: Path
) -> None:
    if db.dialect != "postgres":
        pytest.skip("several collector processes need PostgreSQL")
    token = await issue_token(db, 48)
    ports = [free_port(), free_port()]
    procs = [_collector(database_url, p, tmp_path, i) for i, p in enumerate(ports)]
    rng = random.Random(11)
    answers: list[dict] = []
    hits_acked = 0
    try:
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}") for p in ports]
        for c, proc in zip(clients, procs, strict=True):
            await wait_healthy(c, proc)

        async def hit(i: int) -> None:
            nonlocal hits_acked
            visitor = rng.randrange(30)
            headers = {"x-forwarded-for": f"198.51.100.{visitor}",
                       "user-agent": f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{120 + visitor}.0",
                       "content-type": "application/x-www-form-urlencoded"}
            if i % 4 == 0:
                body = (f"idsite=48&rec=1&url=https://dichvucong.hanoi.gov.vn/tt/{i % 3}"
                        f"&e_c=dvc&e_a=step&e_n=1.00{i % 3}&e_v={rng.choice([-1, 1])}")
            else:
                body = (f"idsite=47&rec=1&url=https://hanoi.gov.vn/p/{rng.randrange(9)}"
                        f"&urlref=https://www.facebook.com/&utm_campaign=c{i % 2}")
            r = await clients[i % 2].post("/tracking", content=body, headers=headers)
            assert r.status_code == 204, r.text
            hits_acked += 1

        async def dossier(i: int) -> None:
            body = json.dumps(dossier_event(i, rng)).encode()
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
            both = await asyncio.gather(*(c.post("/TrackingMCDT", content=body, headers=headers)
                                          for c in clients))
            for r in both:
                assert r.status_code == 200, r.text
            answers.append({"i": i, "duplicates": sorted(r.json()["duplicate"] for r in both)})

        async def slow_writer() -> None:
            """Holds a dossier id uncommitted for 0.6 s while higher ids commit and the
            runners roll them up: the horizon must wait for it."""
            for k in range(SLOW):
                async with db.pool.acquire() as conn, conn.transaction():
                    now = int(time.time() * 1000)
                    row = dict(zip(DOSSIER_COLUMNS, (
                        48, now, local_day(now), f"slow-{k}", "p", "1.009", "", 1, 1, 1, 4,
                        0, 0, "", "", ""), strict=True))
                    assert await _Queries(conn).execute(_INSERT, row) == 1
                    await asyncio.sleep(0.6)

        slow = asyncio.create_task(slow_writer())
        for wave in range(EVENTS // 8):  # waves of 24 hits and 8 doubly posted events
            await asyncio.gather(*(hit(wave * 24 + j) for j in range(24)),
                                 *(dossier(wave * 8 + j) for j in range(8)))
        await slow
        await asyncio.sleep(0.5)
        for c in clients:
            await c.aclose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    # every event posted twice at once: one copy stored, the other a duplicate
    assert len(answers) == EVENTS
    assert all(a["duplicates"] == [False, True] for a in answers), answers
    during = await db.fetch_all("SELECT name, last_id FROM rollup_watermarks ORDER BY name")
    assert all(r["last_id"] > 0 for r in during), "the in-server runners should have run"
    await rollup(db)  # whatever the runners had not reached yet
    hits = await db.fetch_all(f"SELECT {', '.join(HIT_COLUMNS)} FROM hits ORDER BY id")
    events = await db.fetch_all(
        f"SELECT {', '.join(DOSSIER_COLUMNS)} FROM dossiers ORDER BY id")
    assert hits_acked == 24 * (EVENTS // 8) == len(hits)
    assert len(events) == EVENTS + SLOW
    assert len({(e["dossier"], e["status"]) for e in events}) == EVENTS + SLOW
    for name in ("hits", "dossiers"):
        wm = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = :n",
                                {"n": name})
        # up to the horizon: past max(id) when the last ids went to skipped duplicates
        top = await db.fetch_one(f"SELECT max(id) AS m FROM {name}")
        assert wm["last_id"] == await db.horizon(name) >= top["m"], name

    async with reference_db(pg_template) as ref:
        await ref.write_batch([tuple(h[c] for c in HIT_COLUMNS) for h in hits], [])
        await ref.execute_many(_INSERT, events)
        await rollup(ref)
        for table, key in TABLES.items():
            assert await _table(db, table, key) == await _table(ref, table, key), table
        dossiers = await _table(ref, "rollup_dossiers", "site_id, day, service")
        assert sum(r["events"] for r in dossiers) == EVENTS + SLOW
        assert sum(r["received"] for r in dossiers) == EVENTS // 3 + SLOW
        assert await ref.fetch_all("SELECT DISTINCT dimension FROM rollup_dimensions_month")
