"""PostgreSQL backend (asyncpg): the peer of the SQLite store for multi-collector setups.

- SQL: the portable ``:name`` SQL of the project is rebound to ``$1…`` once per SQL
  string (cached), skipping string literals, quoted identifiers, comments, dollar quotes
  and ``::`` casts. ``numeric`` results (``SUM`` of bigints, ``AVG``) come back as ``int``
  or ``float``, as SQLite gives them, never ``Decimal``.
- Group commit (:meth:`write_batch`): one transaction per batch on a pooled connection:
  the batch id into ``spool_batches``, the hits, the drop counts (upsert). Up to
  ``COPY_MIN`` hits it is one statement (``unnest`` of arrays, CTEs) and one round trip;
  bigger batches go through ``COPY``.
- Raw events (``hits``, ``dossiers``) are partitioned by local (UTC+7) month on ``ts``:
  ``hits_YYYYMM`` / ``dossiers_YYYYMM`` created ahead (:meth:`ensure_partitions`, on
  migrate and hourly from the app) and a DEFAULT partition each, so no event is ever
  refused; rows that landed in DEFAULT are moved into a new month partition when it is
  created. Retention (:mod:`collector.retention`) drops whole months
  (:meth:`drop_partitions_before`) and deletes rows only in the DEFAULT partitions
  (:meth:`delete_default_before`).
- Migrations (``migrations/postgres/NNNN_*.sql``) run each in its own transaction under a
  session advisory lock, so collectors starting at once migrate once.
- Rollup horizon: every insert into ``hits`` / ``dossiers`` holds a *shared* transaction
  advisory lock (a statement trigger, 0001_init.sql) until it commits; :meth:`horizon`
  takes the same lock *exclusively* for one statement, so at that instant no insert is
  in flight and every id up to the sequence's last value is committed or will never
  appear. Rollups read ``id <= horizon``, never past a hole that a slower collector may
  still fill. :meth:`advisory_lock` (inside a transaction) serialises rollup runners.
- Connection loss: with a spool directory, a batch that cannot be written because the
  server is unreachable is appended to the local spool (:mod:`collector.spool`, fsynced)
  and acknowledged; while degraded, batches go straight to the spool and a background
  task replays it when the server answers again, each batch exactly once (its id is in
  ``spool_batches`` in the same transaction as its rows). A batch whose commit failed
  ambiguously is spooled too and skipped on replay if it did commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from collector.spool import Spool
from collector.store import HIT_COLUMNS, Params, Row, migration_files

log = logging.getLogger("giamsat.postgres")

POOL_MAX = 8
CONNECT_TIMEOUT = 3.0
MIGRATE_LOCK = 0x6769616D_0001  # advisory lock keys: "giam" + n
PARTITION_LOCK = 0x6769616D_0002
PARTITIONED = ("hits", "dossiers")  # raw-event tables partitioned by local month on ts
DROP_LOCK_TIMEOUT = 1.0  # s: how long dropping a partition may wait for (and so stall) ingest
LOCAL_TZ = dt.timezone(dt.timedelta(hours=7))
SPOOL_BATCH_DAYS = 7  # batch ids older than this are pruned from spool_batches

# the server is unreachable or the connection broke (not: the data is wrong) — spooled
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # connection closed / does not exist (DataError excluded below)
    asyncpg.exceptions.InternalClientError,  # protocol state broken by a dropped connection
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
)


def is_outage(e: BaseException) -> bool:
    """Whether ``e`` means the database is away (retry later) rather than a bad batch."""
    return isinstance(e, CONNECTION_ERRORS) and not isinstance(e, asyncpg.DataError)

_ADD_DROPPED = (
    "INSERT INTO dropped (site_id, day, reason, host, n) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (site_id, day, reason, host) DO UPDATE SET n = dropped.n + excluded.n"
)
_CLAIM_BATCH = (
    "INSERT INTO spool_batches (batch_id, at) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING"
)
_HIT_TYPES = {"site_id": "bigint", "ts": "bigint", "visitor": "bigint", "dvc_state": "bigint",
              "e_v": "double precision"}
_N = len(HIT_COLUMNS)
_WRITE_SMALL = (
    "WITH claim AS (INSERT INTO spool_batches (batch_id, at) VALUES ($1, $2) "
    "ON CONFLICT (batch_id) DO NOTHING RETURNING 1), "
    f"h AS (INSERT INTO hits ({', '.join(HIT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 3}::{_HIT_TYPES.get(c, 'text')}[]" for i, c in enumerate(HIT_COLUMNS))
    + ") WHERE EXISTS (SELECT 1 FROM claim)), "
    "d AS (INSERT INTO dropped (site_id, day, reason, host, n) SELECT * FROM unnest("
    f"${_N + 3}::bigint[], ${_N + 4}::text[], ${_N + 5}::text[], ${_N + 6}::text[], "
    f"${_N + 7}::bigint[]) WHERE EXISTS (SELECT 1 FROM claim) "
    "ON CONFLICT (site_id, day, reason, host) DO UPDATE SET n = dropped.n + excluded.n) "
    "SELECT count(*) FROM claim"
)
COPY_MIN = 200  # batches above this many hits go by COPY
BARRIER_CLASS = 26473  # first key of the insert-barrier advisory locks (0001_init.sql)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@functools.lru_cache(maxsize=4096)
def rebind(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` → ``$n`` (the same name reuses its number); returns (sql, names in order)."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote inside
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "$" and (m := _DOLLAR.match(sql, i)) and (i == 0 or not _is_word(sql[i - 1])):
            end = sql.find(m.group(0), m.end())
            j = n if end < 0 else end + len(m.group(0))
            out.append(sql[i:j])
            i = j
        elif c == ":":
            if sql.startswith("::", i):
                out.append("::")
                i += 2
            elif (m := _NAME.match(sql, i + 1)) is not None:
                name = m.group(0)
                if name not in names:
                    names.append(name)
                out.append(f"${names.index(name) + 1}")
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), tuple(names)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _args(sql: str, params: Params) -> tuple[str, list[Any]]:
    text, names = rebind(sql)
    if not names:
        return text, []
    if params is None:
        raise KeyError(f"SQL needs parameters {', '.join(names)}")
    try:
        return text, [params[name] for name in names]
    except KeyError as e:
        raise KeyError(f"missing SQL parameter :{e.args[0]}") from None


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


def _numeric(text: str) -> int | float:
    if text.lstrip("-").isdigit():
        return int(text)
    return float(text)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )


class _Queries:
    """The four query methods over one connection (inside a transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        text, args = _args(sql, params)
        return [dict(r) for r in await self._conn.fetch(text, *args)]

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        text, args = _args(sql, params)
        r = await self._conn.fetchrow(text, *args)
        return dict(r) if r is not None else None

    async def execute(self, sql: str, params: Params = None) -> int:
        text, args = _args(sql, params)
        return _rowcount(await self._conn.execute(text, *args))

    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        text, names = rebind(sql)
        records = [[r[name] for name in names] for r in rows]
        if records:
            await self._conn.executemany(text, records)

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        for sql, params in statements:
            text, args = _args(sql, params)
            await self._conn.execute(text, *args)

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        text, args = _args(sql, params)
        return [tuple(r) for r in await self._conn.fetch(text, *args)]

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def advisory_lock(self, name: str) -> None:
        """Hold a lock named ``name`` until this transaction ends (waits for it)."""
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(name))


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode()) | 0x6769_0000_0000


