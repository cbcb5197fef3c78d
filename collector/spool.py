"""A local append-only spool for group-commit batches while the database is unreachable.

One record per batch: an 8-byte header (payload length, CRC-32, both big-endian) then the
JSON payload ``{"id": batch uuid, "hits": [...], "dropped": [...]}`` and a newline. Each
append is fsynced before it returns, so a hit acknowledged from the spool survives a
crash. A torn or corrupt tail (a crash mid-append, never acknowledged) is ignored.

Files live in ``GIAMSAT_SPOOL_DIR``, one active file per process
(``spool-<pid>-<uuid>.log``) held under an exclusive ``flock`` while it is written. To
replay, the process seals its active file (closes it; new batches go to a new file), then
takes every ``*.log`` in the directory whose lock it can get — its own sealed files and
files left by processes that died — applies their records in order, and deletes each file
once every record in it was applied. The apply function must be idempotent per batch id
(the PostgreSQL store records batch ids in ``spool_batches`` in the same transaction as
the rows), so a file replayed twice, or by two processes, adds nothing twice. A record the
database refuses for its content (not an outage) goes to ``rejected.log`` so it cannot
block the records behind it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import struct
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("giamsat.spool")

_HEADER = struct.Struct(">II")
Hits = Sequence[Sequence[Any]]
Dropped = Sequence[Sequence[Any]]
Apply = Callable[[str, list[list[Any]], list[list[Any]]], Awaitable[None]]


def encode(batch_id: str, hits: Hits, dropped: Dropped) -> bytes:
    payload = json.dumps(
        {"id": batch_id, "hits": [list(h) for h in hits], "dropped": [list(d) for d in dropped]},
        ensure_ascii=False, separators=(",", ":"), allow_nan=False,
    ).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload + b"\n"


def records(data: bytes) -> Iterator[dict[str, Any]]:
    """The complete, intact records of a spool file; stops at a torn or corrupt tail."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start:start + length]
        if len(payload) < length or data[start + length:start + length + 1] != b"\n":
            return
        if zlib.crc32(payload) != crc:
            log.error("spool record at byte %d is corrupt; ignoring the rest of the file", pos)
            return
        yield json.loads(payload)
        pos = start + length + 1


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self._fd: int | None = None
        self._path: Path | None = None
        self._lock = asyncio.Lock()
        self.appended = 0  # batches written to the spool by this process
        self.replayed = 0  # batches applied from the spool by this process

    # -- appending --------------------------------------------------------------------

    def _open(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        # names sort in creation order (file mtimes can tie)
        path = self.dir / f"spool-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the new file's directory entry is durable too
        finally:
            os.close(dfd)
        self._fd, self._path = fd, path
        return fd

    def _write(self, record: bytes) -> None:
        fd = self._fd if self._fd is not None else self._open()
        view = memoryview(record)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fdatasync(fd)

    async def append(self, batch_id: str, hits: Hits, dropped: Dropped) -> None:
        """Write one batch and fsync it; when this returns the batch may be acknowledged."""
        record = encode(batch_id, hits, dropped)
        async with self._lock:
            await asyncio.to_thread(self._write, record)
            self.appended += 1

    @property
    def active(self) -> bool:
        """Whether this process holds an active spool file (batches not replayed yet)."""
        return self._fd is not None

    def _seal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock: the file is now replayable
            self._fd = self._path = None

    # -- replaying --------------------------------------------------------------------

    def files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("spool-*.log"))

    async def replay(self, apply: Apply) -> int:
        """Seal the active file and apply every replayable file; return batches applied.

        Raises what ``apply`` raises (e.g. the database is down again); files not fully
        applied stay for the next attempt.
        """
        async with self._lock:
            self._seal()
        applied = 0
        for path in self.files():
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another live process is writing or replaying it
                if not path.exists():
                    continue  # replayed and deleted by another process meanwhile
                data = await asyncio.to_thread(_read_all, fd)
                for rec in records(data):
                    await apply(rec["id"], rec["hits"], rec["dropped"])
                    applied += 1
                    self.replayed += 1
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return applied

    def reject(self, batch_id: str, hits: Hits, dropped: Dropped, reason: str) -> None:
        """Keep a batch the database refuses (not an outage: bad data) out of the replay,
        in ``rejected.log`` beside the spool, for a person to look at."""
        log.error("spooled batch %s refused by the database, kept in rejected.log: %s",
                  batch_id, reason)
        fd = os.open(self.dir / "rejected.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, encode(batch_id, hits, dropped))
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending_bytes(self) -> int:
        total = 0
        for p in self.files():
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def close(self) -> None:
        self._seal()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
