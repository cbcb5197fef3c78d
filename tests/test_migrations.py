"""Numbered migrations: applied in order, recorded, applied once, all-or-nothing per file."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from collector.store import Database, migration_files, open_database

REAL_SQLITE = migration_files("sqlite")  # read before any test points MIGRATIONS elsewhere


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


async def _table_shape(db: Database, table: str) -> dict[str, object]:
    """Columns (name, type, not null, default, pk) and indexes (name, unique, origin,
    columns) of a SQLite table, as SQLite itself reports them."""
    columns = await db.fetch_all(f"PRAGMA table_xinfo({table})")
    indexes = {}
    for ix in await db.fetch_all(f"PRAGMA index_list({table})"):
        cols = await db.fetch_all(f"PRAGMA index_xinfo({ix['name']})")
        indexes[ix["name"]] = (ix["unique"], ix["origin"], ix["partial"],
                               [(c["name"], c["desc"], c["coll"]) for c in cols])
    return {"columns": columns, "indexes": indexes}


async def test_0005_rebuilds_raw_tables_with_ids_never_reused(db_path: str,
                                                              migrations: Path) -> None:
    """hits and dossiers keep their rows, columns and indexes; ids become AUTOINCREMENT,
    the sequence starting above both the largest id and the rollup watermark."""
    for path in REAL_SQLITE:
        if path.stem < "0005":
            shutil.copy(path, migrations / path.name)
    db = await open_database(db_path)
    try:
        assert (await db.migrate())[-1] == "0004_reports"
        await db.execute_many(
            "INSERT INTO hits (id, site_id, ts, day, kind, visitor, host, path, url, e_v) "
            "VALUES (:id, 47, :id, '2026-03-01', 'pageview', -9223372036854775808, 'h', '/', "
            "'u', 1.5)", [{"id": 3}, {"id": 7}])
        await db.execute("UPDATE rollup_watermarks SET last_id = 5 WHERE name = 'hits'")
        # every dossier event rolled up (id 12) and deleted by retention: only the
        # watermark remembers the ids used
        await db.execute("UPDATE rollup_watermarks SET last_id = 12 WHERE name = 'dossiers'")
        before = {t: await _table_shape(db, t) for t in ("hits", "dossiers")}
        rows = await db.fetch_all("SELECT * FROM hits ORDER BY id")
        for path in REAL_SQLITE:
            shutil.copy(path, migrations / path.name)
        assert await db.migrate() == [p.stem for p in REAL_SQLITE if p.stem >= "0005"]
        assert {t: await _table_shape(db, t) for t in ("hits", "dossiers")} == before
        assert await db.fetch_all("SELECT * FROM hits ORDER BY id") == rows
        ddl = {r["name"]: r["sql"] for r in await db.fetch_all(
            "SELECT name, sql FROM sqlite_master WHERE name IN ('hits', 'dossiers')")}
        assert all("PRIMARY KEY AUTOINCREMENT" in sql for sql in ddl.values()) and len(ddl) == 2
        assert await db.fetch_all("SELECT name, seq FROM sqlite_sequence ORDER BY name") == [
            {"name": "dossiers", "seq": 12}, {"name": "hits", "seq": 7}]
        insert = ("INSERT INTO hits (site_id, ts, day, kind, visitor, host, path, url) "
                  "VALUES (47, 1, '2026-03-02', 'pageview', 1, 'h', '/', 'u')")
        await db.execute(insert)
        await db.execute("DELETE FROM hits")  # retention emptied the table
        await db.execute(insert)
        assert await db.fetch_all("SELECT id FROM hits") == [{"id": 9}]
        await db.execute(
            "INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, "
            "reception, payment, level, from_dvcqg, dvcbc) "
            "VALUES (48, 1, '2026-03-02', 'd', 'p', 'S', 1, 1, 0, 4, 0, 0)")
        assert await db.fetch_all("SELECT id FROM dossiers") == [{"id": 13}]
    finally:
        await db.close()


async def test_0011_starts_both_parts_at_the_hit_watermark(db_path: str,
                                                           migrations: Path) -> None:
    """The per-part hit watermarks of a database rolled up before 0011 both start at its
    'hits' watermark: nothing is counted twice, nothing skipped."""
    for path in REAL_SQLITE:
        if path.stem < "0011":
            shutil.copy(path, migrations / path.name)
    db = await open_database(db_path)
    try:
        await db.migrate()
        await db.execute("UPDATE rollup_watermarks SET last_id = 41 WHERE name = 'hits'")
        for path in REAL_SQLITE:
            shutil.copy(path, migrations / path.name)
        assert "0011_rollup_parts" in await db.migrate()
        assert await db.fetch_all("SELECT * FROM rollup_parts ORDER BY part") == [
            {"part": 0, "last_id": 41, "generation": 0},
            {"part": 1, "last_id": 41, "generation": 0}]
    finally:
        await db.close()