def month_start(year: int, month: int) -> int:
    """The first instant of a local (UTC+7) month, in ms since the epoch."""
    return int(dt.datetime(year, month, 1, tzinfo=LOCAL_TZ).timestamp() * 1000)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, spool: Spool | None = None) -> None:
        self.pool = pool
        self.spool = spool
        self.degraded = False  # batches go to the spool until it is replayed
        self.last_error = ""
        self._replayer: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    async def open(cls, url: str, spool_dir: str = "") -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=POOL_MAX, init=_init_connection,
            timeout=CONNECT_TIMEOUT, command_timeout=60,
            server_settings={"application_name": f"giamsat {os.getpid()}"},
        )
        return cls(pool, Spool(spool_dir) if spool_dir else None)

    # -- queries ------------------------------------------------------------------------

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        async with self.pool.acquire() as conn:
            return await _Queries(conn).fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        async with self.pool.acquire() as conn:
            return await _Queries(conn).fetch_one(sql, params)

    async def execute(self, sql: str, params: Params = None) -> int:
        async with self.pool.acquire() as conn:
            return await _Queries(conn).execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _Queries(conn).execute_many(sql, rows)

    async def execute_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _Queries(conn).execute_all(statements)

    async def fetch_rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        async with self.pool.acquire() as conn:
            return await _Queries(conn).fetch_rows(sql, params)

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _Queries(conn).insert_rows(table, columns, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Queries]:
        """One transaction on one pooled connection."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield _Queries(conn)

    @asynccontextmanager
    async def streams(self) -> AsyncIterator[None]:
        """None: a rollup batch is one connection's work here (see the contract)."""
        yield None

    # -- rollup support ----------------------------------------------------------------

    async def horizon(self, table: str = "hits") -> int:
        """The highest id of ``table`` such that no row with a lower id can still appear.

        Waits for inserts in flight (they hold the table's insert barrier, a shared lock
        taken by a trigger), holds the barrier exclusively for one statement, and reads the
        id sequence. Ids of rolled-back inserts are holes that stay empty.
        """
        if not _NAME.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", BARRIER_CLASS, table
            )
            seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
            value = await conn.fetchval(
                f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}"
            )
            return int(value)

    async def hits_horizon(self) -> int:
        return await self.horizon("hits")

    # -- group commit --------------------------------------------------------------------

    async def _write(
        self, batch_id: str, hits: Sequence[Sequence[Any]], dropped: Sequence[Sequence[Any]]
    ) -> bool:
        """One batch in one transaction; False if this batch id was written before.

        Small batches (the common case: light load, or many collectors) are one statement
        in one round trip: the batch claim, the hits from arrays by ``unnest`` and the drop
        counts as data-modifying CTEs, committed as one implicit transaction. Big batches
        use ``COPY`` inside an explicit transaction (fewer bytes, faster per row).
        """
        now = int(time.time() * 1000)
        if len(hits) <= COPY_MIN:
            columns = [list(c) for c in zip(*hits, strict=True)] if hits else [
                [] for _ in HIT_COLUMNS]
            d_columns = [list(c) for c in zip(*dropped, strict=True)] if dropped else [
                [] for _ in range(5)]
            async with self.pool.acquire() as conn:
                claimed = await conn.fetchval(
                    _WRITE_SMALL, batch_id, now, *columns, *d_columns)
            return bool(claimed)
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(_CLAIM_BATCH, batch_id, now)
            if _rowcount(status) == 0:
                return False
            await conn.copy_records_to_table(
                "hits", records=[tuple(h) for h in hits], columns=HIT_COLUMNS
            )
            if dropped:
                await conn.executemany(_ADD_DROPPED, [tuple(d) for d in dropped])
        return True

    async def write_batch(
        self, hits: Sequence[Sequence[Any]], dropped: Sequence[tuple[int, str, str, str, int]]
    ) -> None:
        batch_id = uuid.uuid4().hex
        if self.spool is None:
            await self._write(batch_id, hits, dropped)
            return
        if not self.degraded:
            try:
                await self._write(batch_id, hits, dropped)
                return
            except Exception as e:
                if not is_outage(e):
                    raise  # a bad batch: refused (503), not spooled
                self.degraded = True
                self.last_error = f"{type(e).__name__}: {e}"
                log.error("PostgreSQL unreachable (%s): spooling hits to %s",
                          self.last_error, self.spool.dir)
        await self.spool.append(batch_id, hits, dropped)
        self._start_replayer()

    def _start_replayer(self) -> None:
        if (self._replayer is None or self._replayer.done()) and not self._closing:
            self._replayer = asyncio.create_task(self._replay_loop(), name="giamsat-spool")

    async def _apply_spooled(
        self, batch_id: str, hits: list[list[Any]], dropped: list[list[Any]]
    ) -> None:
        try:
            await self._write(batch_id, hits, dropped)
        except Exception as e:
            if is_outage(e):
                raise
            assert self.spool is not None
            self.spool.reject(batch_id, hits, dropped, f"{type(e).__name__}: {e}")

    async def replay_spool(self) -> int:
        """Apply every replayable spool file now; raises if the server is still away."""
        assert self.spool is not None
        return await self.spool.replay(self._apply_spooled)

    async def _replay_loop(self) -> None:
        assert self.spool is not None
        delay = 0.2
        while not self._closing:
            try:
                n = await self.replay_spool()
            except Exception as e:
                if not is_outage(e):
                    log.exception("spool replay failed; retrying")
                    await asyncio.sleep(5.0)
                    continue
                self.last_error = f"{type(e).__name__}: {e}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if n:
                log.warning("replayed %d spooled batch(es) into PostgreSQL", n)
            if not self.spool.active:  # nothing appended since the seal: caught up
                self.degraded = False
                self.last_error = ""
                return

    def health(self) -> dict[str, Any]:
        info: dict[str, Any] = {"degraded": self.degraded}
        if self.spool is not None:
            info["spool"] = {
                "dir": str(self.spool.dir), "appended": self.spool.appended,
                "replayed": self.spool.replayed, "pending_bytes": self.spool.pending_bytes(),
            }
        if self.last_error:
            info["error"] = self.last_error
        return info

    # -- schema ----------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
                for path in migration_files(self.dialect):
                    if path.stem in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(path.read_text(encoding="utf-8"))
                        await conn.execute(
                            "INSERT INTO schema_migrations (name) VALUES ($1)", path.stem
                        )
                    applied.append(path.stem)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)
        await self.ensure_partitions()
        if self.spool is not None and self.spool.files():
            self._start_replayer()  # batches spooled by an earlier run
        return applied

    async def ensure_partitions(self, now_ms: int | None = None, ahead: int = 2) -> list[str]:
        """Create ``hits_YYYYMM`` and ``dossiers_YYYYMM`` for the current local month and
        ``ahead`` more; returns the partitions created."""
        now = dt.datetime.fromtimestamp((now_ms or time.time() * 1000) / 1000, LOCAL_TZ)
        created = []
        for table in await self._partitioned():
            year, month = now.year, now.month
            for _ in range(ahead + 1):
                if await self._create_partition(table, year, month):
                    created.append(f"{table}_{year:04d}{month:02d}")
                year, month = _next_month(year, month)
        return created

    async def _partitioned(self) -> list[str]:
        """The tables of ``PARTITIONED`` that are partitioned in this database (a database
        migrated only part of the way may not have them all)."""
        rows = await self.fetch_all(
            "SELECT relname FROM pg_class WHERE relkind = 'p' AND relname = ANY(:names) "
            "AND relnamespace = current_schema()::regnamespace", {"names": list(PARTITIONED)})
        found = {r["relname"] for r in rows}
        return [t for t in PARTITIONED if t in found]

    async def _create_partition(self, table: str, year: int, month: int) -> bool:
        name = f"{table}_{year:04d}{month:02d}"
        lo, hi = month_start(year, month), month_start(*_next_month(year, month))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                return False
            # rows of this month that went to DEFAULT must move, or the attach is refused
            await conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
            moved = await conn.execute(
                f"WITH m AS (DELETE FROM {table}_default WHERE ts >= $1 AND ts < $2 "
                f"RETURNING *) INSERT INTO {name} SELECT * FROM m", lo, hi,
            )
            await conn.execute(
                f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
            )
            if _rowcount(moved) > 0:
                log.warning("moved %s row(s) from %s_default into %s", moved, table, name)
        return True

    async def partitions(self, table: str = "hits") -> list[tuple[str, int, int]]:
        """Month partitions of ``table`` as (name, from ms, to ms), oldest first."""
        if table not in PARTITIONED:
            raise ValueError(f"not a partitioned table: {table!r}")
        rows = await self.fetch_all(
            "SELECT c.relname AS name FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :t AND c.relname <> :t || '_default' "
            "AND p.relnamespace = current_schema()::regnamespace ORDER BY c.relname",
            {"t": table})
        out = []
        n = len(table) + 1
        for r in rows:
            year, month = int(r["name"][n:n + 4]), int(r["name"][n + 4:n + 6])
            out.append((r["name"], month_start(year, month),
                        month_start(*_next_month(year, month))))
        return out

    async def drop_partitions_before(
        self, cutoff_ms: int, max_id: int | None = None, table: str = "hits",
        lock_timeout: float = DROP_LOCK_TIMEOUT,
    ) -> list[tuple[str, int]]:
        """Retention: drop month partitions of ``table`` wholly older than ``cutoff_ms``;
        returns (partition, rows) dropped.

        With ``max_id`` (the rollup watermark) a partition is kept while it still holds
        rows that were not rolled up. Detaching needs an ACCESS EXCLUSIVE lock on
        ``table``, which (queued) stops ingest until granted: it waits at most
        ``lock_timeout`` seconds for readers to finish, else the partition is kept for the
        next run. Under the lock it only re-checks the partition's highest id (an index
        probe) and detaches: the rows are counted before, while ingest goes on (ids at or
        below the watermark are all committed, so the count cannot change meanwhile).
        """
        dropped = []
        for name, _lo, hi in await self.partitions(table):
            if hi > cutoff_ms:
                continue
            async with self.pool.acquire() as conn:
                top = await conn.fetchval(f"SELECT max(id) FROM {name}")
                if max_id is not None and top is not None and top > max_id:
                    continue  # not rolled up yet
                rows = await conn.fetchval(f"SELECT count(*) FROM {name}")
                try:
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
                        await conn.execute(
                            f"SET LOCAL lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'")
                        await conn.execute(f"LOCK TABLE ONLY {table} IN ACCESS EXCLUSIVE MODE")
                        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                            continue  # another collector dropped it meanwhile
                        top = await conn.fetchval(f"SELECT max(id) FROM {name}")
                        if max_id is not None and top is not None and top > max_id:
                            continue  # a late row arrived meanwhile
                        await conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
                        await conn.execute(f"DROP TABLE {name}")
                except asyncpg.LockNotAvailableError:
                    log.warning("retention: %s busy for %.1f s, kept until the next run",
                                name, lock_timeout)
                    continue
            dropped.append((name, rows))
        return dropped

    async def delete_default_before(
        self, table: str, cutoff_ms: int, max_id: int, batch: int = 10_000
    ) -> int:
        """Retention inside ``{table}_default`` (rows outside every month partition, e.g.
        from a collector whose clock was far off): delete rows with ``ts < cutoff_ms`` and
        ``id <= max_id``. Walks the partition once by id (its primary key) in batches of
        ``batch`` rows, each its own short transaction; never touches month partitions."""
        if table not in PARTITIONED:
            raise ValueError(f"not a partitioned table: {table!r}")
        part = f"{table}_default"
        sql = (f"WITH c AS (SELECT id, ts FROM {part} WHERE id > $1 AND id <= $2 "
               f"ORDER BY id LIMIT $3), "
               f"d AS (DELETE FROM {part} t USING c WHERE t.id = c.id AND t.ts = c.ts "
               f"AND c.ts < $4 RETURNING 1) "
               f"SELECT (SELECT max(id) FROM c) AS last, (SELECT count(*) FROM d) AS n")
        after, total = 0, 0
        while True:
            async with self.pool.acquire() as conn:
                last, n = await conn.fetchrow(sql, after, max_id, batch, cutoff_ms)
            total += n
            if last is None:
                return total
            after = last

    async def prune_batches(self, now_ms: int | None = None) -> int:
        cutoff = (now_ms or int(time.time() * 1000)) - SPOOL_BATCH_DAYS * 86_400_000
        return await self.execute("DELETE FROM spool_batches WHERE at < :c", {"c": cutoff})

    async def maintain(self) -> None:
        """Hourly: partitions of hits and dossiers ahead, old batch ids pruned."""
        await self.ensure_partitions()
        await self.prune_batches()

    async def close(self) -> None:
        self._closing = True
        if self._replayer is not None and not self._replayer.done():
            self._replayer.cancel()
            try:
                await self._replayer
            except asyncio.CancelledError:
                pass
        if self.spool is not None:
            self.spool.close()
        try:
            await asyncio.wait_for(self.pool.close(), timeout=10)
        except TimeoutError:  # the server is away: do not wait for a polite goodbye
            self.pool.terminate()
