"""Numbered migrations: applied in order, recorded, applied once, all-or-nothing per file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.store import migration_files, open_database


async def test_core_migration_applied_once(db_path: str) -> None:
    db = await open_database(db_path)
    try:
        names = [p.stem for p in migration_files("sqlite")]
        assert names[0] == "0001_init" and names == sorted(names)
        assert await db.migrate() == names
        recorded = await db.fetch_all("SELECT name FROM schema_migrations ORDER BY name")
        assert [r["name"] for r in recorded] == names
        assert await db.migrate() == []
        assert len(await db.fetch_all("SELECT name FROM schema_migrations")) == len(names)
        tables = {r["name"] for r in await db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"settings", "agencies", "sites", "site_hosts", "hits", "dropped",
                "salts"} <= tables
    finally:
        await db.close()


@pytest.fixture
def migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    monkeypatch.setattr("collector.store.MIGRATIONS", tmp_path / "migrations")
    return folder


async def test_order_and_failed_file_rolled_back(db_path: str, migrations: Path) -> None:
    (migrations / "0010_third.sql").write_text("INSERT INTO t (v) VALUES ('third');")
    (migrations / "0002_second.sql").write_text("INSERT INTO t (v) VALUES ('second');")
    (migrations / "0001_first.sql").write_text("CREATE TABLE t (v TEXT);")
    (migrations / "README.md").write_text("not a migration")
    db = await open_database(db_path)
    try:
        assert await db.migrate() == ["0001_first", "0002_second", "0010_third"]
        assert [r["v"] for r in await db.fetch_all("SELECT v FROM t ORDER BY v")] == [
            "second", "third"]
        (migrations / "0011_broken.sql").write_text(
            "INSERT INTO t (v) VALUES ('half');\nINSERT INTO nope VALUES (1);")
        with pytest.raises(sqlite3.OperationalError, match="no such table: nope"):
            await db.migrate()
        assert [r["v"] for r in await db.fetch_all("SELECT v FROM t")] == ["second", "third"]
        assert await db.fetch_one(
            "SELECT name FROM schema_migrations WHERE name = '0011_broken'") is None
        (migrations / "0011_broken.sql").write_text("INSERT INTO t (v) VALUES ('fixed');")
        assert await db.migrate() == ["0011_broken"]
    finally:
        await db.close()
