"""Group commit: many hits, one transaction, then every waiting request is answered.

Policy: *commit when the writer is free*. While a transaction is being written, new hits
queue; as soon as it commits, the writer takes everything queued (up to ``batch_max``
rows) into the next transaction. Under light load a hit is committed alone at once;
under heavy load batches grow by themselves. No timer adds latency.

Acknowledged means committed: :meth:`Writer.submit` returns only after the transaction
holding the rows has committed, and raises :class:`Unavailable` if it could not be
written, so the request is answered 503 and the sender may retry.

Drop counts (refused hits per site, day and reason) ride along with the next batch, or
are flushed within a second when no hits come.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from collector.store import Database

log = logging.getLogger("giamsat.writer")


class Unavailable(Exception):
    """The hits could not be committed (storage error or shutting down)."""


class Writer:
    def __init__(self, db: Database, batch_max: int = 2000) -> None:
        self.db = db
        self.batch_max = batch_max
        self._queue: deque[tuple[Sequence[Sequence[Any]], asyncio.Future[None]]] = deque()
        self._dropped: Counter[tuple[int, str, str, str]] = Counter()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="giamsat-writer")

    async def submit(self, rows: Sequence[Sequence[Any]]) -> None:
        """Queue rows and wait until they are committed."""
        if self._closing:
            raise Unavailable("shutting down")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, fut))
        self._wake.set()
        await fut

    def drop(self, site_id: int, day: str, reason: str, host: str = "") -> None:
        self._dropped[(site_id, day, reason, host)] += 1

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _take(self) -> tuple[list[Sequence[Any]], list[asyncio.Future[None]]]:
        rows: list[Sequence[Any]] = []
        futures: list[asyncio.Future[None]] = []
        while self._queue and len(rows) < self.batch_max:
            batch, fut = self._queue.popleft()
            rows.extend(batch)
            futures.append(fut)
        return rows, futures

    async def _run(self) -> None:
        while True:
            if not self._queue and not self._closing:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                self._wake.clear()
            rows, futures = self._take()
            dropped = [(*k, n) for k, n in self._dropped.items()]
            self._dropped.clear()
            if not rows and not dropped:
                if self._closing:
                    return
                continue
            try:
                await self.db.write_batch(rows, dropped)
            except Exception as e:  # storage failure: nothing was acknowledged
                self.failures += 1
                log.error("group commit failed (%d hits refused): %s", len(rows), e)
                for *key, n in dropped:
                    self._dropped[tuple(key)] += n  # type: ignore[index]
                for f in futures:
                    if not f.done():
                        f.set_exception(Unavailable(str(e)))
                if self._closing:  # give up: refuse whatever is still queued, never hang
                    while self._queue:
                        _, f = self._queue.popleft()
                        if not f.done():
                            f.set_exception(Unavailable(str(e)))
                    return
                if not futures:
                    await asyncio.sleep(1.0)
                continue
            self.batches += 1
            self.rows += len(rows)
            for f in futures:
                if not f.done():
                    f.set_result(None)

    async def close(self) -> None:
        """Stop accepting, commit everything queued, then return."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
