"""A small in-process cache of heavy report views, exact with respect to the rollups.

Rollup tables change only when a rollup run moves a watermark, so a view computed at
watermarks ``(hits, dossiers)`` stays right until they move: the cache key includes them
(one indexed read of a 2-row table per request). A TTL (default 60 s) bounds what the
watermarks cannot see: ``dropped`` counters written by ingest, ``giamsat rollup --since``
rebuilds, registry edits. Only views that do not depend on who asks are cached (the
access check runs before). One per app (``app.state.reports_cache``), per process,
a few hundred entries at most.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from collector.store import Database

T = TypeVar("T")


class ViewCache:
    def __init__(self, max_entries: int = 256, ttl: float = 60.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.entries: OrderedDict[Hashable, tuple[Any, float, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def clear(self) -> None:
        self.entries.clear()

    async def get(self, db: Database, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        rows = await db.fetch_all("SELECT name, last_id FROM rollup_watermarks ORDER BY name")
        mark = tuple((r["name"], int(r["last_id"])) for r in rows)
        now = time.monotonic()
        found = self.entries.get(key)
        if found is not None and found[0] == mark and found[1] > now:
            self.entries.move_to_end(key)
            self.hits += 1
            return found[2]  # type: ignore[no-any-return]
        self.misses += 1
        value = await compute()
        self.entries[key] = (mark, now + self.ttl, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return value

