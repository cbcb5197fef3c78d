"""Incremental rollups: raw hits and dossier events → daily tables per site.

Each run takes the rows above a watermark (``rollup_watermarks``: the last ``hits.id`` /
``dossiers.id`` counted) in batches of ``batch`` rows (an id range each); each batch has one
writing transaction that updates the rollup tables *and* moves the watermark (a stream's
batch: its part's, see "Two parts" below), so a crash loses
nothing and counts nothing twice, and a second run with no new rows does nothing.

Tables written: ``visits`` (session state), ``rollup_site_day``, ``rollup_dimensions``
and ``rollup_dimensions_month`` (the same per calendar month, for long ranges),
``rollup_dvc``, ``rollup_dossiers``. Work tables are TEMP tables of the rollup's
connection (``collector/rollup_sql.py``, which holds all the SQL); the old work tables of
0002 (``rollup_pending``, ``rollup_visit_delta``, ``rollup_dim_delta``) are dropped by 0010.

Sessions. A visit is a run of hits of one visitor on one site with no gap over 30 minutes
(a gap of exactly 30:00 continues the visit). Visitor ids are hashed with a salt that
rotates at local midnight, so a visit never crosses midnight: at 00:00 the same browser
becomes a new visitor and a new visit. Duration = last hit − first hit, heartbeats
(``ping``) included; pings extend a visit but a run of pings alone is not a visit.
Bounce = a visit with exactly one page view. Entry/exit page = path of the visit's first /
last hit; source, referrer, campaign, browser, OS, device, province and hour are those of
its first hit.

A batch, step by step:

1. Its hits are summed per visitor-day (``rollup_vd``: counts, first/last ts, and the
   first/last hit by (ts, id) as MIN/MAX of one integer, ``rollup_sql.ORDER_KEY``).
   SQLite first copies the part's hits into a narrow TEMP table (``rollup_h``) with one
   filtered range scan; the visitor-day, page-view and DVC sums scan that copy (three
   filtered scans of ``hits`` cost more: the filter on the site alone is ~90 ns a row).
2. A visitor-day is *old* if hits outside the batch belong to it (already counted: a late
   hit, or a visit going on across batches); only visitor-days of site-days rolled up
   before need that index probe.
3. Fast path — a new visitor-day whose hits span at most 30 minutes of one local day is
   exactly one visit: its row comes straight from the sums plus two look-ups by id (entry
   and exit hit). No window functions, nothing to subtract. Most visitor-days take it.
4. Exact path — every other visitor-day (old, or several visits) is cut in Python
   (:func:`cut_sessions`) from all its raw hits (SQLite reads them through
   ``hits_visitor_day``, one index range per slow visitor-day; PostgreSQL by a semi-join
   over the batch plus those look-ups for old ones); the visits it had are subtracted (sign
   -1) and deleted, the new ones added (sign +1). A hit arriving after its day was rolled
   up therefore changes exactly what it should (e.g. merges two visits), and one run or
   many small runs give identical tables (tests/test_rollup_property.py).
5. Dimension deltas are summed from the batch's signed visits (and page views from its
   hits; on SQLite first into ``rollup_pv``, one counter per path) into ``rollup_dd``:
   correlated dimensions once per combination (source, referrer, campaign; browser, OS,
   device), SQLite by one upsert per row into keyed TEMP tables
   (it has no hash aggregation; its GROUP BY sorts, which costs more), PostgreSQL by
   GROUP BY. They are then added to the daily and monthly tables; values that replaced
   visits no longer reach are deleted when all zero. Site, DVC and dossier counters that do
   not depend on sessions are added per batch.

Two parts (SQLite, a backlog of ``SPLIT_MIN`` hits or more). No rollup row sums hits of
two sites, so the hits split by site into two parts (sites 0-7 modulo 16 and the rest:
``PARTS``, ``MINE``), each with its own watermark (``rollup_parts``, migration 0011: every
hit of the part's sites up to it is counted; ``rollup_watermarks`` 'hits' is the smaller
of the two, what every reader uses). A big backlog is rolled up as two streams at once,
one per part, on a pooled connection and on one in a child process (``db.streams()``;
``collector/store/sqlite_ops.py`` starts in ~20 ms). Each stream runs its own batches:
steps 1-4 in a read transaction (no lock: the other stream, and ingest, write meanwhile),
then step 5 in a writing transaction that moves the part's watermark only if the part is
as it was read (``rollup_parts.generation`` grows with every transaction that changes a
part: the other collector's rollup, a rebuild); otherwise the batch is computed again.
The write lock is held for step 5 only (~0.1 s per 150k-row batch here, instead of the
whole batch's ~0.8 s), so the two streams' steps 1-4 overlap each other's writes. A
process, not a thread: two threads running SQLite in one process ran slower together than
one after the other here (SQLite's global memory and page-cache mutexes; two connections
to two files, pure SQL: 0.25 s alone, 0.58 s for two at once). Smaller backlogs, and the
batches of a run whose streams are busy elsewhere, are one connection's: one transaction
per batch, counting each part from its own watermark (one pass over every site when they
are equal, as they are after every run), as PostgreSQL always does. Tests:
tests/test_rollup_property.py (streams against one connection on random arrivals),
tests/test_rollup.py (a part left behind by a crash; two collectors streaming one backlog
while one rebuilds). Measured before (2026-12-02), the split inside one transaction (the
child passing its part through a scratch file for the batch's connection to apply, while
the write lock was held): 167-174k against 185-193k events/s for the streams, interleaved
on a copy of the bench's database.

The visitor-day look-ups use the index ``hits_visitor_day`` — the price of exact late
events is one more index on ``hits``.

Referrer sources: ``campaign`` (any utm_*/mtm_* parameter), ``direct`` (no referrer, or
the site's own host), ``gov`` (``*.gov.vn``: other government portals), ``search``,
``social`` (known hosts below), ``other``.

Dossiers: counted on the day the collector received the event. Receipt figures
(online / in person, full-process online = Level 4 received online, payment form) come
from Status 1 events; results returned from Status 3 events.

PostgreSQL with several collectors: ids are handed out before commit, so concurrent
collectors commit them out of order. A run only reads ids up to ``db.horizon(table)``:
the store waits for inserts in flight (an insert barrier lock, see
``collector/store/postgres.py``) and returns the id below which nothing can still
appear — exact, no time lag. Several rollup runners serialise on the watermark row
(``_lock_watermark``); each has its own TEMP work tables. SQLite has one writer, ids
commit in order: horizon = max(id).

All SQL is plain (SQLite ≥ 3.40, PostgreSQL 15): upserts, no date functions — days are
computed at ingest. Where the two engines differ in what is cheap, the statement differs
(``rollup_sql.dimension_sql``, ``apply_sql``), never what it computes.

Speed — bench/rollup.py, 2026-12-02 evening (load 1-1.3), with two streams and the half
first batch: full rollup 193-204k events/s for 1M events over 30 days (the default: 4.9-5.2
s; CPU 4.7-5.0 s here + 4.2-4.4 s in the child; the split inside one transaction: 157k),
202-206k for 300k over 10 days (1.46-1.48 s); on a copy of the bench's 300k database,
interleaved: 185-193k for equal first batches against 167-174k for that split. The two
cores are busy ~93 % of a 1M run; what is left idle: the child's start (~35 ms), a
lock wait now and then (~0.15 s in all) and the last batch's apply and commit, done by
one stream after the other has finished. Of the CPU, each stream commit's WAL
auto-checkpoint takes ~50 ms (~0.75 s of the 9.2 s for 1M events). Figures below this
paragraph are of one connection.

Speed — bench/rollup.py, 300k events over 200 sites × 10 days (150 events per site-day:
~87k visits, ~180k daily and ~34k monthly dimension rows — the worst case for rows per
event). The machine (2 cores) is shared with other sessions and its load swings from 1 to
5 within minutes, so only CPU time of interleaved before/after pairs decides, and even
that varies ±20 % run to run; instruction counts (valgrind) are the steady measure.
2026-12-02, SQLite, before → after 150k-row batches: full rollup CPU median 3.52 → 3.39 s
over 9 interleaved bench pairs (faster in 6, by 0.24 s on average; pairs from −0.71 to
+0.45 s), in a rollup-only harness (a copy of the bench's database) 3.81 → 3.41 s (3
pairs), 22.4 → 21.3 G instructions; 69-103k → 72-110k events/s wall. Incremental 1 %: 0.11-0.14 s,
per-event cost ratio 3.1-3.9 (unchanged once the big batch's work tables are emptied at
its end, see _hits_batch); no-op 3-5 ms; 365-day site dashboard median 21-26 ms (reads
unchanged). PostgreSQL (2026-12-01, older machine): 37.7k events/s, 500k-row batches.

Where SQLite's CPU goes in a full run (thread CPU per statement, 150k-row batches, machine
loaded, so ~1.2× quiet): visitor-day sums 0.54 s, visit rows (fast + slow, with their
entry/exit look-ups) 0.35, the slow visitor-days' hits 0.28, page views 0.25, the four
per-visit dimensions (entry, exit, province, hour) 0.45, rollup_g3/g4 0.2 and their six
dimensions 0.15, monthly rows 0.18, daily rows 0.16, visits 0.13, COMMIT (WAL) 0.12, DVC
0.09. Every one of them is one SQLite row operation per hit, visit or output row, at
~1-1.5 µs (12-17k instructions: an upsert into a WITHOUT ROWID table deletes and
re-inserts the row), ~1.9 M of them per 300k events. 200k/s (1.5 s) would need half of
them gone; this design has no such half:

* Output alone: 190k daily + 34k monthly dimension rows and 87k visits per 300k events;
  per batch every (site, dimension) of ``rollup_dimensions`` gets the batch's new days
  (~2,200 insertion points), every month row is rewritten and both tables' pages go to the
  WAL at commit: the reason for 150k-row SQLite batches (5 % fewer instructions than 50k;
  300k: 21.15 G, no further gain worth a longer lock). A batch holds the write lock ~1 s.
* Per hit: the visitor-day sums are an upsert per hit (GROUP BY sorts, and only an index
  with ``kind`` could make it index-only), page views another.
* All in Python (one narrow SELECT, dicts, executemany upserts): fetching rows costs
  1.5 µs (6 columns) to 6 µs (19 columns) a row here, more than SQLite's upserts.
* Dropping ``visits`` (recomputing an old visitor-day's previous visits from its hits up
  to the watermark) would save its insert (~4 %). Not done: ``rebuild`` runs while the
  in-server rollup keeps counting, and ``visits`` is what records which hits of a
  visitor-day are counted then (the rebuild's cursor, not the watermark); without it,
  rebuild would have to replace whole site-days per transaction.
* Incremental runs: a 1 % run writes about one B-tree page per new dimension value
  (day is third in the tables' keys, so a new day's rows of each site and dimension go
  to their own leaf, and every month row of a touched value is a page): with 200 sites
  that is ~3× the per-event cost of a full run, with 10 sites 1.2×.

Measured and dropped (2026-12-02; ms per 50k-row batch in a statement harness, unless
said): the visitor-day table keyed by the visitor id alone (rowid; a hash collision
marks the row and the batch sums again by GROUP BY): that upsert 54 → 42 ms, but the
per-site-day steps then read the visitor-days out of (site, day) order (+12 ms), and with
``site << 44 | visitor`` as the key the net is −5 of 365 ms; ``min()``/``max()`` as CASE in
that upsert (54 → 51-53, noise); ``PRAGMA mmap_size = 1 GiB`` on the rollup connection
(CPU 3.29 → 2.87 s, medians of 4 bench pairs, but the pooled connection keeping the map
pays for remapping the grown file in its later small queries: no-op rollup 3-6 → 14-40
ms; with the map dropped at each batch's end the gain is within the noise);
``temp.page_size`` 16k/64k (no difference, 3 pairs each); the monthly rows recomputed once
per run from the daily rows of the run's new site-months (a GROUP BY over
``rollup_dimensions``: 270 ms for 155k daily rows, more than the per-batch upserts it
would replace, ~190 ms per 300k events); DVC and site events in one keyed TEMP upsert of
packed counters, so the visitor-day sums lose ``c2`` (that upsert −12 %, DVC 20 → 19.4 ms:
~7 ms a batch, not worth a fourth table); hour summed in an integer-keyed table of its own
(11.8 → 6.6 ms, plus ~2 ms to copy it into ``rollup_dd``); one pooled connection instead of
three (the rollup's batches rotate over them, each with a cold page cache: no difference).
The pooled connections set ``temp_store = MEMORY`` when they open (collector/store/
sqlite.py): set here, after BEGIN IMMEDIATE, the first batch of a connection used to
write its statement journals to /var/tmp files.
Not done for lack of time: per-dimension TEMP tables for the four per-visit dimensions (an
upsert into an empty ``rollup_dd`` costs 7.2 ms, into one holding the other dimensions'
28k rows 10.2 ms).

Measured and dropped (2026-11, previous rollup): sessions cut in Python from one ordered
read of every hit (SQLite -7 % CPU, PostgreSQL ~25 % slower: one INSERT per visit costs
~57 µs there); everything in Python with dimensions summed in dicts (+15 % CPU: each row
crossing into Python costs ~3 µs here, as a dict); multi-row VALUES inserts (PostgreSQL
hash-joins all hits when joined to them; SQLite looks bound parameter names up linearly,
so 19 named parameters × many rows is quadratic); sessions as LAG/LEAD + a running visit
number + GROUP BY per visit (+5 % CPU on SQLite, +5-9 % wall on PostgreSQL).

Measured and dropped (2026-12): dimension rows summed in Python over tuples
(``fetch_rows``): 87k visits cross in 0.43 s and their 870k dict updates take 0.82 s, no
cheaper than SQLite's upserts; GROUP BY for the visitor-day sums on SQLite (a sort of
every hit: 4.6 G instructions vs 4.45 G for the upsert, and slower in time); one GROUP BY
per dimension over the batch's visits on SQLite (1.50 vs 1.32 s CPU for 60k events);
aggregating in the order of the hits_visitor_day index to skip the sort (the row look-ups
for ``kind`` cost more: 1.3 vs 1.2 s for 300k hits); window functions over a sorted,
clustered TEMP copy of the batch (sort-free, but LAG + LEAD alone cost 1.1 s per 300k
hits); rowid instead of WITHOUT ROWID work tables (+3-4 % CPU); WITHOUT ROWID
``rollup_dimensions`` / ``visits`` through a migration (no difference); page views by
GROUP BY (same); plain INSERTs for new site-days on SQLite (no gain there, kept on
PostgreSQL: 3.2 → 2.8 s for 60k events); the monthly rows summed by GROUP BY on SQLite
(1.43 vs 1.22 s: per-row upserts kept); visitor first in the visitor-day key (-11 %
instructions for that upsert alone, but the per-site-day steps would then sort it);
deriving ``t0``/``t1`` from ``e``/``x`` (-13 % for that upsert, loses the check that a
visitor-day's hits share one local day); PostgreSQL: ANALYZE of the TEMP tables (the
fast-path filter is an expression, the estimate stays 128 rows), the fast path's
entry/exit look-ups from a MATERIALIZED CTE of the batch (the planner nests loops over the
CTE scan: quadratic), ``enable_nestloop = off`` for the entry/exit look-ups (1.36 → 0.89 s
per 300k events, but a planner override: not kept), ``synchronous_commit = off`` and
``temp_buffers = 128MB`` (within noise). Not tried: ``kind`` in ``hits_visitor_day`` (makes
the slow path's reads index-only, −0.4 s per 300k, at a cost on every ingested hit).
Measured and dropped with two parts (2026-12-02): splitting by visitor (the parts then add
to the same dimension rows: the daily and monthly upserts doubled, 0.26 → 0.48 s);
the monthly deltas summed in a keyed work table first, so that the second part does that
in parallel and the batch's connection upserts fewer month rows (176-180k vs 180-186k
events/s, 3 interleaved runs each); ``synchronous = NORMAL`` for the rollup's commits
(no difference: of the 70-80 ms of a 150k-row batch's COMMIT, 30-40 are its WAL writes
and the rest the WAL auto-checkpoint that follows it, not the fsync; measured with
``wal_autocheckpoint = 0``); running that checkpoint on another thread while the next
batch starts (+3 %, within the noise, and the ingest writer would then often run it on
the event loop); ``mmap_size`` for the scratch file that split used (no difference).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector import rollup_sql as sql
from collector.rollup_sql import SEARCH_HOSTS, SEARCH_PREFIXES, SOCIAL_HOSTS
from collector.store import Database, Params, Queries, Row, Session

BATCH_PAUSE_S = 0.005  # SQLite: between batches, the lock is free for group commit
SPLIT_MIN = 20_000  # SQLite: a backlog of at least this many hits runs as two streams,
PARTS, MINE = 16, 8  # by site: part 0 the sites 0-7 modulo 16 (as in migration 0011)
PART_SITES = ((0, MINE), (MINE, PARTS))
BATCH = 150_000  # SQLite: a one-connection batch holds the write lock (~1 s here)
BATCH_POSTGRES = 500_000  # PostgreSQL: ingest never waits; fewer, larger batches upsert
                          # each monthly row once instead of once per batch
SOURCES = ("direct", "search", "social", "gov", "campaign", "other")


def classify_source(ref_host: str, host: str, utm_source: str = "", utm_medium: str = "",
                    utm_campaign: str = "") -> str:
    """The referrer source class of a hit (the Python twin of ``rollup_sql.SOURCE_SQL``)."""
    if utm_source or utm_medium or utm_campaign:
        return "campaign"
    if not ref_host or ref_host == host:
        return "direct"
    if ref_host == "gov.vn" or ref_host.endswith(".gov.vn"):
        return "gov"
    if ref_host in SEARCH_HOSTS or ref_host.startswith(SEARCH_PREFIXES):
        return "search"
    if ref_host in SOCIAL_HOSTS:
        return "social"
    return "other"


ROLLUP_TABLES = ("rollup_site_day", "rollup_dimensions", "rollup_dvc", "rollup_dossiers",
                 "visits")

Progress = Callable[[str, int, int], None]


@dataclass
class RollupReport:
    """What a run did."""

    hits: int = 0
    dossiers: int = 0
    batches: int = 0
    visitor_days: int = 0
    seconds: float = 0.0
    hits_watermark: int = 0
    dossiers_watermark: int = 0

    def __str__(self) -> str:
        rate = self.hits / self.seconds if self.seconds else 0.0
        return (f"{self.hits} hits, {self.dossiers} dossier events, {self.batches} batches, "
                f"{self.visitor_days} visitor-days in {self.seconds:.2f} s ({rate:,.0f} hits/s)")


async def _lock_watermark(q: Queries, name: str, now_ms: int) -> int:
    # the UPDATE takes the row lock first (PostgreSQL), so concurrent runs serialise
    await q.execute("UPDATE rollup_watermarks SET updated_ts = :now WHERE name = :name",
                    {"now": now_ms, "name": name})
    row = await q.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = :name",
                            {"name": name})
    return int(row["last_id"]) if row else 0


async def _set_watermark(q: Queries, name: str, last_id: int) -> None:
    await q.execute("UPDATE rollup_watermarks SET last_id = :id WHERE name = :name",
                    {"id": last_id, "name": name})


async def _prepare(q: Queries, dialect: str) -> list[tuple[str, Params]]:
    """Statements that make the work tables (TEMP, per connection) exist and be empty."""
    names = ", ".join(repr(t) for t in sql.WORK_TABLES)
    if dialect == "sqlite":
        # the rollup's connection: a bigger page cache (temp_store = MEMORY is set when
        # the pool opens it: inside a transaction SQLite may refuse to change it)
        await q.execute_all([("PRAGMA cache_size = -65536", None)])
        found = await q.fetch_one("SELECT COUNT(*) AS n FROM sqlite_temp_master "
                                  f"WHERE type = 'table' AND name IN ({names})")
    else:
        found = await q.fetch_one(
            "SELECT COUNT(*) AS n FROM pg_tables WHERE "
            f"schemaname = pg_my_temp_schema()::regnamespace::text AND tablename IN ({names})")
    steps: list[tuple[str, Params]] = []
    if not found or found["n"] < len(sql.WORK_TABLES):
        steps += [(ddl, None) for ddl in sql.work_ddl(dialect)]
    if dialect == "sqlite":  # PostgreSQL empties them at commit
        steps += [(f"DELETE FROM {table}", None) for table in sql.WORK_TABLES]
    else:  # hash aggregations of a batch stay in memory
        steps.append(("SET LOCAL work_mem = '64MB'", None))
    return steps


def cut_sessions(rows: list[tuple]) -> list[tuple]:
    """Visits from hits ``(site_id, day, visitor, ts, id, code)`` sorted in that order
    (code 2 page view, 1 other counted hit, 0 ping): the visits that count, as
    ``rollup_sql.SV_COLUMNS`` tuples."""
    out: list[tuple] = []
    key: tuple = ()
    start = end = entry = exit_ = hits = pvs = counted = before = 0
    for site, day, visitor, ts, hit_id, code in rows:
        if key == (site, day, visitor) and ts - end <= sql.GAP_MS:
            end, exit_ = ts, hit_id
            hits += 1
            pvs += code == 2
            counted += code > 0
            continue
        if counted:  # close the visit in progress
            out.append((*key, start, end, int(before == 0), hits, pvs, entry, exit_))
        if key != (site, day, visitor):
            key, before = (site, day, visitor), 0
        else:
            before += counted
        start = end = ts
        entry = exit_ = hit_id
        hits, pvs, counted = 1, int(code == 2), int(code > 0)
    if counted:
        out.append((*key, start, end, int(before == 0), hits, pvs, entry, exit_))
    return out


async def _visits(q: Queries, dialect: str, p: dict[str, Any], rebuilding: bool) -> Row:
    """Steps 1-4 of a batch for the hits of one part (``p``: parts, first, last), into this
    connection's work tables only; returns the part's :data:`rollup_sql.SUMMARY`."""
    await q.execute_all([
        *await _prepare(q, dialect),
        *([(sql.PART_HITS_SQLITE, p), (sql.VISITOR_DAYS_SQLITE, None)] if dialect == "sqlite"
          else [(sql.VISITOR_DAYS, p)]),
        (sql.SITE_DAYS, None),
        (sql.MARK_OLD_REBUILD if rebuilding else sql.MARK_OLD, p),
        # ORDER_KEY cannot name entry/exit hits above ID_SPAN: all take the exact slow path
        *([("UPDATE rollup_vd SET old = 1", None)] if p["hi"] >= sql.ID_SPAN else []),
    ])
    summary = await q.fetch_one(sql.SUMMARY)
    assert summary is not None
    steps: list[tuple[str, Params]] = [(sql.FAST_VISITS, p)]
    if summary["slow"]:
        steps.append((sql.SLOW_VISITOR_DAYS, None))
        if summary["old"]:
            steps.append((sql.OLD_VISITS, None))
        await q.execute_all(steps)
        steps = []
        if dialect == "sqlite":
            rows = await q.fetch_rows(sql.SLOW_HITS_SQLITE, p)
        else:
            rows = await q.fetch_rows(sql.SLOW_HITS_NEW, p)
            if summary["old"]:
                rows += await q.fetch_rows(sql.SLOW_HITS_OLD, p)
        rows.sort()  # session order: site, day, visitor, ts, id
        await q.insert_rows("rollup_sv", sql.SV_COLUMNS, cut_sessions(rows))
        steps.append((sql.SLOW_VISITS, None))
    await q.execute_all([*steps, *((statement, p) for statement in sql.dimension_sql(dialect)),
                         (sql.DVC_PART_SQLITE if dialect == "sqlite" else sql.DVC_PART, p)])
    return summary


async def _apply(q: Queries, dialect: str, summary: Row, report: RollupReport) -> None:
    """Step 5 for one part: its visits and dimension deltas into the tables."""
    report.hits += int(summary["hits"])
    report.visitor_days += int(summary["visitor_days"])
    if summary["old"]:  # the visits being replaced (in rollup_bv with sign -1)
        old = await q.fetch_rows(sql.OLD_VISITOR_DAYS)
        await q.execute_many(sql.DELETE_VISITS, [
            {"site_id": site, "day": day, "visitor": visitor} for site, day, visitor in old])
    add_visits = sql.ADD_VISITS if dialect == "sqlite" else sql.ADD_VISITS_POSTGRES
    await q.execute_all([(statement, None) for statement in
                         (add_visits, *sql.apply_sql(dialect), sql.SITE_DAY, sql.DVC)])
    if summary["old"]:  # visits were replaced: values they no longer reach may be all zero
        shrunk = await q.fetch_rows(sql.SHRUNK)
        if shrunk:
            await q.execute_many(sql.DROP_ZERO, [
                {"site_id": s, "dimension": d, "day": day, "value": v}
                for s, d, day, v in shrunk])
            await q.execute_many(sql.DROP_ZERO_MONTH, [
                {"site_id": s, "dimension": d, "month": m, "value": v}
                for s, d, m, v in sorted({(s, d, day[:7], v) for s, d, day, v in shrunk})])


async def _clear(q: Queries, dialect: str) -> None:
    """SQLite: empty the work tables now, so that the next batch on this connection (the
    minutely run's small one) does not pay for clearing these rows (12 ms after a 150k-row
    batch); _prepare empties them too, after a failure."""
    if dialect == "sqlite":
        await q.execute_all([(f"DELETE FROM {table}", None) for table in sql.WORK_TABLES])


def _part(p: dict[str, Any], part: int) -> dict[str, Any]:
    """``p`` for the hits of one part's sites (see "Two parts")."""
    first, last = PART_SITES[part]
    return {**p, "parts": PARTS, "first": first, "last": last}


