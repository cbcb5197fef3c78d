"""How every SQLite connection of the store is opened, and what one can be asked to do.

:data:`OPERATIONS` run on a pooled connection's thread (``collector/store/sqlite.py``) or
in the rollup's child process (``SQLiteDatabase.streams``), which is this file run as a
script over stdin/stdout, by pickled ``(operation, arguments)`` calls answered
``(ok, result)``:

    python -I -S collector/store/sqlite_ops.py DATABASE

It ends when its stdin closes (the parent closed the database, or died). It imports the
standard library only, not the ``collector`` package, and runs isolated (``-I``: no
environment variables, only the standard library on its path) and without ``site``: it
starts in ~20 ms instead of ~80 ms (the rollup's second stream begins that much later).
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

BUSY_MS = 30_000
WAL_LIMIT = 64 << 20  # bytes of WAL file kept after it restarts
Params = Mapping[str, Any] | None
T = TypeVar("T")


def waiting(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """``fn`` on a connection whose ``busy_timeout`` is 0, retried every millisecond while
    another connection holds the write lock, for up to ``BUSY_MS`` (off the event loop
    only). SQLite's own ``busy_timeout`` sleeps longer and longer (up to 100 ms at a time)
    and so misses the short gaps between the batches of a long rollup: ingest would wait
    for the whole run, and a rollup stream for the other stream's next batch too."""

    def run(c: sqlite3.Connection) -> T:
        deadline = time.monotonic() + BUSY_MS / 1000
        while True:
            try:
                return fn(c)
            except sqlite3.OperationalError as e:
                if not locked(e) or time.monotonic() > deadline:
                    raise
            time.sleep(0.001)

    return run


def locked(e: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY, or one of its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT …)."""
    code = getattr(e, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) \
        or "database is locked" in str(e)


def connect(path: str, busy_ms: int = BUSY_MS) -> sqlite3.Connection:
    """A connection as every one of this store is set up."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    # the WAL grows while the rollup's two streams keep a read transaction open between
    # them (a checkpoint cannot finish then: a 1M-event backfill grew it to 230 MB, about
    # the rollup rows it writes); with this, each restart of the WAL shrinks its file back
    # (the same backfill ended at 64 MB)
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    conn.execute("PRAGMA foreign_keys = ON")
    # rollups' sorts and TEMP work tables in memory; set here, outside any transaction
    # (inside one SQLite refuses to change it once the temp database is open)
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    return conn


def _begin(c: sqlite3.Connection, write: bool) -> None:
    """``BEGIN`` (its reads see one snapshot, taken at the first) or, to write, ``BEGIN
    IMMEDIATE``, retried every millisecond while another connection writes."""
    if not write:
        c.execute("BEGIN")
        return
    busy_ms = c.execute("PRAGMA busy_timeout").fetchone()[0]
    c.execute("PRAGMA busy_timeout = 0")
    try:
        waiting(lambda conn: conn.execute("BEGIN IMMEDIATE"))(c)
    finally:
        c.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")


def _fetch_all(c: sqlite3.Connection, sql: str, params: Params) -> list[dict[str, Any]]:
    return [dict(r) for r in c.execute(sql, params or {})]


def _fetch_one(c: sqlite3.Connection, sql: str, params: Params) -> dict[str, Any] | None:
    r = c.execute(sql, params or {}).fetchone()
    return dict(r) if r is not None else None


def _execute(c: sqlite3.Connection, sql: str, params: Params) -> int:
    return c.execute(sql, params or {}).rowcount


def _execute_many(c: sqlite3.Connection, sql: str, rows: list[Mapping[str, Any]]) -> None:
    c.executemany(sql, rows)


def _execute_all(c: sqlite3.Connection, statements: Sequence[tuple[str, Params]]) -> None:
    for sql, params in statements:
        c.execute(sql, params or {})


def _fetch_rows(c: sqlite3.Connection, sql: str, params: Params) -> list[tuple[Any, ...]]:
    cur = c.execute(sql, params or {})
    cur.row_factory = None  # plain tuples
    return cur.fetchall()


def _insert_rows(c: sqlite3.Connection, table: str, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> None:
    c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' for _ in columns)})", rows)


OPERATIONS: dict[str, Callable[..., Any]] = {
    f.__name__[1:]: f for f in (_begin, _fetch_all, _fetch_one, _execute, _execute_many,
                                _execute_all, _fetch_rows, _insert_rows)}


def serve(path: str) -> None:
    """The child process: answer calls from stdin on stdout until stdin closes."""
    conn = connect(path)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            op, args = pickle.load(stdin)
        except EOFError:
            break
        try:
            answer: tuple[bool, Any] = (True, OPERATIONS[op](conn, *args))
        except Exception as e:  # the caller raises it
            answer = (False, f"{type(e).__name__}: {e}")
        pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
    conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
