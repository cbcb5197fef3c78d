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



GOOD = {"idsite": "47", "rec": "1", "url": "https://hanoi.gov.vn/tin-tuc"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def all_text(db: Database) -> str:
    """Every value of every column of every table, as one string (to search for leaks)."""
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = ("SELECT table_name AS name FROM information_schema.tables "
               "WHERE table_schema = current_schema()")
    out = []
    for t in await db.fetch_all(sql):
        for row in await db.fetch_all(f'SELECT * FROM "{t["name"]}"'):
            out.extend(str(v) for v in row.values())
    return "\n".join(out)


def form(params: dict[str, str | None]) -> bytes:
    return str(httpx.QueryParams({k: v for k, v in params.items() if v is not None})).encode()


@pytest.fixture
def track(client: httpx.AsyncClient):
    """POST one hit as a form body: ``await track(url=…, e_c=…)``; a ``None`` field is left out."""

    async def send(_base: dict[str, str] | None = None, **fields: str | None) -> httpx.Response:
        params = {**(GOOD if _base is None else _base), **fields}
        return await client.post("/tracking", content=form(params), headers=FORM)

    return send


@pytest.fixture
def flush(client: httpx.AsyncClient):
    """Send one good hit and return once it (and every drop count before it) is committed."""

    async def go() -> None:
        r = await client.post("/tracking", content=form({**GOOD, "url": GOOD["url"] + "/flush"}),
                              headers=FORM)
        assert r.status_code == 204, r.text

    return go