async def _parts(q: Queries) -> list[tuple[int, int]]:
    """(last_id, generation) of each part's hit watermark (``rollup_parts``), by part."""
    rows = await q.fetch_all("SELECT part, last_id, generation FROM rollup_parts ORDER BY part")
    return [(int(r["last_id"]), int(r["generation"])) for r in rows]


async def _part_marks(q: Queries) -> list[int]:
    """Each part's hit watermark, by part."""
    return [last_id for last_id, _generation in await _parts(q)]


# every part's watermark at least :hi (a one-connection batch counted every part up to it)
_PARTS_TO = ("UPDATE rollup_parts SET generation = generation + 1, "
             "last_id = CASE WHEN last_id > :hi THEN last_id ELSE :hi END")
# a stream's batch: its part moves on only if nothing else changed the part since it read
_PART_TO = ("UPDATE rollup_parts SET last_id = :hi, generation = generation + 1 "
            "WHERE part = :part AND last_id = :lo AND generation = :generation")
_BUMP_PARTS = "UPDATE rollup_parts SET generation = generation + 1"  # a rebuild's: streams
_HITS_FROM_PARTS = ("UPDATE rollup_watermarks SET updated_ts = :now, "
                    "last_id = (SELECT MIN(last_id) FROM rollup_parts) WHERE name = 'hits'")


