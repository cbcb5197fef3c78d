"""Every SQLite migration has a PostgreSQL twin with the same number, tables, columns and
indexes (PostgreSQL may add its own tables, e.g. ``spool_batches``), so a branch that adds
a migration for one backend only is caught here."""

from __future__ import annotations

import re
from pathlib import Path

from collector.store import migration_files

PG_ONLY_TABLES = {"spool_batches"}
PG_ONLY_INDEXES = {"spool_batches_at"}


def schema(path: Path) -> tuple[dict[str, list[str]], set[str]]:
    sql = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
    tables: dict[str, list[str]] = {}
    for m in re.finditer(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)\s*\((.*?)\)\s*"
                         r"(?:PARTITION BY[^;]*)?;", sql, re.S | re.I):
        parts, depth, cur = [], 0, ""
        for ch in m.group(2):
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        words = [p.split()[0] for p in (x.strip() for x in parts) if p]
        tables[m.group(1)] = [w for w in words if w.upper() not in
                              ("PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT")]
    indexes = set(re.findall(r"CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?(\w+)", sql, re.I))
    return tables, indexes


def test_every_sqlite_migration_has_a_postgres_twin() -> None:
    lite = {p.stem: p for p in migration_files("sqlite")}
    pg = {p.stem: p for p in migration_files("postgres")}
    assert sorted(lite) == sorted(pg)
    for name, path in lite.items():
        tables, indexes = schema(path)
        pg_tables, pg_indexes = schema(pg[name])
        assert tables, name
        assert {t: c for t, c in pg_tables.items() if t not in PG_ONLY_TABLES} == tables, name
        assert pg_indexes - PG_ONLY_INDEXES == indexes, name
