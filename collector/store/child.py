"""The child process of ``SQLiteDatabase.beside``: one SQLite connection, driven over
stdin/stdout by pickled ``(operation, arguments)`` calls (``sqlite.OPERATIONS``), each
answered ``(ok, result)``.

    python -m collector.store.child DATABASE SHARED

Ends when its stdin closes (the parent closed the database, or died).
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

from collector.store.sqlite import OPERATIONS, connect


def main() -> None:
    conn = connect(sys.argv[1], shared=sys.argv[2])
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
    main()