async def _hits_batch(
    q: Queries, db: Database, ranges: list[tuple[int, int]], min_day: str,
    session_his: list[int] | None, report: RollupReport,
) -> None:
    """Roll each part's hits (lo, hi] (``ranges``, by part) into the tables, in this
    transaction: one pass over every site when the ranges are equal, else one pass per
    part. The visits of the visitor-days they touch are recomputed from every hit up to the
    part's ``session_his`` (a rebuild: what the part's watermark covers), else up to hi."""
    his = session_his or [hi for _lo, hi in ranges]
    if len(set(ranges)) == 1 and len(set(his)) == 1:
        passes = [{"lo": ranges[0][0], "hi": ranges[0][1], "session_hi": his[0],
                   "parts": 1, "first": 0, "last": 1}]
    else:
        passes = [_part({"lo": lo, "hi": hi, "session_hi": session_hi}, part)
                  for part, ((lo, hi), session_hi) in enumerate(zip(ranges, his, strict=True))
                  if lo < hi]
    for p in passes:
        summary = await _visits(q, db.dialect, {**p, "min_day": min_day}, session_his is not None)
        await _apply(q, db.dialect, summary, report)
    await _clear(q, db.dialect)


async def _dossiers_batch(q: Queries, lo: int, hi: int, min_day: str,
                          report: RollupReport) -> None:
    p = {"lo": lo, "hi": hi, "min_day": min_day}
    cnt = await q.fetch_one(
        "SELECT COUNT(*) AS n FROM dossiers WHERE id > :lo AND id <= :hi AND day >= :min_day",
        p)
    await q.execute(sql.DOSSIERS, p)
    report.dossiers += int(cnt["n"]) if cnt else 0


