"""How every SQLite connection of the store is opened, and what one can be asked to do.

:data:`OPERATIONS` run on a pooled connection's thread (``collector/store/sqlite.py``) or
in the rollup's child process (``SQLiteDatabase.beside``), which is this file run as a
script over stdin/stdout, by pickled ``(operation, arguments)`` calls answered
``(ok, result)``:

    python -I -S collector/store/sqlite_ops.py DATABASE SHARED

It ends when its stdin closes (the parent closed the database, or died). It imports the
standard library only, not the ``collector`` package, and runs isolated (``-I``: no
environment variables, only the standard library on its path) and without ``site``: it
starts in ~20 ms instead of ~80 ms (the rollup's batch waits for that start).
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

BUSY_MS = 30_000
Params = Mapping[str, Any] | None


def connect(path: str, busy_ms: int = BUSY_MS, shared: str = "") -> sqlite3.Connection:
    """A connection as every one of this store is set up; ``shared``: the file attached as
    ``xfer`` (``SQLiteDatabase.beside``)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # rollups' sorts and TEMP work tables in memory; set here, outside any transaction
    # (inside one SQLite refuses to change it once the temp database is open)
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    if shared:  # scratch data passed between processes: no journal, no fsync
        conn.execute("ATTACH DATABASE ? AS xfer", (shared,))
        conn.execute("PRAGMA xfer.journal_mode = OFF")
        conn.execute("PRAGMA xfer.synchronous = OFF")
    return conn


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
    f.__name__[1:]: f for f in (_fetch_all, _fetch_one, _execute, _execute_many,
                                _execute_all, _fetch_rows, _insert_rows)}


def serve(path: str, shared: str) -> None:
    """The child process: answer calls from stdin on stdout until stdin closes."""
    conn = connect(path, shared=shared)
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
    serve(sys.argv[1], sys.argv[2])
