"""SQLite backend: WAL, a writer connection for group commit, a few pooled connections.

Like datasette's ``Database``: every pooled connection lives on its own thread (a
one-thread executor), so a batch of work is one thread hop, never one hop per row;
queries and rollup transactions take a connection from that small pool. Writers from
different connections serialise on SQLite's file lock, waited for by ``busy_timeout``.

Group commit batches are written *on the event loop's thread*, by a dedicated writer
connection that never waits for the lock (``busy_timeout = 0``). A hand-off to a thread
and back cost more than the write: two wake-ups and two GIL hand-offs per batch, and
the GIL is slow to change hands while the loop is busy parsing hits (measured on
loopback, an A/B in the same minutes: +26-28 % hits/s inline at 8 connections, +16-45 %
at 32; README, Benchmark). A writer *process* (batches sent over a pipe with ``marshal``,
committed by a child on the other core) was built and measured too, 2026-12-02: the
same ratio to the bare endpoint within the noise (6 interleaved runs: 0.47-0.57 against
0.50-0.53 inline at 128 connections), the same instructions per request on the loop
(callgrind: 327k against 325k: the pipe, the frames and the wake-ups cost what SQLite's
insert does), so it was dropped for the simpler design. The loop stands still for the
write and its fsync (~0.1 ms of CPU and ~0.3 ms of disk for a batch here); that is also
when no hit could be answered anyway. When another connection holds the write lock (a
rollup or retention batch), the write is handed to the writer's thread, which waits for
the lock there (``sqlite_ops.waiting``), so the loop never waits for a lock. WAL
auto-checkpoints run in whichever connection commits past 1,000 pages, the writer's
included (a few ms).

:meth:`SQLiteDatabase.streams` holds two connections for several transactions each, a
pooled one and one in a child process (``collector/store/sqlite_ops.py``), for the rollup's
two streams; their writing transactions take the lock like any other, retried every
millisecond.

``synchronous=FULL`` in WAL mode: a commit is on disk before it returns, so an
acknowledged hit survives a power cut, not only a crash. Group commit pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from collector.store import HIT_COLUMNS, Params, Row, migration_files
from collector.store.sqlite_ops import BUSY_MS, OPERATIONS, connect, locked, waiting

T = TypeVar("T")
POOL_SIZE = 3


# Group commit inserts up to CHUNK rows per statement: one statement step instead of one per
# row (each step also releases and retakes the GIL, a hand-off whenever the write waits on
# the writer's thread for the lock).
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


def _statements(hits: Sequence[Sequence[Any]]) -> list[tuple[str, list[Any]]]:
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


_ADD_DROPPED = (
    "INSERT INTO dropped (site_id, day, reason, host, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (site_id, day, reason, host) DO UPDATE SET n = n + excluded.n"
)


class _Connection:
    """A sqlite3 connection bound to one thread; ``busy_ms`` is how long its statements
    wait for another connection's write lock."""

    def __init__(self, path: str, busy_ms: int = BUSY_MS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._path = path
        self._busy_ms = busy_ms
        self.conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.conn = connect(self._path, self._busy_ms)

    def dead(self) -> bool:
        return False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        if self.conn is None:
            await loop.run_in_executor(self._executor, self._open)
        assert self.conn is not None
        return await loop.run_in_executor(self._executor, fn, self.conn)

    async def call(self, op: str, *args: Any) -> Any:
        return await self.run(lambda c: OPERATIONS[op](c, *args))

    async def close(self) -> None:
        if self.conn is not None:
            conn = self.conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


class _Queries:
    """Query methods over one connection (used inside transactions): a pooled one, or the
    child process's (``call`` runs an operation of :data:`OPERATIONS` there)."""

    def __init__(self, conn: _Connection | _Child) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        return await self._conn.call("fetch_all", sql, params)

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        return await self._conn.call("fetch_one", sql, params)

    async def execute(self, sql: str, params: Params = None) -> int:
        return await self._conn.call("execute", sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        await self._conn.call("execute_many", sql, list(rows))

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        await self._conn.call("execute_all", statements)

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return await self._conn.call("fetch_rows", sql, params)

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        await self._conn.call("insert_rows", table, columns, rows)

    async def advisory_lock(self, name: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already serialises writing transactions."""


class _Session:
    """One connection held for several transactions: a pooled one, or the child's."""

    def __init__(self, conn: _Connection | _Child) -> None:
        self._conn = conn

    @asynccontextmanager
    async def transaction(self, write: bool = False) -> AsyncIterator[_Queries]:
        """``BEGIN`` (its reads see one snapshot of what is committed) or, with ``write``,
        ``BEGIN IMMEDIATE`` (retried every millisecond while another connection writes:
        SQLite's busy handler sleeps up to 100 ms at a time); ``COMMIT``, or ``ROLLBACK``
        on error."""
        await self._conn.call("begin", write)
        try:
            yield _Queries(self._conn)
        except BaseException:
            if not self._conn.dead():
                await self._conn.call("execute", "ROLLBACK", None)
            raise
        await self._conn.call("execute", "COMMIT", None)


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer = _Connection(path, busy_ms=0)  # see the module docstring
        self._all = [_Connection(path) for _ in range(POOL_SIZE)]
        self._child: _Child | None = None
        self._child_busy = False
        self._pool: asyncio.Queue[_Connection] = asyncio.Queue()
        for c in self._all:
            self._pool.put_nowait(c)

    @classmethod
    async def open(cls, path: str) -> SQLiteDatabase:
        db = cls(path)
        await db._writer.run(lambda c: None)  # creates the file, sets WAL
        return db

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[_Connection]:
        conn = await self._pool.get()
        try:
            yield conn
        finally:
            self._pool.put_nowait(conn)

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        async with self._borrow() as conn:
            return await _Queries(conn).fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        async with self._borrow() as conn:
            return await _Queries(conn).fetch_one(sql, params)

    async def execute(self, sql: str, params: Params = None) -> int:
        async with self._borrow() as conn:
            return await _Queries(conn).execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        async with self._borrow() as conn:
            await _Queries(conn).execute_many(sql, rows)

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        async with self.transaction() as q:
            await q.execute_all(statements)

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        async with self._borrow() as conn:
            return await _Queries(conn).fetch_rows(sql, params)

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        async with self.transaction() as q:
            await q.insert_rows(table, columns, rows)

    async def horizon(self, table: str = "hits") -> int:
        """The highest committed id of ``table``: SQLite assigns ids under its single write
        lock, so ids commit in order and nothing can appear below ``max(id)``."""
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        row = await self.fetch_one(f"SELECT coalesce(max(id), 0) AS id FROM {table}")
        return int(row["id"]) if row else 0

    async def hits_horizon(self) -> int:
        return await self.horizon("hits")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Queries]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on one pooled connection; rolls back on error."""
        async with self._borrow() as conn:
            async with _Session(conn).transaction(write=True) as q:
                yield q

    @asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[_Session, _Session] | None]:
        """Two connections, each held for several transactions of its own, for work done
        on both cores at once (the rollup's two streams): a pooled one, and one in a child
        process. A process, not a thread: two threads of one process running SQLite at
        once run slower than one after the other here (SQLite's global memory and
        page-cache mutexes; measured with two connections to two files, pure SQL).
        None while another caller holds them: it never waits."""
        if self._child_busy:
            yield None
            return
        self._child_busy = True
        try:
            if self._child is not None and self._child.dead():  # killed, or failed a call
                await asyncio.get_running_loop().run_in_executor(None, self._child.close)
                self._child = None
            if self._child is None:
                self._child = _Child(self.path)
            async with self._borrow() as conn:
                yield _Session(conn), _Session(self._child)
        finally:
            self._child_busy = False

    async def write_batch(
        self, hits: Sequence[Sequence[Any]], dropped: Sequence[tuple[int, str, str, str, int]]
    ) -> None:
        def write(c: sqlite3.Connection) -> None:
            statements = _statements(hits)
            if len(statements) == 1 and not dropped:
                # the common batch: one statement is its own transaction (autocommit), as
                # atomic and durable as BEGIN … COMMIT, in one statement instead of three
                c.execute(*statements[0])
                return
            c.execute("BEGIN IMMEDIATE")
            try:
                for sql, values in statements:
                    c.execute(sql, values)
                if dropped:
                    c.executemany(_ADD_DROPPED, dropped)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        conn = self._writer.conn
        if conn is not None:
            try:
                write(conn)  # inline, never waiting for a lock (module docstring)
                return
            except sqlite3.OperationalError as e:
                if not locked(e):
                    raise
        await self._writer.run(waiting(write))  # another connection writes: wait off the loop

    async def migrate(self) -> list[str]:
        def apply(c: sqlite3.Connection) -> list[str]:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
            )
            done = {r[0] for r in c.execute("SELECT name FROM schema_migrations")}
            applied = []
            for path in migration_files(self.dialect):
                if path.stem in done:
                    continue
                name = path.stem.replace("'", "''")
                # one script, one transaction: a failed migration leaves nothing behind
                c.executescript(
                    f"BEGIN IMMEDIATE;\n{path.read_text(encoding='utf-8')}\n;"
                    f"INSERT INTO schema_migrations (name) VALUES ('{name}');\nCOMMIT;"
                )
                applied.append(path.stem)
            return applied

        try:
            return await self._writer.run(waiting(apply))
        except sqlite3.Error:
            await self._writer.run(lambda c: c.in_transaction and c.execute("ROLLBACK"))
            raise

    async def close(self) -> None:
        await self._writer.close()
        for c in self._all:
            await c.close()
        if self._child is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._child.close)


class _Child:
    """One connection in a child process (``collector/store/sqlite_ops.py`` run as a
    script), driven over its stdin/stdout with pickled calls; used from one thread at a
    time."""

    def __init__(self, path: str) -> None:
        script = str(Path(__file__).resolve().with_name("sqlite_ops.py"))
        self._proc = subprocess.Popen([sys.executable, "-I", "-S", script, path],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-child")

    def dead(self) -> bool:
        return self._proc.poll() is not None

    def _call(self, op: str, args: tuple[Any, ...]) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            pickle.dump((op, args), self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
            ok, result = pickle.load(self._proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as e:
            self._proc.kill()
            self._proc.wait()  # dead() from now on: the next streams() starts a new child
            raise sqlite3.OperationalError(f"rollup child process failed: {e!r}") from e
        if not ok:
            raise sqlite3.OperationalError(result)
        return result

    async def call(self, op: str, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._call, op, args)

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):  # a dead child's pipe
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._executor.shutdown(wait=True)