async def _stream(
    s: Session, part: int, top: int, batches: tuple[int, int], now_ms: int,
    report: RollupReport, step: Callable[[int, int], None],
) -> None:
    """One part's hits up to ``top``, batch after batch on one connection: steps 1-4 in a
    read transaction (no lock: the other stream and ingest write meanwhile), then step 5 in
    a writing one, which moves the part's watermark only if nothing changed the part since
    it was read (else the batch is computed again from there; after two such misses in a
    row, as while a rebuild runs, the stream stops and leaves the rest to the caller's
    one-connection batches, which hold the lock from the first read). ``batches``: rows of
    the first batch, then of each."""
    size, misses = batches[0], 0
    while misses < 2:
        async with s.transaction() as q:
            lo, generation = (await _parts(q))[part]
            if lo >= top:
                break
            hi = await _next_hi(q, "hits", lo, top, size)
            summary = await _visits(
                q, "sqlite", _part({"lo": lo, "hi": hi, "min_day": "", "session_hi": hi}, part),
                False)
        async with s.transaction(write=True) as q:
            moved = await q.execute(_PART_TO, {"part": part, "lo": lo, "hi": hi,
                                               "generation": generation})
            if moved:
                await _apply(q, "sqlite", summary, report)
                await q.execute(_HITS_FROM_PARTS, {"now": now_ms})
        if moved:
            report.batches += 1
            step(part, hi)
        misses = 0 if moved else misses + 1
        size = batches[1]
    async with s.transaction() as q:
        await _clear(q, "sqlite")


