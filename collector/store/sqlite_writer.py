"""SQLite group commit in a writer *process*: the event loop hands a batch over a pipe.

Why a process. A group-commit batch costs SQLite ~25-35 µs of CPU per hit in the server
(binding ~22 values, the row and its index entry, WAL frames, checkpoints, fsync): as
much as parsing and enriching the hit, and on the loop's thread it halves what the
collector can answer (bench/ingest.py with the write skipped: 0.64-0.79 of the bare
endpoint; with it inline: 0.30-0.41). A thread does not help: sqlite3 releases the GIL
only inside ``sqlite3_step``, and the GIL is slow to change hands while the loop is busy
(measured slower than inline, README Benchmark). A child process writes on the other
core with no GIL between them; the loop pays a ``marshal`` dump and a pipe write per
batch (~1-2 µs a hit) and keeps parsing hits while the child commits, so the next batch
forms meanwhile (the :class:`~collector.writer.Writer` policy: commit when the writer is
free).

Protocol, over the child's stdin/stdout: frames of a 4-byte big-endian length and a
``marshal`` payload. Parent → child: ``(hits, dropped)``; child → parent, one answer per
batch and in order: ``None`` once the batch is committed, or ``(error class, message)``
when it was rolled back. Only the collector writes to the pipe, and only ints, floats,
strings, None, tuples and lists go through it, so ``marshal`` (fast, no code) is enough.

Durability is unchanged: the child commits with ``synchronous=FULL`` and only then
answers, and a hit is acknowledged only after its answer. While another connection holds
the write lock (a rollup or retention batch) the child waits for it (:func:`write_waiting`,
up to 30 s, then the batch is refused); the loop never waits. If the child dies, its
batches in flight fail (the senders get a 503 and retry: such a batch may have been
committed already, so a retry can count a hit twice; an acknowledged hit is never lost)
and the next batch starts a new child. The child exits when its stdin closes: when the
database is closed, or the collector dies.

    python -m collector.store.sqlite_writer PATH     # what sqlite.WriterProcess runs

This module is the child program: it imports no asyncio, so it starts in ~50 ms.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

from collector.store import HIT_COLUMNS

BUSY_MS = 30_000

# Inserts of up to CHUNK rows per statement: one statement step instead of one per row.
# CHUNK * len(HIT_COLUMNS) stays under 999 variables (the limit of SQLite before 3.32).
CHUNK = 32
# A page view leaves the eight event columns (e_c … dvc_ref) empty: its rows go in a
# statement without them (the schema's defaults fill them). Every bound value costs SQLite
# and the sqlite3 module ~1.5k instructions, a third of a row's insert.
NARROW = HIT_COLUMNS.index("e_c")
_EMPTY_EVENT = ("", "", "", None, "", "", None, "")
assert HIT_COLUMNS[NARROW:] == ("e_c", "e_a", "e_n", "e_v", "target", "dvc_service",
                                "dvc_state", "dvc_ref")


def _insert(columns: tuple[str, ...], n: int) -> str:
    row = f"({', '.join('?' for _ in columns)})"
    return f"INSERT INTO hits ({', '.join(columns)}) VALUES {', '.join([row] * n)}"


_INSERT_HITS = [_insert(HIT_COLUMNS, n) for n in range(CHUNK + 1)]
_INSERT_NARROW = [_insert(HIT_COLUMNS[:NARROW], n) for n in range(CHUNK + 1)]

_ADD_DROPPED = (
    "INSERT INTO dropped (site_id, day, reason, host, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (site_id, day, reason, host) DO UPDATE SET n = n + excluded.n"
)


def statements(hits: Sequence[Sequence[Any]]) -> list[tuple[str, list[Any]]]:
    """The INSERTs for a batch, in arrival order: runs of up to CHUNK rows of one shape."""
    out: list[tuple[str, list[Any]]] = []
    values: list[Any] = []
    narrow = n = 0
    for row in hits:
        shape = tuple(row[NARROW:]) == _EMPTY_EVENT  # rows replayed from JSON are lists
        if n and (shape != narrow or n == CHUNK):
            out.append(((_INSERT_NARROW if narrow else _INSERT_HITS)[n], values))
            values, n = [], 0
        narrow = shape
        values.extend(row[:NARROW] if shape else row)
        n += 1
    if n:
        out.append(((_INSERT_NARROW if narrow else _INSERT_HITS)[n], values))
    return out


def write_batch(c: sqlite3.Connection, hits: Sequence[Sequence[Any]],
                dropped: Sequence[Sequence[Any]]) -> None:
    """One transaction: the hits, then the drop counts; rolled back whole on error."""
    inserts = statements(hits)
    if len(inserts) == 1 and not dropped:
        # the common batch: one statement is its own transaction (autocommit), as atomic
        # and durable as BEGIN … COMMIT, in one statement instead of three
        c.execute(*inserts[0])
        return
    c.execute("BEGIN IMMEDIATE")
    try:
        for sql, values in inserts:
            c.execute(sql, values)
        if dropped:
            c.executemany(_ADD_DROPPED, dropped)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 0")  # waits are write_waiting's own
    return conn


def _busy(e: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY, or one of its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT …)."""
    code = getattr(e, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) \
        or "database is locked" in str(e)


def write_waiting(c: sqlite3.Connection, hits: Sequence[Sequence[Any]],
                  dropped: Sequence[Sequence[Any]], wait_s: float = BUSY_MS / 1000) -> None:
    """:func:`write_batch`, retried every millisecond while another connection holds the
    write lock (a rollup batch), for up to ``wait_s``. SQLite's own ``busy_timeout`` sleeps
    longer and longer (up to 100 ms at a time) and so misses the short gaps between the
    batches of a long rollup: ingest would wait for the whole run."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return write_batch(c, hits, dropped)
        except sqlite3.OperationalError as e:
            if not _busy(e) or time.monotonic() > deadline:
                raise
        time.sleep(0.001)


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, size = [], 0
    while size < n:
        chunk = os.read(fd, n - size)
        if not chunk:
            return None  # the collector closed the pipe, or died
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def serve(path: str, fd_in: int = 0, fd_out: int = 1) -> None:
    """The child: commit each batch read from ``fd_in``, answer on ``fd_out``, until EOF."""
    conn = connect(path)
    try:
        while True:
            header = _read_exactly(fd_in, 4)
            payload = _read_exactly(fd_in, int.from_bytes(header, "big")) if header else None
            if payload is None:
                return
            hits, dropped = marshal.loads(payload)
            try:
                write_waiting(conn, hits, dropped)
                answer = None
            except Exception as e:  # reported to the collector, which refuses the batch
                answer = (type(e).__name__, str(e))
            out = marshal.dumps(answer)
            os.write(fd_out, len(out).to_bytes(4, "big") + out)
    finally:
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
