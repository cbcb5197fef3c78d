"""Every SQLite migration has a PostgreSQL twin with the same number, tables, columns and
indexes (PostgreSQL may add its own tables, e.g. ``spool_batches``), so a branch that adds
a migration for one backend only is caught here.

A SQLite table rebuild (``CREATE TABLE x_new (…)``, copy, ``DROP TABLE x``, ``ALTER TABLE
x_new RENAME TO x``, indexes recreated: the only way to change a column's constraints
there) changes no schema the twin could mirror: it must keep exactly the columns ``x`` had
and recreate exactly its indexes, and then the twin may be a no-op (0005: AUTOINCREMENT,
which PostgreSQL's sequences need not). The same holds the other way round: a PostgreSQL
rebuild (0007: ``dossiers`` partitioned by month) keeps the columns and named indexes, and
its SQLite twin may be a no-op. Indexes PostgreSQL adds for a mechanism of its own are
listed in ``PG_ONLY_INDEXES`` (``dossiers_event``: the event key its idempotency trigger
looks up, where SQLite has a UNIQUE constraint)."""

from __future__ import annotations

import re
from pathlib import Path

from collector.store import migration_files

PG_ONLY_TABLES = {"spool_batches"}
PG_ONLY_INDEXES = {"spool_batches_at", "dossiers_event"}


def schema(path: Path) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    """(table → columns, index → table, renamed table → new name) of one file."""
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
    indexes = dict(re.findall(r"CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?(\w+)\s+ON\s+(\w+)",
                              sql, re.I))
    renames = dict(re.findall(r"ALTER TABLE (\w+) RENAME TO (\w+)", sql, re.I))
    return tables, indexes, renames


def dropped(path: Path) -> set[str]:
    """Tables a file drops outright (not as the last step of a rebuild: those are renamed
    back, see :func:`schema`)."""
    sql = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
    renamed = set(re.findall(r"ALTER TABLE \w+ RENAME TO (\w+)", sql, re.I))
    return set(re.findall(r"DROP TABLE (?:IF EXISTS )?(\w+)", sql, re.I)) - renamed


def test_every_sqlite_migration_has_a_postgres_twin() -> None:
    lite = {p.stem: p for p in migration_files("sqlite")}
    pg = {p.stem: p for p in migration_files("postgres")}
    assert sorted(lite) == sorted(pg)
    columns: dict[str, list[str]] = {}  # SQLite tables so far
    index_of: dict[str, str] = {}       # SQLite indexes so far → their table
    for name in sorted(lite):
        tables, indexes, renames = schema(lite[name])
        pg_tables, pg_indexes, pg_renames = schema(pg[name])
        for side, (t_of, i_of, r_of, only) in {
                "sqlite": (tables, indexes, renames, set()),
                "postgres": (pg_tables, pg_indexes, pg_renames, PG_ONLY_INDEXES)}.items():
            for tmp, table in r_of.items():  # rebuilds: nothing the twin has to mirror
                assert table in columns and tmp in t_of, (name, side, tmp, table)
                assert t_of.pop(tmp) == columns[table], (name, side, table)  # same columns
                again = {i for i, t in i_of.items() if t in (table, tmp) and i not in only}
                assert again == {i for i, t in index_of.items() if t == table}, (name, table)
                for i in again:
                    del i_of[i]
        drops = dropped(lite[name])
        assert drops == dropped(pg[name]), name  # tables dropped on one side only
        assert tables or renames or pg_renames or drops, name
        assert {t: c for t, c in pg_tables.items() if t not in PG_ONLY_TABLES} == tables, name
        assert set(pg_indexes) - PG_ONLY_INDEXES == set(indexes), name
        columns.update(tables)
        index_of.update(indexes)
        for table in drops:  # a dropped table (and its indexes) existed before
            assert columns.pop(table, None) is not None, (name, table)
            index_of = {i: t for i, t in index_of.items() if t != table}
