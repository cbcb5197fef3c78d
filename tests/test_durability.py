"""SIGKILL the real server in the middle of a stream of hits: every hit answered 2xx is stored.

The server is ``giamsat serve`` in its own process (uvicorn, uvloop, httptools) on a free
loopback port, on the test's database. Several clients send hits with unique urls and pv_ids;
the server is killed without warning while they send; then the database is read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import FORM, UA_CHROME, form

from collector.config import Config
from collector.store import Database

CLIENTS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(base: str, proc: subprocess.Popen) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}")
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail("server did not start")


async def test_sigkill_loses_no_acknowledged_hit(db: Database, config: Config) -> None:
    port = free_port()
    env = {**os.environ, "GIAMSAT_DATABASE_URL": config.database_url,
           "GIAMSAT_PORT": str(port), "GIAMSAT_HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    acked: set[str] = set()
    failed = 0
    try:
        await wait_ready(base, proc)
        stop = asyncio.Event()

        async def client(k: int) -> None:
            nonlocal failed
            async with httpx.AsyncClient(base_url=base, timeout=5,
                                         headers={"user-agent": UA_CHROME}) as c:
                n = 0
                while not stop.is_set():
                    n += 1
                    key = f"{k}-{n}"
                    body = form({"idsite": "47", "rec": "1", "pv_id": key,
                                 "url": f"https://hanoi.gov.vn/k/{key}"})
                    try:
                        r = await c.post("/tracking", content=body, headers=FORM)
                    except httpx.TransportError:
                        failed += 1
                        await asyncio.sleep(0.01)
                        continue
                    if 200 <= r.status_code < 300:
                        acked.add(key)

        tasks = [asyncio.create_task(client(k)) for k in range(CLIENTS)]
        while len(acked) < 300:  # well into the stream
            await asyncio.sleep(0.01)
            assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await asyncio.sleep(0.2)  # clients see the dead server
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert failed > 0  # the kill happened while clients were sending
    rows = await db.fetch_all("SELECT pv_id, path FROM hits")
    stored = {r["pv_id"] for r in rows}
    assert all(r["path"] == f"/k/{r['pv_id']}" for r in rows)
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged hits lost, e.g. {sorted(missing)[:5]}"
    assert len(acked) >= 300