async def _streams(
    db: Database, report: RollupReport, batch: int, progress: Progress | None, now_ms: int,
    start: int, top: int,
) -> None:
    """SQLite: hits up to ``top`` as two streams by site at once, one per part, on a pooled
    connection and on the child process's (``db.streams()``); nothing if those are busy
    (the caller's batches then count both parts)."""
    async with db.streams() as pair:
        if pair is None:
            return
        reached = [start] * len(pair)

        def step(part: int, hi: int) -> None:
            reached[part] = hi
            if progress is not None:
                progress("hits", min(reached) - start, top - start)

        # the first stream's first batch is half a batch, so that the two streams' writes
        # come half a batch apart and seldom wait for each other's lock (300k events:
        # 202-204k against 186-189k events/s with equal first batches, interleaved)
        async with asyncio.TaskGroup() as streams:
            for part, session in enumerate(pair):
                first = max(1, batch // 2) if part == 0 else batch
                streams.create_task(_stream(session, part, top, (first, batch), now_ms, report,
                                            step))


async def _at_least(db: Database, lo: int, hi: int, n: int) -> bool:
    """Whether ids (lo, hi] hold ``n`` hits or more (ids have gaps); reads at most ``n``."""
    row = await db.fetch_one("SELECT COUNT(*) AS n FROM (SELECT 1 FROM hits "
                             "WHERE id > :lo AND id <= :hi LIMIT :n) AS b",
                             {"lo": lo, "hi": hi, "n": n})
    return row is not None and row["n"] >= n


async def _upper_bound(db: Database, table: str, lo: int, now_ms: int) -> int:
    return max(lo, await db.horizon(table))


async def _watermark(db: Database, name: str) -> int:
    row = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = :name",
                             {"name": name})
    return int(row["last_id"]) if row else 0


