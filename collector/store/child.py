"""The child process of ``SQLiteDatabase.beside``: one SQLite connection, driven over
stdin/stdout by pickled ``(operation, arguments)`` calls, each answered ``(ok, result)``.

    python -m collector.store.child DATABASE SHARED

Ends when its stdin closes (the parent closed the database, or died).
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
from typing import Any

from collector.store.sqlite import connect


def _run(conn: sqlite3.Connection, op: str, args: tuple[Any, ...]) -> Any:
    if op == "execute_all":
        for sql, params in args[0]:
            conn.execute(sql, params or {})
        return None
    if op == "execute":
        return conn.execute(args[0], args[1] or {}).rowcount
    if op == "execute_many":
        conn.executemany(args[0], args[1])
        return None
    if op == "fetch_all":
        return [dict(r) for r in conn.execute(args[0], args[1] or {})]
    if op == "fetch_rows":
        cur = conn.execute(args[0], args[1] or {})
        cur.row_factory = None
        return cur.fetchall()
    if op == "insert_rows":
        table, columns, rows = args
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                         f"VALUES ({', '.join('?' for _ in columns)})", rows)
        return None
    raise ValueError(f"unknown operation {op!r}")


def main() -> None:
    conn = connect(sys.argv[1], shared=sys.argv[2])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            op, args = pickle.load(stdin)
        except EOFError:
            break
        try:
            answer: tuple[bool, Any] = (True, _run(conn, op, args))
        except Exception as e:  # the caller raises it
            answer = (False, f"{type(e).__name__}: {e}")
        pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
    conn.close()


if __name__ == "__main__":
    main()
