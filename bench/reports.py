"""Render times of the report pages over a year of rollups for many sites.

    python bench/reports.py                 # 1,000 sites × 365 days (≈ 30–60 s here)
    python bench/reports.py --sites 200 --days 90 --requests 20

Rollup rows are generated straight into the rollup tables of a fresh SQLite file
(``INSERT … SELECT`` over a cross join of sites × days; figures pseudo-random), then the
real app renders pages through ASGI (routing, access check, metrics API, Jinja, SVG):
the overview (national rankings, targets), a site dashboard and an agency page, each for a
30-day and a 365-day period. Prints p50/p95 per page (target: p95 < 150 ms) and the
generation time. Signed in as an admin (the sites page is not public).

Realistic parts: refused-hit counters on about one site-day in ten; the monthly totals
(``rollup_site_month``) built by the real ``refresh_site_months`` (its cost is printed:
every month, and one month as after each rollup run); the app reads them only because
their recorded watermarks equal the rollup's, as in production.

Every page is served from a view cache keyed by the rollup watermarks (reports/cache.py):
"cold" clears it before every request and asks for a different site/agency each time
(the first view after a rollup run), "warm" repeats three of them until the next rollup
moves the watermarks.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

# this file is bench/reports.py: its folder must not shadow the reports package
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from collector.app import create_app  # noqa: E402
from collector.config import Config  # noqa: E402
from collector.registry import load_agencies, read_agencies  # noqa: E402
from collector.rollup_month import refresh_site_months  # noqa: E402
from collector.store import open_database  # noqa: E402
from reports.auth import add_user  # noqa: E402

DIMS = ("page", "entry", "exit", "source", "referrer", "campaign", "browser", "os", "device",
        "province", "hour")


async def prepare(path: str, sites: int, days: int, values: int) -> tuple[list[str], float]:
    db = await open_database(path)
    await db.migrate()
    await load_agencies(db)
    agencies = [a["code"] for a in read_agencies()]
    await db.execute_many(
        "INSERT INTO sites (id, agency_code, kind, name, registered_on, required) "
        "VALUES (:id, :a, :k, :n, '2024-04-05', 1)",
        [{"id": i, "a": agencies[i % len(agencies)], "k": "dvc" if i % 3 == 0 else "portal",
          "n": f"Cổng {i}"} for i in range(1, sites + 1)])
    await db.execute_many("INSERT INTO site_hosts (site_id, host) VALUES (:id, :h)",
                          [{"id": i, "h": f"site{i}.gov.vn"} for i in range(1, sites + 1)])
    await add_user(db, "bench", "bench-password", "admin")
    await db.close()
    t0 = time.perf_counter()
    end = dt.date.today()
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous = OFF")  # generation only; the app opens it as usual
    con.execute("PRAGMA cache_size = -200000")
    con.execute("CREATE TEMP TABLE d (day TEXT)")
    con.executemany("INSERT INTO d VALUES (?)",
                    [((end - dt.timedelta(days=i)).isoformat(),) for i in range(days - 1, -1, -1)])
    con.execute("CREATE TEMP TABLE v (k INTEGER)")
    con.executemany("INSERT INTO v VALUES (?)", [(k,) for k in range(values)])
    con.execute("CREATE TEMP TABLE dim (name TEXT)")
    # every cross join below walks its tables in primary-key order: B-tree appends only
    con.executemany("INSERT INTO dim VALUES (?)", [(n,) for n in sorted(DIMS)])

    con.execute(
        "INSERT INTO rollup_site_day (site_id, day, visits, visitors, pageviews, bounces, "
        "duration_ms, hits) SELECT s.id, d.day, 50 + abs(random()) % 500, 40 + abs(random()) "
        "% 400, 120 + abs(random()) % 1500, abs(random()) % 50, abs(random()) % 9000000, "
        "200 FROM sites s, d")
    con.execute(
        "INSERT INTO rollup_dimensions (site_id, dimension, day, value, visits, pageviews, "
        "bounces, duration_ms) SELECT s.id, dim.name, d.day, "
        "CASE dim.name WHEN 'page' THEN '/trang-' || v.k WHEN 'entry' THEN '/trang-' || v.k "
        "WHEN 'exit' THEN '/trang-' || v.k WHEN 'hour' THEN printf('%02d', v.k * 5) "
        "WHEN 'province' THEN 'H' || (26 + v.k) ELSE dim.name || '-' || v.k END, "
        "10 + abs(random()) % 100, 20 + abs(random()) % 300, abs(random()) % 10, "
        "abs(random()) % 900000 FROM sites s, dim, d, v ORDER BY s.id, dim.name, d.day, v.k")
    con.execute(
        "INSERT INTO rollup_dvc (site_id, day, service, views, submissions, ratings, "
        "rating_sum, ratings_good) SELECT s.id, d.day, '1.00' || v.k, 20 + abs(random()) % 80, "
        "abs(random()) % 20, 5, 20, 4 FROM sites s, d, v WHERE s.kind = 'dvc'")
    con.execute(
        "INSERT INTO rollup_dossiers (site_id, day, service, events, received, "
        "received_online, received_in_person, full_online, paid_online, paid_in_person, "
        "results) SELECT s.id, d.day, '1.00' || v.k, 30, 20, 12, 8, 6, 5, 5, 15 "
        "FROM sites s, d, v WHERE s.kind = 'dvc'")
    # refused hits: about one site-day in ten, one or two reasons
    con.execute(
        "INSERT INTO dropped (site_id, day, reason, host, n) SELECT s.id, d.day, "
        "'host not registered to this site', '', 1 + abs(random()) % 20 FROM sites s, d "
        "WHERE abs(random()) % 10 = 0")
    con.execute(
        "INSERT INTO dropped (site_id, day, reason, host, n) SELECT s.id, d.day, 'bot', '', "
        "1 + abs(random()) % 50 FROM sites s, d WHERE abs(random()) % 20 = 0")
    con.commit()
    con.execute("ANALYZE")
    counts: dict[str, int] = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in
              ("rollup_site_day", "rollup_dimensions", "rollup_dvc", "rollup_dossiers")}
    con.close()
    gen = time.perf_counter() - t0
    # the monthly totals, as the first refresh after migration 0008 builds them (every
    # month), then one month recomputed, as after a rollup run that touched only it
    db = await open_database(path)
    t1 = time.perf_counter()
    await refresh_site_months(db)
    full = time.perf_counter() - t1
    ones = []
    for _ in range(3):  # the first one also pays the WAL checkpoint of the rebuild above
        t1 = time.perf_counter()
        await refresh_site_months(db, since=end.isoformat()[:7] + "-01")
        ones.append(time.perf_counter() - t1)
    one = statistics.median(ones)
    n = await db.fetch_one("SELECT COUNT(*) AS n FROM rollup_site_month")
    await db.close()
    counts["rollup_site_month"] = int(n["n"]) if n else 0
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"monthly totals: every month {full * 1000:.0f} ms, the current month "
          f"{one * 1000:.0f} ms (the refresh after each rollup run)")
    return agencies, gen


async def measure(path: str, agencies: list[str], requests: int, sites: int,
                  cold_requests: int) -> None:
    app = create_app(Config(database_url=path, registry_refresh=0, rollup_interval=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            page = (await c.get("/login")).text
            token = page.split('name="csrf_token" value="')[1].split('"')[0]
            r = await c.post("/login", data={"username": "bench", "password": "bench-password",
                                             "csrf_token": token})
            assert r.status_code == 303, r.text
            print(f"{'page':<32}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
            for period in ("30d", "year"):
                for label, url in (("overview", "/"), ("site dashboard", "/sites/{site}"),
                                   ("agency page", "/agencies/{agency}")):
                    for mode in ("cold", "warm"):
                        times = []
                        n = cold_requests if mode == "cold" else requests
                        for i in range(n + 2):
                            if mode == "cold":  # as after a rollup moved the watermarks
                                for cache in ("reports_cache", "site_cache"):
                                    getattr(app.state, cache, {}).clear()
                            # cold: a different site/agency each time; warm: a few, repeated
                            k = i if mode == "cold" else i % 3
                            u = url.format(site=1 + (k * 37) % sites,
                                           agency=agencies[k % len(agencies)])
                            t0 = time.perf_counter()
                            r = await c.get(f"{u}?period={period}")
                            dt_ms = (time.perf_counter() - t0) * 1000
                            assert r.status_code == 200, (u, r.status_code)
                            if i >= 2:  # two warm-up requests
                                times.append(dt_ms)
                        times.sort()
                        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
                        name = f"{label} ({period}, {mode})"
                        print(f"{name:<32}{statistics.median(times):>9.1f}{p95:>9.1f}"
                              f"{times[-1]:>9.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--values", type=int, default=1,
                    help="values per dimension per site-day (rows: sites × days × 11 × this)")
    ap.add_argument("--keep", default="", help="build (or reuse) the database at this path")
    ap.add_argument("--requests", type=int, default=20, help="measured requests per page")
    ap.add_argument("--cold-requests", type=int, default=20,
                    help="measured requests per page with an emptied view cache")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "bench.db")
        t0 = time.perf_counter()
        if args.keep and os.path.exists(path):
            agencies, gen = [a["code"] for a in read_agencies()], 0.0
        else:
            agencies, gen = asyncio.run(prepare(path, args.sites, args.days, args.values))
        print(f"{args.sites} sites × {args.days} days generated in {gen:.1f} s "
              f"(setup {time.perf_counter() - t0:.1f} s)")
        asyncio.run(measure(path, agencies, args.requests, args.sites, args.cold_requests))


if __name__ == "__main__":
    main()
