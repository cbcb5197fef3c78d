"""Shared fixtures: a fresh migrated database, the app on it, an ASGI client.

``database_url`` (and so ``db``, ``config``, ``client``) is parametrized over both
backends, ids ``sqlite`` and ``postgres``: every test using them runs twice
(``-k sqlite`` / ``-k postgres`` to pick one). A PostgreSQL test gets a fresh database
copied from a per-session template (``CREATE DATABASE … TEMPLATE``, migrated once), with a
unique name since other test sessions share the server, dropped afterwards. The server is
``GIAMSAT_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
``scripts/test-deps.sh`` starts it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from collector.app import create_app
from collector.config import Config
from collector.registry import load_agencies, make_site, save_site
from collector.store import Database, open_database
from tests.compliance_helpers import REGISTERED_ON

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


PG_ADMIN_URL = os.environ.get("GIAMSAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]
T = TypeVar("T")


def pg_url(dbname: str, admin_url: str = PG_ADMIN_URL) -> str:
    """``admin_url`` with its database replaced by ``dbname``."""
    return admin_url.rsplit("/", 1)[0] + "/" + dbname


async def pg_admin(sql: str, admin_url: str = PG_ADMIN_URL) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _make_template(name: str) -> None:
    await pg_admin(f'CREATE DATABASE "{name}"')
    database = await open_database(pg_url(name))
    try:
        await database.migrate()
        await load_agencies(database)
    finally:
        await database.close()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in a thread (even inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database with the agencies loaded, copied by every PostgreSQL test."""
    name = f"giamsat_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        run_sync(_make_template(name))
    except OSError as e:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({e}): "
                    "run scripts/test-deps.sh (make test does)", pytrace=False)
    yield name
    run_sync(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "giamsat.db")


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, db_path: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database of each backend (agencies loaded for PostgreSQL)."""
    if request.param == "sqlite":
        yield db_path
        return
    template = request.getfixturevalue("pg_template")
    name = f"giamsat_t_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    # tests need no durability: commits need not wait for the WAL flush (2-5x faster here)
    await pg_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql://") else "sqlite"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    await database.migrate()
    await load_agencies(database)
    # registered on a fixed day (REGISTERED_ON) before every period the tests look at
    await save_site(database, make_site(47, "H26", "portal", "Cổng TTĐT Hà Nội",
                                        ["hanoi.gov.vn", "www.hanoi.gov.vn"], REGISTERED_ON))
    await save_site(database, make_site(48, "H26", "dvc", "DVC Hà Nội",
                                        ["dichvucong.hanoi.gov.vn"], REGISTERED_ON))
    yield database
    await database.close()


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    return Config(database_url=database_url, registry_refresh=0, rollup_interval=0,
                  spool_dir=str(tmp_path / "spool"))


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


def _pg_bin() -> Path:
    """Debian's server binaries: ``GIAMSAT_TEST_PG_BIN`` or the newest /usr/lib/postgresql/N."""
    if os.environ.get("GIAMSAT_TEST_PG_BIN"):
        return Path(os.environ["GIAMSAT_TEST_PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


class PrivatePostgres:
    """A throw-away PostgreSQL server (initdb in a temp dir, a free port) that a test may
    stop and start: never the shared server other test sessions use. Root cannot run
    postgres, so as root the server runs as the ``postgres`` user."""

    def __init__(self, base: Path) -> None:
        import socket

        self.base = base
        self.data = base / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        import subprocess

        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        import shutil

        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=40", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    import shutil
    import tempfile

    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN}/initdb missing: install postgresql (scripts/test-deps.sh)")
    base = Path(tempfile.mkdtemp(prefix="giamsat-pg-"))  # /tmp: reachable by postgres
    os.chmod(base, 0o755)
    server = PrivatePostgres(base / "pg")
    server.init()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        except Exception:
            pass
        shutil.rmtree(base, ignore_errors=True)


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
