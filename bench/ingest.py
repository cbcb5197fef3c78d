"""Ingest throughput: ``/tracking`` with durable acknowledgement vs a bare Starlette 204.

Both servers run under the same uvicorn settings (uvloop, httptools, no access log) on
loopback, one process each, measured in the same run and interleaved per concurrency
level, so the ratio is what counts (absolute figures swing ±20-30 % between runs).

Levels: 8, 32 and 128 connections by default. wrk is a closed loop: each connection
waits for its answer before it sends again, so at 8 connections a durable collector is
bound by latency (every round waits for one fsync, ~0.3 ms here), not by what it can
process; real portals send from thousands of independent browsers. The last lines
compare capacity: each server at the level where it answered the most.

Load: ``wrk -t1`` with ``bench/hits.lua`` (POST form bodies of ~300 bytes, a unique url
and pv_id per hit, ~50 real browser user agents in rotation); without ``wrk``, an httpx
async load generator (slower: it competes for the same 2 cores, so its ratio is lower).
After each run the bench counts the rows the collector committed: every 2xx must be
there; up to ``connections`` more may exist (hits in flight when the load stopped are
committed but never counted as answered).

    .venv/bin/python bench/ingest.py                       # 10 s per target, c = 8, 32, 128
    .venv/bin/python bench/ingest.py --duration 30 --connections 8 32 128
    .venv/bin/python bench/ingest.py --db postgres         # + PostgreSQL, 1 and 2 workers

``--db postgres`` measures, in the same run and beside the SQLite figures, the collector on
PostgreSQL (a fresh database on ``GIAMSAT_BENCH_PG``, default the local server, dropped
afterwards) with 1 and 2 uvicorn worker processes (``--workers 1 2``); 4 s per target and
level by default to stay under a minute.

The fsync line and the ``durable ceiling`` per level: a closed loop of ``c`` connections
against a server that answers only after an fsync can at best do ``c`` hits per (``c`` /
bare rate + fsync time), even with no work of its own; at 8 connections and a 0.3 ms fsync
that is ~0.5 of the bare endpoint, whatever the collector does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_CHROME = "Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 {tail}"
_OSES = [
    "Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64",
]
_ANDROID = ["Linux; Android 10; K", "Linux; Android 14; SM-S918B", "Linux; Android 13; 2201117TG"]


def user_agents() -> list[str]:
    """~50 real-world browser user agents (Chrome, Edge, Cốc Cốc, Firefox, Safari, Samsung)."""
    uas = []
    for v in (124, 126, 128, 130, 131):
        for os_ in _OSES:
            uas.append(_CHROME.format(os=os_, v=v, tail="Safari/537.36"))
        for a in _ANDROID:
            uas.append(_CHROME.format(os=a, v=v, tail="Mobile Safari/537.36"))
        uas.append(_CHROME.format(os=_OSES[0], v=v, tail=f"Safari/537.36 Edg/{v}.0.0.0"))
    for v in ("128.0", "131.0", "132.0"):
        uas.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}) Gecko/20100101 Firefox/{v}")
        uas.append(f"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}")
    for ios in ("17_5", "17_6_1", "18_1"):
        v = ios.split("_")[0] + "." + ios.split("_")[1]
        uas.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1"
        )
        uas.append(
            f"Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1"
        )
    uas.append(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Safari/605.1.15"
    )
    for cc in ("132.0.228", "136.0.202"):
        uas.append(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"coc_coc_browser/{cc} Chrome/130.0.0.0 "
            "Safari/537.36"
        )
    uas.append(
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546E) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
    )
    return uas


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def start_bare(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare:app", "--app-dir", str(HERE), "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
    )


def start_collector(port: int, db: str, workers: int = 1, spool: str = "") -> subprocess.Popen:
    # ingest alone: the in-server rollup (every 60 s) would land in one level or another
    # and take the loop's CPU for seconds; bench/rollup.py measures it
    env = {**os.environ, "GIAMSAT_DATABASE_URL": db, "GIAMSAT_PORT": str(port),
           "GIAMSAT_WORKERS": str(workers), "GIAMSAT_SPOOL_DIR": spool,
           "GIAMSAT_ROLLUP_INTERVAL": "0"}
    cli = [sys.executable, "-m", "collector.cli"]
    subprocess.run(
        [*cli, "site", "add", "47", "--agency", "H26", "--kind", "portal",
         "--name", "Cổng TTĐT Hà Nội", "--host", "hanoi.gov.vn"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    return subprocess.Popen([*cli, "serve"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_wrk(port: int, conns: int, duration: float, uas_file: str, prefix: str) -> dict:
    env = {**os.environ, "BENCH_UAS": uas_file, "BENCH_PREFIX": prefix}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
         "-s", str(HERE / "hits.lua"), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    r = json.loads(line[6:])
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "ok": r["requests"] - r["non2xx"],
            "bad": r["non2xx"] + errors, "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000}


def body(n: int, prefix: str) -> bytes:
    return (
        "idsite=47&rec=1&apiv=1&send_image=0"
        f"&url=https%3A%2F%2Fhanoi.gov.vn%2Ftin-tuc%2Fchinh-tri%2F{prefix}-{n}%3Futm_source%3Dzalo"
        "&action_name=Th%C3%A0nh%20ph%E1%BB%91%20H%C3%A0%20N%E1%BB%99i%20-%20Tin%20t%E1%BB%A9c"
        f"&urlref=https%3A%2F%2Fwww.google.com%2F&res=1920x1080&lang=vi-VN&pv_id={n % 2**24:06x}"
        f"&_id=3f2a9c1b7d4e5f60&rand={n}&h=10&m=24&s={n % 60}"
    ).encode()


async def _httpx_load(port: int, conns: int, duration: float, uas: list[str], prefix: str) -> dict:
    import httpx

    counter = itertools.count(1)
    lat: list[float] = []
    ok = bad = 0
    end = time.monotonic() + duration
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as c:

        async def worker() -> None:
            nonlocal ok, bad
            while time.monotonic() < end:
                n = next(counter)
                t = time.perf_counter()
                r = await c.post("/tracking", content=body(n, prefix), headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "user-agent": uas[n % len(uas)], "accept-language": "vi-VN,vi;q=0.9"})
                lat.append(time.perf_counter() - t)
                if 200 <= r.status_code < 300:
                    ok += 1
                else:
                    bad += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.monotonic() - start
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0  # noqa: E731
    return {"rps": (ok + bad) / elapsed, "ok": ok, "bad": bad, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99)}


def fsync_ms(folder: str, rounds: int = 200) -> float:
    """Median time of a 4 KiB write + fdatasync in ``folder`` (where the bench's SQLite
    file is): what each group commit waits for the disk."""
    path = os.path.join(folder, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for i in range(rounds):
            t = time.perf_counter()
            os.pwrite(fd, bytes([i % 256]) * 4096, 0)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return sorted(times)[rounds // 2] * 1000


def count_rows(db: str) -> int:
    if db.startswith("postgresql://"):
        return asyncio.run(_pg(db, "SELECT count(*) FROM hits"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM hits").fetchone()[0]


PG_URL = os.environ.get("GIAMSAT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg(url: str, sql: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql) or 0
    finally:
        await conn.close()


def pg_database(name: str) -> str:
    """Create a fresh database ``name`` on the bench server; return its URL."""
    asyncio.run(_pg(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg(PG_URL, f'CREATE DATABASE "{name}"'))
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, help="seconds per target and level "
                   "(default 10, or 4 with --db postgres)")
    p.add_argument("--connections", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--loader", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                   help="postgres: also measure PostgreSQL beside SQLite")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="worker processes for the PostgreSQL collector (--db postgres)")
    args = p.parse_args()
    duration = args.duration or (4.0 if args.db == "postgres" else 10.0)
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "httpx"
    uas = user_agents()
    tmp = tempfile.mkdtemp(prefix="giamsat-bench-")
    uas_file = os.path.join(tmp, "uas.lua")
    with open(uas_file, "w", encoding="utf-8") as f:
        f.write("return {\n" + "".join(f"  {json.dumps(u)},\n" for u in uas) + "}\n")
    # targets: (label, database, workers); each gets its own server and database
    targets = [("sqlite", os.path.join(tmp, "bench.db"), 1)]
    pg_names = []
    if args.db == "postgres":
        for w in args.workers:
            name = f"giamsat_bench_{os.getpid()}_{w}"
            pg_names.append(name)
            targets.append((f"pg×{w}", pg_database(name), w))
    bare_port = free_port()
    bare = start_bare(bare_port)
    servers = []
    for label, db, workers in targets:
        port = free_port()
        spool = os.path.join(tmp, f"spool-{label}")
        servers.append((label, db, port, start_collector(port, db, workers, spool)))
    results: dict[str, list[dict]] = {label: [] for label, *_ in targets}
    bare_results: list[dict] = []
    ok = True
    try:
        wait_port(bare_port, bare)
        for _label, _db, port, proc in servers:
            wait_port(port, proc)
        time.sleep(1.0)  # every worker up
        sync = fsync_ms(tmp)
        print(f"loader: {loader}; {len(uas)} user agents; body ~{len(body(123456, 'c8'))} bytes; "
              f"{duration:g} s per target and level; fsync {sync:.2f} ms (median of 200)")
        for conns in args.connections:
            prefix = f"c{conns}"

            def load(port: int, prefix: str = prefix, conns: int = conns) -> dict:
                if loader == "wrk":
                    return run_wrk(port, conns, duration, uas_file, prefix)
                return asyncio.run(_httpx_load(port, conns, duration, uas, prefix))

            b = load(bare_port)
            b["conns"] = conns
            bare_results.append(b)
            # closed loop: each round of `conns` hits waits for one fsync besides the bare
            # server's own time, so no durable server can do better than this ratio
            ceiling = conns / (conns + b["rps"] * sync / 1000)
            print(f"c={conns:<4} bare {b['rps']:8.0f} req/s  p50 {b['p50_ms']:.2f} ms "
                  f"p99 {b['p99_ms']:.2f} ms | durable ceiling: ratio {ceiling:.2f}", flush=True)
            for label, db, port, _proc in servers:
                o = load(port)
                o["conns"] = conns
                time.sleep(0.5)  # let hits in flight at the cut-off commit
                o["rows"] = count_rows(db) - sum(x["rows"] for x in results[label])
                results[label].append(o)
                extra = o["rows"] - o["ok"]
                check = "ok" if 0 <= extra <= conns else "MISMATCH"
                print(
                    f"       {label:<7} {o['rps']:8.0f} req/s  ratio {o['rps'] / b['rps']:.2f}  "
                    f"| p50 {o['p50_ms']:.2f} ms p99 {o['p99_ms']:.2f} ms | 2xx {o['ok']} "
                    f"non-2xx {o['bad']} rows {o['rows']} (+{extra} in flight: {check})",
                    flush=True,
                )
    finally:
        stop(bare)
        for *_x, proc in servers:
            stop(proc)
    if bare_results:
        best = max(bare_results, key=lambda r: r["rps"])
        print(f"capacity (each server at its best level): bare {best['rps']:.0f} req/s "
              f"(c={best['conns']})")
        for label, *_ in servers:
            mine = max(results[label], key=lambda r: r["rps"])
            print(f"       {label:<7} {mine['rps']:8.0f} req/s (c={mine['conns']})  "
                  f"ratio {mine['rps'] / best['rps']:.2f}")
    for label, db, _port, _proc in servers:
        total_ok = sum(r["ok"] for r in results[label])
        rows_after = count_rows(db)
        good = rows_after >= total_ok
        ok = ok and good
        print(f"after shutdown ({label}): rows {rows_after}, 2xx answered {total_ok}, "
              f"{'every 2xx committed' if good else 'MISSING ROWS'}")
    for name in pg_names:
        asyncio.run(_pg(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
