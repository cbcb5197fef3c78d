"""A small in-process cache of heavy report views, keyed by the rollup watermarks.

Rollup tables change only when a rollup run moves a watermark, so a view computed at
watermarks ``(hits, dossiers)`` stays right until they move: the cache key includes them
(one read of a 2-row table per request). A TTL (default 60 s) bounds what the watermarks
cannot see: ``dropped`` counters written by ingest, rebuilds, registry edits.

Stale-while-revalidate: once the watermarks moved (or the TTL passed), a view computed less
than ``max_stale`` seconds ago (default 300) is still served at once while one background
task recomputes it; so on a busy system, where a rollup moves the watermarks every minute,
no visitor waits for the national aggregates — figures lag by one computation at most. An
older or missing entry is computed in the request.

Only views that do not depend on who asks are cached (the access check runs before). One
cache per app (``app.state.reports_cache``), per process, a few hundred entries at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from collector.store import Database

T = TypeVar("T")
log = logging.getLogger("giamsat.reports")


class ViewCache:
    def __init__(self, max_entries: int = 256, ttl: float = 60.0,
                 max_stale: float = 300.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_stale = max_stale
        # key -> (watermarks, computed at (monotonic), value)
        self.entries: OrderedDict[Hashable, tuple[Any, float, Any]] = OrderedDict()
        self.refreshing: set[Hashable] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.hits = self.misses = self.stale = 0

    def clear(self) -> None:
        self.entries.clear()

    async def _mark(self, db: Database) -> tuple[tuple[str, int], ...]:
        rows = await db.fetch_all("SELECT name, last_id FROM rollup_watermarks ORDER BY name")
        return tuple((r["name"], int(r["last_id"])) for r in rows)

    def _store(self, key: Hashable, mark: Any, at: float, value: Any) -> None:
        self.entries[key] = (mark, at, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    async def _refresh(self, db: Database, key: Hashable,
                       compute: Callable[[], Awaitable[Any]]) -> None:
        try:
            mark, at = await self._mark(db), time.monotonic()
            self._store(key, mark, at, await compute())
        except Exception:
            log.exception("refreshing report view %r failed", key)
        finally:
            self.refreshing.discard(key)

    async def get(self, db: Database, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        mark = await self._mark(db)
        now = time.monotonic()
        found = self.entries.get(key)
        if found is not None:
            fmark, at, value = found
            if fmark == mark and now - at < self.ttl:
                self.entries.move_to_end(key)
                self.hits += 1
                return value  # type: ignore[no-any-return]
            if now - at < self.max_stale:
                self.stale += 1
                if key not in self.refreshing:
                    self.refreshing.add(key)
                    task = asyncio.create_task(self._refresh(db, key, compute))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                return value  # type: ignore[no-any-return]
        self.misses += 1
        value = await compute()
        self._store(key, mark, now, value)
        return value
