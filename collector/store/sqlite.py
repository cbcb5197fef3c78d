"""SQLite backend: WAL, a writer process for group commit, a few pooled connections.

Like datasette's ``Database``: every pooled connection lives on its own thread (a
one-thread executor), so a batch of work is one thread hop, never one hop per row;
queries and rollup transactions take a connection from that small pool. Writers from
different connections serialise on SQLite's file lock, waited for by ``busy_timeout``.

Group commit batches (:meth:`SQLiteDatabase.write_batch`) are written by a child
process, :mod:`collector.store.sqlite_writer`, which explains why: the write costs as
much CPU as parsing the hit, and in a process it runs on the other core without the GIL.

``synchronous=FULL`` in WAL mode: a commit is on disk before it returns, so an
acknowledged hit survives a power cut, not only a crash. Group commit pays for it.
"""

from __future__ import annotations

import asyncio
import marshal
import os
import sqlite3
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from collector.store import Params, Row, migration_files

T = TypeVar("T")
POOL_SIZE = 3
BUSY_MS = 30_000


class _Connection:
    """A sqlite3 connection bound to one thread."""

    def __init__(self, path: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._path = path
        self.conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # rollups' sorts and TEMP work tables in memory; set here, outside any transaction
        # (inside one SQLite refuses to change it once the temp database is open)
        conn.execute("PRAGMA temp_store = MEMORY")
        self.conn = conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        if self.conn is None:
            await loop.run_in_executor(self._executor, self._open)
        assert self.conn is not None
        return await loop.run_in_executor(self._executor, fn, self.conn)

    async def close(self) -> None:
        if self.conn is not None:
            conn = self.conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


class WriterGone(sqlite3.OperationalError):
    """The writer process exited before it answered."""


class _Answers(asyncio.SubprocessProtocol):
    """Reads the child's answers as they arrive and resolves the batches in order."""

    def __init__(self) -> None:
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.buffer = bytearray()
        self.gone = False

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + size:
                break
            answer = marshal.loads(bytes(buf[4:4 + size]))
            del buf[:4 + size]
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_result(answer)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._fail()

    def process_exited(self) -> None:
        self._fail()

    def _fail(self) -> None:
        self.gone = True
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(WriterGone("the SQLite writer process exited"))


class WriterProcess:
    """The collector's side: starts the child on first use (again if it died), sends
    batches, resolves each caller when its batch's answer comes back."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._transport: asyncio.SubprocessTransport | None = None
        self._answers: _Answers | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None

    async def _ensure(self) -> tuple[asyncio.SubprocessTransport, _Answers]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (one CLI command after
            self._abandon()         # another): a child of a closed loop cannot be read
            self._starting, self._loop = asyncio.Lock(), loop
        assert self._starting is not None
        async with self._starting:
            if self._answers is None or self._answers.gone:
                if self._transport is not None:
                    self._transport.close()
                root = str(Path(__file__).resolve().parents[2])
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                    p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
                self._transport, self._answers = await loop.subprocess_exec(
                    _Answers, sys.executable, "-m", "collector.store.sqlite_writer", self.path,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                    env=env,
                )
            assert self._transport is not None
            return self._transport, self._answers

    def _abandon(self) -> None:
        transport, self._transport, self._answers = self._transport, None, None
        if transport is not None:
            try:
                transport.kill()
            except ProcessLookupError:
                pass
            transport.close()

    async def write(self, hits: Sequence[Sequence[Any]],
                    dropped: Sequence[Sequence[Any]]) -> None:
        """Commit one batch in the child; raises the child's error, or :class:`WriterGone`."""
        payload = marshal.dumps((hits if isinstance(hits, list) else list(hits),
                                 dropped if isinstance(dropped, list) else list(dropped)))
        transport, answers = await self._ensure()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        stdin: Any = transport.get_pipe_transport(0)  # uvloop's is no asyncio.WriteTransport
        stdin.write(len(payload).to_bytes(4, "big") + payload)
        answers.pending.append(fut)  # answers come in the order the batches were written
        answer = await fut
        if answer is not None:
            kind, message = answer
            error = getattr(sqlite3, kind, None)
            if not (isinstance(error, type) and issubclass(error, sqlite3.Error)):
                error = sqlite3.DatabaseError
            raise error(message)

    async def close(self) -> None:
        """Let the child commit what it was sent, then wait for it to exit."""
        transport, answers = self._transport, self._answers
        if transport is None or answers is None or self._loop is not asyncio.get_running_loop():
            self._abandon()
            return
        stdin = transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()  # EOF: the child finishes its batch and exits
        while transport.get_returncode() is None:
            await asyncio.sleep(0.005)
        transport.close()
        self._transport = self._answers = None


class _Queries:
    """Query methods over one connection (used inside transactions)."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        return await self._conn.run(lambda c: [dict(r) for r in c.execute(sql, params or {})])

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            r = c.execute(sql, params or {}).fetchone()
            return dict(r) if r is not None else None

        return await self._conn.run(one)

    async def execute(self, sql: str, params: Params = None) -> int:
        return await self._conn.run(lambda c: c.execute(sql, params or {}).rowcount)

    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        rows = list(rows)
        await self._conn.run(lambda c: c.executemany(sql, rows))

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        def run(c: sqlite3.Connection) -> None:
            for sql, params in statements:
                c.execute(sql, params or {})

        await self._conn.run(run)

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        def rows(c: sqlite3.Connection) -> list[tuple[Any, ...]]:
            cur = c.execute(sql, params or {})
            cur.row_factory = None  # plain tuples
            return cur.fetchall()

        return await self._conn.run(rows)

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
        await self._conn.run(lambda c: c.executemany(sql, rows))

    async def advisory_lock(self, name: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already serialises writing transactions."""


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer = WriterProcess(path)  # see the module docstring
        self._all = [_Connection(path) for _ in range(POOL_SIZE)]
        self._pool: asyncio.Queue[_Connection] = asyncio.Queue()
        for c in self._all:
            self._pool.put_nowait(c)

    @classmethod
    async def open(cls, path: str) -> SQLiteDatabase:
        db = cls(path)
        await db._all[0].run(lambda c: None)  # creates the file, sets WAL
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
            await conn.run(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _Queries(conn)
            except BaseException:
                await conn.run(lambda c: c.execute("ROLLBACK"))
                raise
            await conn.run(lambda c: c.execute("COMMIT"))

    async def write_batch(
        self, hits: Sequence[Sequence[Any]], dropped: Sequence[tuple[int, str, str, str, int]]
    ) -> None:
        await self._writer.write(hits, dropped)

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

        def run() -> list[str]:
            # a connection of its own: what a migration leaves in a connection (its TEMP
            # database, say) must not reach the pool, whose rollups set temp_store
            c = sqlite3.connect(self.path, isolation_level=None)
            try:
                c.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
                c.execute("PRAGMA journal_mode = WAL")
                c.execute("PRAGMA foreign_keys = ON")
                try:
                    return apply(c)
                except sqlite3.Error:
                    if c.in_transaction:
                        c.execute("ROLLBACK")
                    raise
            finally:
                c.close()

        return await asyncio.to_thread(run)

    async def close(self) -> None:
        await self._writer.close()
        for c in self._all:
            await c.close()
