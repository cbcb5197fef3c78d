"""`giamsat site token`, `giamsat rollup [--since]`, `giamsat retention`, and the
in-server rollup job."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
from hitrows import hit

from collector import cli
from collector.app import create_app
from collector.config import Config
from collector.dossiers import token_hash
from collector.store import Database, open_database


def run(argv: list[str]) -> int:
    return cli.main(argv)


async def fetch(database_url: str, sql: str) -> list[dict]:
    db = await open_database(database_url)
    try:
        return await db.fetch_all(sql)
    finally:
        await db.close()


def test_token_rollup_retention_commands(db: Database, database_url: str, capsys) -> None:
    assert run(["--database-url", database_url, "site", "token", "48"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40
    stored = asyncio.run(fetch(database_url, "SELECT site_id, token_hash FROM site_tokens"))
    assert stored == [{"site_id": 48, "token_hash": token_hash(token)}]
    assert run(["--database-url", database_url, "site", "token", "999"]) == 2
    assert "not registered" in capsys.readouterr().err

    async def write() -> None:
        other = await open_database(database_url)
        await other.write_batch([hit(47, "2026-03-01 10:00", 1), hit(47, "2026-03-01 10:05", 1),
                                 hit(47, "2026-03-02 10:00", 2)], [])
        await other.close()

    asyncio.run(write())
    assert run(["--database-url", database_url, "rollup"]) == 0
    assert "3 hits" in capsys.readouterr().out
    assert run(["--database-url", database_url, "rollup", "--since", "2026-03-02"]) == 0
    assert "3 hits" in capsys.readouterr().out  # from 2026-03-01: whole months
    assert run(["--database-url", database_url, "rollup", "--since", "March"]) == 2
    capsys.readouterr()
    days = asyncio.run(fetch(database_url, "SELECT day, visits, pageviews FROM rollup_site_day "
                                      "ORDER BY day"))
    assert days == [{"day": "2026-03-01", "visits": 1, "pageviews": 2},
                    {"day": "2026-03-02", "visits": 1, "pageviews": 1}]
    assert run(["--database-url", database_url, "retention", "--retention-days", "1"]) == 0
    assert "deleted 3 hits" in capsys.readouterr().out
    runs = asyncio.run(fetch(database_url, "SELECT hits_deleted FROM retention_runs"))
    assert runs == [{"hits_deleted": 3}]


async def test_server_rolls_up_by_itself(db: Database, config: Config) -> None:
    app = create_app(dataclasses.replace(config, rollup_interval=0.05))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test", headers={
                "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}) as c:
            r = await c.get("/tracking?idsite=47&rec=1&url=https://hanoi.gov.vn/&send_image=0")
            assert r.status_code == 204
            for _ in range(100):
                rows = await db.fetch_all("SELECT visits, pageviews FROM rollup_site_day")
                if rows:
                    break
                await asyncio.sleep(0.05)
    assert rows == [{"visits": 1, "pageviews": 1}]