async def _next_hi(q: Queries, name: str, lo: int, top: int, batch: int) -> int:
    # a batch is `batch` rows, not ids: id sequences have gaps (PostgreSQL hands
    # out ids to rolled-back inserts, and keeps counting after deletes)
    row = await q.fetch_one(
        f"SELECT id FROM {name} WHERE id > :lo AND id <= :top "
        "ORDER BY id LIMIT 1 OFFSET :skip", {"lo": lo, "top": top, "skip": batch - 1})
    return int(row["id"]) if row else top


async def _run_table(
    db: Database, name: str, report: RollupReport, batch: int,
    progress: Progress | None, now_ms: int,
) -> None:
    start = await _watermark(db, name)
    top = await _upper_bound(db, name, start, now_ms)
    if (name == "hits" and db.dialect == "sqlite" and top - start >= SPLIT_MIN
            and await _at_least(db, start, top, SPLIT_MIN)):
        await _streams(db, report, batch, progress, now_ms, start, top)
    while True:  # one connection's batches (all of them on PostgreSQL)
        async with db.transaction() as q:
            lo = await _lock_watermark(q, name, now_ms)
            if name == "hits":
                los = await _part_marks(q)
                lo = min(los)
            hi = await _next_hi(q, name, lo, top, batch)
            if hi <= lo:
                break
            if name == "hits":
                await _hits_batch(q, db, [(at, max(at, hi)) for at in los], "", None, report)
                await q.execute(_PARTS_TO, {"hi": hi})
                await q.execute(_HITS_FROM_PARTS, {"now": now_ms})  # hi: the lowest was lo
            else:
                await _dossiers_batch(q, lo, hi, "", report)
                await _set_watermark(q, name, hi)
        report.batches += 1
        if progress is not None:
            progress(name, hi - start, top - start)
        if hi >= top:
            break
        if db.dialect == "sqlite":
            # one writer at a time: leave the lock free long enough for the group commit,
            # which tries every millisecond (collector/store/sqlite_ops.py, waiting), so a
            # long rollup holds up ingest for one batch at most, not for the whole run
            await asyncio.sleep(BATCH_PAUSE_S)


