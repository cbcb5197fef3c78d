"""``giamsat serve --workers N``: refused on SQLite, several processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import UA_CHROME

from collector.store import Database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(database_url: str, port: int, workers: int, tmp: Path) -> subprocess.Popen:
    """``giamsat serve`` in a subprocess; its stderr goes to ``tmp/serve.log``."""
    env = {**os.environ, "GIAMSAT_DATABASE_URL": database_url,
           "GIAMSAT_SPOOL_DIR": str(tmp / "spool"),
           "GIAMSAT_REGISTRY_REFRESH": "0", "GIAMSAT_ROLLUP_INTERVAL": "0"}
    with open(tmp / "serve.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )


async def wait_healthy(c: httpx.AsyncClient, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if (await c.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
        await asyncio.sleep(0.1)


async def test_serve_workers(db: Database, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = serve(database_url, port, 2, tmp_path)
    try:
        if db.dialect == "sqlite":
            assert proc.wait(30) == 2
            assert "--workers > 1 needs PostgreSQL" in (tmp_path / "serve.log").read_text()
            return
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"user-agent": UA_CHROME}) as c:
            await wait_healthy(c, proc)

            async def send(i: int) -> int:
                r = await c.post(
                    "/tracking", content=f"idsite=47&rec=1&url=https://hanoi.gov.vn/w/{i}",
                    headers={"content-type": "application/x-www-form-urlencoded"})
                return r.status_code

            codes = await asyncio.gather(*(send(i) for i in range(200)))
        assert set(codes) == {204}
        rows = await db.fetch_all("SELECT path FROM hits")
        assert sorted(r["path"] for r in rows) == sorted(f"/w/{i}" for i in range(200))
        apps = await db.fetch_all(
            "SELECT DISTINCT application_name AS a FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'giamsat %'")
        assert len(apps) >= 3  # two workers and this test
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    if db.dialect == "postgres":
        assert not list((tmp_path / "spool").glob("*.log"))  # nothing left spooled
