"""Compliance bench: states for many sites over a year of rollups, and a loopback scan.

    .venv/bin/python bench/compliance.py                 # 10,000 sites × 365 days, 500 portals
    .venv/bin/python bench/compliance.py --sites 2000 --days 90 --portals 100
    .venv/bin/python bench/compliance.py --pages --portals 0     # + /compliance page times
    .venv/bin/python bench/compliance.py --end 2026-11-30 --portals 0  # a whole month, a
                                                         # year of 12 whole months

Part 1 generates ``rollup_site_day`` rows (one per site per day with hits, with a mix of
sites that are always on, have gaps, stopped, never connected), DVC and dossier rollups,
refused-host counts and one scan per site into a fresh SQLite file, then times
``collector.compliance.compute`` for the last month and for the whole year (target: under
2 s at 10,000 sites); the year three ways: from the daily rollup only, the first time with
month summaries (they are written), and then (read back). Part 2 serves N fixture portals
from a separate process (stdlib threaded HTTP server on 127.0.0.1; home page, sitemap, 3
pages each) and scans them all, printing pages/s. Figures swing ±20–30 % between runs on a
shared 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.compliance import compute, month_period  # noqa: E402
from collector.config import Config  # noqa: E402
from collector.fixture_portals import PortalServer, Route, page, sitemap, snippet  # noqa: E402
from collector.registry import load_agencies, read_agencies  # noqa: E402
from collector.scan import ScanOptions, run_scans  # noqa: E402
from collector.store import open_database  # noqa: E402


def generate(path: str, n_sites: int, n_days: int, end: dt.date) -> None:
    """Sites and a year of rollups, written by SQL inside SQLite (seconds, not minutes).

    Each site's profile comes from a hash of its id: 5 % never connected, 5 % stopped
    half-way, 10 % with random silent days (~15 %), the rest on every day. DVC and dossier
    rows weekly; reported totals for one-stop sites (a third of them off by 20 %)."""
    codes = [a["code"] for a in read_agencies()]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    first = end - dt.timedelta(days=n_days - 1)
    kinds = ["portal"] * 6 + ["dvc"] * 3 + ["onestop"]
    now_ms = int(time.time() * 1000)
    month = end.isoformat()[:7]
    with conn:
        conn.execute("CREATE TEMP TABLE bench_days (dn INTEGER PRIMARY KEY, day TEXT)")
        conn.executemany("INSERT INTO bench_days VALUES (?, ?)",
                         [(i, (first + dt.timedelta(days=i)).isoformat())
                          for i in range(n_days)])
        conn.executemany(
            "INSERT INTO sites (id, agency_code, kind, name, registered_on, required) "
            "VALUES (?, ?, ?, ?, '2024-01-01', 1)",
            [(i, codes[i % len(codes)], kinds[i % len(kinds)], f"Site {i}")
             for i in range(1, n_sites + 1)])
        conn.execute("INSERT INTO site_hosts (site_id, host) "
                     "SELECT id, 's' || id || '.example.gov.vn' FROM sites")
        conn.execute("CREATE TEMP TABLE bench_profile AS SELECT id, kind, "
                      "(id * 2654435761) % 1000 AS p FROM sites")
        half = n_days // 2
        conn.execute(
            "INSERT INTO rollup_site_day (site_id, day, visits, pageviews, hits) "
            "SELECT s.id, d.day, 1 + (s.id + d.dn) % 250, 5 + (s.id * 7 + d.dn * 13) % 500, "
            "8 + (s.id * 7 + d.dn * 13) % 500 FROM bench_profile s CROSS JOIN bench_days d "
            "WHERE s.p >= 50 AND (s.p >= 100 OR d.dn < :half) "
            "AND (s.p >= 200 OR s.p < 100 OR (s.id * 31 + d.dn * 17) % 100 >= 15)",
            {"half": half})
        conn.execute(
            "INSERT INTO rollup_dvc (site_id, day, service, views, submissions) "
            "SELECT r.site_id, r.day, '1.00' || (r.site_id % 50), 20, r.site_id % 11 "
            "FROM rollup_site_day r JOIN bench_profile s ON s.id = r.site_id "
            "JOIN bench_days d ON d.day = r.day WHERE s.kind = 'dvc' AND s.p < 900 "
            "AND d.dn % 7 = 0")
        conn.execute(
            "INSERT INTO rollup_dossiers (site_id, day, service, events, received, "
            "received_online) SELECT r.site_id, r.day, '1.00' || (r.site_id % 50), 5, 5, 4 "
            "FROM rollup_site_day r JOIN bench_profile s ON s.id = r.site_id "
            "JOIN bench_days d ON d.day = r.day WHERE s.kind = 'onestop' AND s.p < 900 "
            "AND d.dn % 7 = 0")
        conn.execute(
            "INSERT INTO reported_totals (site_id, service, period, count, source, uploaded_ts) "
            "SELECT site_id, service, :m, SUM(received_online) * (CASE WHEN site_id % 3 = 0 "
            "THEN 12 ELSE 10 END) / 10, 'bench', 0 FROM rollup_dossiers "
            "WHERE day >= :m || '-01' GROUP BY site_id, service", {"m": month})
        conn.execute(
            "INSERT INTO dropped (site_id, day, reason, host, n) SELECT id, :d, "
            "'host not registered to this site', 'copy' || id || '.example.com', 25 "
            "FROM bench_profile WHERE id % 50 = 0", {"d": end.isoformat()})
        conn.execute(
            "INSERT INTO scans (site_id, ts, base_url, duration_ms, home_status, snippet, "
            "findings) SELECT id, :ts, 'https://s' || id || '.example.gov.vn/', 100, 'ok', "
            "CASE WHEN p < 50 THEN 'absent' ELSE 'present' END, CASE WHEN p < 50 "
            "THEN '[\"snippet_absent\"]' WHEN id % 10 = 1 THEN '[\"snippet_commented\"]' "
            "ELSE '[]' END FROM bench_profile", {"ts": now_ms - 3600_000})
    conn.execute("ANALYZE")
    counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("rollup_site_day", "rollup_dvc", "rollup_dossiers", "reported_totals")]
    conn.close()
    print(f"generated {n_sites:,} sites, {counts[0]:,} site-days, {counts[1]:,} DVC rows, "
          f"{counts[2]:,} dossier rows, {counts[3]:,} reported totals")


async def pages_bench(path: str) -> None:
    """GET /compliance (first view fills 12 months of history, then stored) and latest.json."""
    import httpx

    from collector.app import create_app

    app = create_app(Config(database_url=path, registry_refresh=0, rollup_interval=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            for label, url in (("/compliance (history computed)", "/compliance"),
                               ("/compliance (history stored)", "/compliance"),
                               ("/compliance?kind=province&state=incomplete",
                                "/compliance?kind=province&state=incomplete"),
                               ("/compliance/latest.json", "/compliance/latest.json")):
                t = time.perf_counter()
                r = await c.get(url)
                print(f"page {label}: {time.perf_counter() - t:.2f} s, "
                      f"{len(r.content) / 1e6:.1f} MB, status {r.status_code}")


async def states_bench(path: str, n_sites: int, n_days: int, end: dt.date) -> None:
    db = await open_database(path)
    await db.migrate()
    await load_agencies(db)
    t0 = time.perf_counter()
    generate(path, n_sites, n_days, end)
    print(f"  (generation {time.perf_counter() - t0:.1f} s)")
    config = Config(database_url=path)
    month = end.isoformat()[:7]
    start, stop = month_period(month)
    year = ((end - dt.timedelta(days=n_days - 1)).isoformat(), end.isoformat())
    # a long period reads its closed months from compliance_site_months: "daily" is the
    # same computation from the daily rollup only, "first" writes the month summaries
    # (once a day), "then" reads them back
    for label, (s, e), runs, summaries in (
            ("month " + month, (start, stop), 3, True),
            (f"{n_days} days, daily rollup only", year, 1, False),
            (f"{n_days} days, first (month summaries written)", year, 1, True),
            (f"{n_days} days, then (month summaries read)", year, 3, True)):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            result = await compute(db, config, s, e, summaries=summaries)
            times.append(time.perf_counter() - t)
        counts = " ".join(f"{k}={v}" for k, v in result.counts().items())
        print(f"states, {label}: {len(result.sites):,} sites in {min(times):.2f} s "
              f"(best of {runs}; target < 2 s) — {counts}")
    await db.close()


def _serve(n: int, ready: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    routes: dict[str, Route] = {}
    with PortalServer(routes) as server:
        for i in range(1, n + 1):
            urls = [server.url(f"/s{i}/p{j}") for j in range(3)]
            body = page(snippet(i, "https://emc.gov.vn") + "<p>" + "nội dung " * 300 + "</p>")
            routes[f"/s{i}/"] = Route(body)
            routes[f"/s{i}/sitemap.xml"] = sitemap(urls)
            for j in range(3):
                routes[f"/s{i}/p{j}"] = Route(body)
        ready.put(server.port)
        stop.wait()


async def scan_bench(path: str, n: int, concurrency: int) -> None:
    ready: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    stop = mp.Event()
    proc = mp.Process(target=_serve, args=(n, ready, stop), daemon=True)
    proc.start()
    try:
        port = ready.get(timeout=30)
        db = await open_database(path)
        await db.migrate()
        targets = [(i, f"http://127.0.0.1:{port}/s{i}/") for i in range(1, n + 1)]
        opts = ScanOptions(sample=3, concurrency=concurrency, timeout=10, retries=0)
        t = time.perf_counter()
        results = await run_scans(db, Config(public_url="https://emc.gov.vn"), targets, opts)
        took = time.perf_counter() - t
        pages = sum(len(r.pages) for r in results)
        ok = sum(1 for r in results for p in r.pages if p.status == "ok")
        await db.close()
        print(f"scan: {n} portals, {pages:,} pages ({ok:,} ok) + {n} sitemaps in {took:.2f} s "
              f"= {pages / took:,.0f} pages/s, {n / took:,.1f} sites/s "
              f"(concurrency {concurrency}, server in another process)")
    finally:
        stop.set()
        proc.join(timeout=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--end", type=dt.date.fromisoformat,
                    default=dt.date.today() - dt.timedelta(days=1),
                    help="last day of generated rollups, YYYY-MM-DD (default: yesterday); "
                         "its month is the month timed")
    ap.add_argument("--portals", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--pages", action="store_true",
                    help="also time the /compliance pages on the generated data (~15 s more)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(states_bench(str(Path(tmp) / "states.db"), args.sites, args.days,
                                 args.end))
        if args.pages:
            asyncio.run(pages_bench(str(Path(tmp) / "states.db")))
        if args.portals > 0:
            asyncio.run(scan_bench(str(Path(tmp) / "scan.db"), args.portals, args.concurrency))


if __name__ == "__main__":
    main()