def default_batch(dialect: str) -> int:
    return BATCH if dialect == "sqlite" else BATCH_POSTGRES


async def rollup(
    db: Database, batch: int | None = None, progress: Progress | None = None,
) -> RollupReport:
    """Roll up every hit and dossier event above the watermarks, in batches of ``batch``
    rows (default: :func:`default_batch`).

    ``progress(table, done, total)`` is called after each batch (ids above the starting
    watermark; ``table`` is ``hits`` then ``dossiers``).
    """
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    batch = min(batch or default_batch(db.dialect), sql.MAX_BATCH)
    report = RollupReport()
    await _run_table(db, "hits", report, batch, progress, now_ms)
    await _run_table(db, "dossiers", report, batch, progress, now_ms)
    report.hits_watermark = await _watermark(db, "hits")
    report.dossiers_watermark = await _watermark(db, "dossiers")
    report.seconds = time.perf_counter() - t0
    return report


async def rebuild(
    db: Database, since: str, batch: int | None = None, progress: Progress | None = None,
) -> RollupReport:
    """Recount every day from the first of ``since``'s month (YYYY-MM-DD) on.

    Deletes those rollup rows, then re-reads the raw rows of those days that were already
    counted (ids up to the watermarks) with a cursor of its own; the watermarks are never
    moved back, so the in-server rollup may keep running meanwhile (each batch holds the
    watermark lock, and visits are recomputed from every hit the watermark covers).
    Not one transaction (a long backfill must not block ingest): figures of those days
    are partial until it ends; if it is interrupted, run it again — it starts by
    deleting, so it is idempotent. Months whose raw hits were (partly) deleted by
    retention are left as they are.
    """
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    batch = min(batch or default_batch(db.dialect), sql.MAX_BATCH)
    await rollup(db, batch)  # count everything first
    since = since[:8] + "01"  # whole months, so the monthly table is recounted exactly
    oldest = await db.fetch_one("SELECT MIN(day) AS d FROM hits")
    if oldest and oldest["d"] and oldest["d"] > since:
        # raw hits before `oldest` are gone: start at the first whole month still held
        first_day = dt.date.fromisoformat(oldest["d"])
        if first_day.day != 1:
            first_day = (first_day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        since = first_day.isoformat()
    tops: dict[str, int] = {}
    async with db.transaction() as q:
        for name in ("hits", "dossiers"):
            tops[name] = await _lock_watermark(q, name, now_ms)
        part_tops = await _part_marks(q)
        tops["hits"] = max(part_tops)  # another process may be streaming: parts differ
        for table in ROLLUP_TABLES:
            await q.execute(f"DELETE FROM {table} WHERE day >= :since", {"since": since})
        await q.execute("DELETE FROM rollup_dimensions_month WHERE month >= :m",
                        {"m": since[:7]})
        await q.execute(_BUMP_PARTS)
    report = RollupReport()
    for name, top in tops.items():
        first = await db.fetch_one(
            f"SELECT MIN(id) AS m FROM {name} WHERE day >= :since AND id <= :top",
            {"since": since, "top": top})
        start = lo = int(first["m"]) - 1 if first and first["m"] is not None else top
        while lo < top:
            async with db.transaction() as q:
                await _lock_watermark(q, name, now_ms)
                hi = await _next_hi(q, name, lo, top, batch)
                if name == "hits":  # each part's counted hits, and its visits up to now
                    await _hits_batch(q, db, [(lo, min(hi, t)) for t in part_tops], since,
                                      await _part_marks(q), report)
                    await q.execute(_BUMP_PARTS)
                else:
                    await _dossiers_batch(q, lo, hi, since, report)
            report.batches += 1
            lo = hi
            if progress is not None:
                progress(name, hi - start, top - start)
    await rollup(db, batch)  # whatever arrived meanwhile
    report.hits_watermark = await _watermark(db, "hits")
    report.dossiers_watermark = await _watermark(db, "dossiers")
    report.seconds = time.perf_counter() - t0
    return report
