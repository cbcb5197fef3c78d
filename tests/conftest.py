"""Shared fixtures: a fresh migrated SQLite file, the app on it, an ASGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from collector.app import create_app
from collector.config import Config
from collector.registry import load_agencies, make_site, save_site
from collector.store import Database, open_database

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "giamsat.db")


@pytest.fixture
async def db(db_path: str) -> AsyncIterator[Database]:
    database = await open_database(db_path)
    await database.migrate()
    await load_agencies(database)
    await save_site(database, make_site(47, "H26", "portal", "Cổng TTĐT Hà Nội",
                                        ["hanoi.gov.vn", "www.hanoi.gov.vn"]))
    await save_site(database, make_site(48, "H26", "dvc", "DVC Hà Nội",
                                        ["dichvucong.hanoi.gov.vn"]))
    yield database
    await database.close()


@pytest.fixture
def config(db_path: str) -> Config:
    return Config(database_url=db_path, registry_refresh=0, rollup_interval=0)


@pytest.fixture
async def client(db: Database, config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the ``db`` file, through its lifespan, with a browser-like user agent."""
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://collector.test",
            headers={"user-agent": UA_CHROME},
        ) as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@pytest.fixture
async def report_client(client: httpx.AsyncClient, db: Database) -> httpx.AsyncClient:
    """``client`` after the known report fixture traffic (tests/reportdata.py) went through
    /tracking and /TrackingMCDT and was rolled up; users bo (admin), hanoi (H26), byt (BYT)."""
    from reportdata import populate
    from reporthelp import make_users

    await populate(client.app, client.app.state.giamsat.db)  # type: ignore[attr-defined]
    await make_users(db)
    return client
