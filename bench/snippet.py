"""The loader's size, and how fast the collector serves it, against a bare Starlette endpoint.

    python bench/snippet.py [--seconds 5] [--connections 32]

Prints the exact raw / gzip -9 / brotli (q11) sizes of snippet/dist/gov-tracking.min.js,
then requests per second on this machine, same run, for:

- bare: a Starlette endpoint answering a constant 204 (the ceiling);
- loader: the collector's ``/g.js`` (in-memory, pre-compressed, ETag) with ``br`` accepted;
- staticfiles: the same file through Starlette's ``StaticFiles`` (the naive way).

Each server is a uvicorn subprocess (uvloop + httptools, no access log) on 127.0.0.1; the
load is ``wrk -t1`` when installed, else a bounded httpx loop (slower, ratios still hold).
Three runs of ``--seconds`` each: about 20 s with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DIST = ROOT / "snippet" / "dist"
LOADER = DIST / "gov-tracking.min.js"
ACCEPT = "gzip, deflate, br"


def build_app(kind: str, db_path: str):  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if kind == "bare":
        async def bare(request):  # type: ignore[no-untyped-def]
            return Response(status_code=204)

        return Starlette(routes=[Route("/g.js", bare)])
    if kind == "staticfiles":
        return Starlette(routes=[Mount("/s", StaticFiles(directory=str(DIST)))])
    from collector.app import create_app
    from collector.config import Config

    return create_app(Config(database_url=db_path, registry_refresh=0, rollup_interval=0))


def serve(kind: str, port: int, db_path: str) -> None:
    import uvicorn

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    uvicorn.run(build_app(kind, db_path), host="127.0.0.1", port=port, loop=loop,
                http="httptools", access_log=False, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def run_wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Accept-Encoding: {ACCEPT}",
         url], capture_output=True, text=True, check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(m.group(1))


async def run_httpx(url: str, seconds: int, connections: int) -> float:
    import httpx

    done = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            r = await client.get(url, headers={"accept-encoding": ACCEPT})
            r.raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return done / seconds


def measure(kind: str, path: str, args: argparse.Namespace, db_path: str) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db", db_path],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_up(port)
        url = f"http://127.0.0.1:{port}{path}"
        if shutil.which("wrk"):
            return run_wrk(url, args.seconds, args.connections)
        return asyncio.run(run_httpx(url, args.seconds, args.connections))
    finally:
        proc.terminate()
        proc.wait(10)


def sizes() -> None:
    import brotli

    body = LOADER.read_bytes()
    print(f"loader {LOADER.relative_to(ROOT)}")
    print(f"  raw        {len(body):5d} B")
    print(f"  gzip -9    {len(gzip.compress(body, 9, mtime=0)):5d} B   (budget 1536)")
    print(f"  brotli q11 {len(brotli.compress(body, quality=11)):5d} B")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db)
        return
    sizes()
    tool = "wrk -t1" if shutil.which("wrk") else "httpx"
    print(f"serving, {tool} -c{args.connections} -d{args.seconds}s, Accept-Encoding: {ACCEPT}")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = str(Path(tmp) / "bench.db")
        bare = measure("bare", "/g.js", args, db_path)
        loader = measure("loader", "/g.js", args, db_path)
        static = measure("staticfiles", "/s/gov-tracking.min.js", args, db_path)
    print(f"  bare Starlette 204          {bare:9.0f} req/s   1.00 ×")
    print(f"  collector /g.js (br, ETag)  {loader:9.0f} req/s   {loader / bare:.2f} ×")
    print(f"  StaticFiles (identity)      {static:9.0f} req/s   {static / bare:.2f} ×")


if __name__ == "__main__":
    main()
