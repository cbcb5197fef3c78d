"""The storage contract: one small interface, one module per backend.

Everything above the store speaks plain SQL with ``:name`` parameters, written once;
each backend rebinds it (SQLite takes it as is, PostgreSQL gets ``$1…``). The only
backend-specific fast path is :meth:`Database.write_batch`, the group commit of ingest.

    db = await open_database("giamsat.db")          # or "postgresql://…"
    await db.migrate()
    rows = await db.fetch_all("SELECT * FROM sites WHERE agency_code = :a", {"a": "H26"})
    async with db.transaction() as tx:
        await tx.execute("UPDATE …", {...})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

Params = Mapping[str, Any] | None
Row = dict[str, Any]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Queries(Protocol):
    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]: ...
    async def fetch_one(self, sql: str, params: Params = None) -> Row | None: ...
    async def execute(self, sql: str, params: Params = None) -> int: ...
    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None: ...

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        """Execute several statements in order, in one go (SQLite: one thread hop instead
        of one per statement); on the database itself, in one transaction."""

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Like :meth:`fetch_all`, as tuples in column order (no dict per row: for bulk
        reads such as the rollup's)."""

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows (tuples in ``columns`` order) into ``table`` at once
        (SQLite ``executemany``, PostgreSQL ``COPY``); on the database itself, in one
        transaction."""

    async def advisory_lock(self, name: str) -> None:
        """Inside a transaction: wait for, then hold until it ends, the lock ``name``
        (PostgreSQL ``pg_advisory_xact_lock``; a no-op on SQLite, whose writing
        transactions are serial). Rollup runners take it so two never interleave."""


class Session(Protocol):
    def transaction(self, write: bool = False) -> AbstractAsyncContextManager[Queries]:
        """A transaction on the session's connection: reading one snapshot of what is
        committed, or (``write``) holding the write lock."""


class Database(Queries, Protocol):
    dialect: str  # "sqlite" | "postgres"

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """One writing transaction on one connection."""

    def streams(self) -> AbstractAsyncContextManager[tuple[Session, Session] | None]:
        """SQLite: two connections, each held for several transactions of its own (one in
        a child process), for work done on both cores at once: the rollup's two streams.
        None while another caller has them, and always on PostgreSQL (whose rollup is one
        connection's work)."""

    async def write_batch(
        self, hits: Sequence[Sequence[Any]], dropped: Sequence[tuple[int, str, str, str, int]]
    ) -> None:
        """Insert hit rows (in ``HIT_COLUMNS`` order) and add drop counts, in one transaction."""

    async def horizon(self, table: str = "hits") -> int:
        """The highest id of ``table`` (``hits`` or ``dossiers``) below which no row can still
        appear: an incremental rollup reads ``id > watermark AND id <= horizon``. On
        PostgreSQL concurrent collectors commit ids out of order; this waits for inserts in
        flight and returns a safe id."""

    async def hits_horizon(self) -> int:
        """``horizon("hits")``."""

    async def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied."""

    async def close(self) -> None: ...


HIT_COLUMNS: tuple[str, ...] = (
    "site_id", "ts", "day", "kind", "visitor", "pv_id", "host", "path", "url", "title",
    "referrer", "ref_host", "utm_source", "utm_medium", "utm_campaign", "browser", "os",
    "device", "country", "province", "screen", "lang", "e_c", "e_a", "e_n", "e_v", "target",
    "dvc_service", "dvc_state", "dvc_ref",
)


def migration_files(dialect: str) -> list[Path]:
    """The numbered ``NNNN_name.sql`` files of a backend, in order."""
    folder = MIGRATIONS / dialect
    return sorted(p for p in folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))


async def open_database(url: str, spool_dir: str = "") -> Database:
    """Open the backend named by ``url``: ``postgresql://…`` or a SQLite file path.

    ``spool_dir`` (PostgreSQL only): where hits are spooled while the server is unreachable.
    """
    if url.startswith(("postgres://", "postgresql://")):
        from collector.store.postgres import PostgresDatabase

        return await PostgresDatabase.open(url, spool_dir)
    from collector.store.sqlite import SQLiteDatabase

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return await SQLiteDatabase.open(path)
