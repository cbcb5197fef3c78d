"""Incremental rollups: raw hits and dossier events → daily tables per site.

Each run takes the rows above a watermark (``rollup_watermarks``: the last ``hits.id`` /
``dossiers.id`` counted) in batches of ``batch`` rows (an id range each); each batch is one
transaction that updates the rollup tables *and* moves the watermark, so a crash loses
nothing and counts nothing twice, and a second run with no new rows does nothing.

Tables written: ``visits`` (session state), ``rollup_site_day``, ``rollup_dimensions``
and ``rollup_dimensions_month`` (the same per calendar month, for long ranges),
``rollup_dvc``, ``rollup_dossiers``; ``rollup_pending``, ``rollup_visit_delta`` and
``rollup_dim_delta`` are work tables emptied within each batch.

Sessions. A visit is a run of hits of one visitor on one site with no gap over 30 minutes
(a gap of exactly 30:00 continues the visit). Visitor ids are hashed with a salt that
rotates at local midnight, so a visit never crosses midnight: at 00:00 the same browser
becomes a new visitor and a new visit. Duration = last hit − first hit, heartbeats
(``ping``) included; pings extend a visit but a run of pings alone is not a visit.
Bounce = a visit with exactly one page view. Entry/exit page = path of the visit's first /
last hit; source, referrer, campaign, browser, OS, device, province and hour are those of
its first hit.

Late events. Sessions depend on every hit of a visitor-day, so the rollup keeps one row
per visit (``visits``). A batch collects the visitor-days its new hits touch, removes their
old visits (subtracting their contribution from the rollups), recomputes their visits from
raw hits with window functions, and adds the new contribution. A hit arriving after its
day was rolled up therefore changes exactly what it should (e.g. merges two visits), and
one run or many small runs give identical tables (tests/test_rollup_property.py).
Counters that do not depend on sessions (page views per path, DVC steps, ratings,
events) are simply added per batch. The visitor-day look-ups use the index
``hits_visitor_day`` — the price of exact late events is one more index on ``hits``.

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
(``_lock_watermark``). SQLite has one writer, ids commit in order: horizon = max(id).

All SQL is portable (SQLite ≥ 3.40, PostgreSQL 15): window functions, upserts, no date
functions — days are computed at ingest.

Speed (bench/rollup.py, 300k events over 200 sites × 10 days; 2 cores shared with other
work, so compare CPU time or same-conditions pairs): ~30-40k events/s on SQLite, ~20-30k
on PostgreSQL, far from 200k/s. SQLite CPU of a full run (~5.9 s): the session query 2.7
(window functions cost ~1 µs per function per row; it also inserts ~87k visits), the ten
dimension GROUP BYs 1.1, upserting ~180k daily and the monthly dimension rows 0.9, the rest
(pending visitor-days, deltas, site and DVC counters) 1.2. PostgreSQL: each upserted row
costs ~17 µs, and the monthly table is upserted once per batch for every value the batch
touches, so fewer, larger batches help there (one 300k batch instead of six of 50k:
10.7 → 9.0 s and 10.0 → 5.8 s); on SQLite a long batch would hold the single write lock
and stall ingest, and gains only ~3 %. Measured and dropped (2026-11): sessions cut in
Python from one ordered read (SQLite -7 % CPU, PostgreSQL ~25 % slower: one INSERT per
visit costs ~57 µs there); everything in Python with dimensions summed in dicts (+15 %
CPU: each row crossing into Python costs ~3 µs here, as a dict); multi-row VALUES inserts
(PostgreSQL hash-joins all hits when joined to them; SQLite looks bound parameter names up
linearly, so 19 named parameters × many rows is quadratic); sessions as LAG/LEAD + a
running visit number + GROUP BY per visit (3 window functions instead of ~7, but the
GROUP BY sort costs more: +5 % CPU on SQLite, +5-9 % wall on PostgreSQL). The cost is rows written —
one per visit and per dimension value per batch; real gains need a store or schema
change (tuples from fetch_all, a larger SQLite page cache: ~8 %, a set-based visits work
table, or the monthly table summed after a catch-up instead of per batch).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.store import Database, Queries

GAP_MS = 30 * 60 * 1000
TZ_OFFSET_MS = 7 * 3600 * 1000
BATCH = 50_000

SEARCH_HOSTS = (
    "bing.com", "coccoc.com", "duckduckgo.com", "baidu.com", "search.yahoo.com",
    "yahoo.com", "yandex.com", "yandex.ru", "ecosia.org", "search.brave.com", "ask.com",
    "naver.com", "qwant.com", "startpage.com", "com.google.android.googlequicksearchbox",
)
SEARCH_PREFIXES = ("google.",)  # google.com, google.com.vn, …
SOCIAL_HOSTS = (
    "facebook.com", "m.facebook.com", "l.facebook.com", "lm.facebook.com", "fb.com",
    "zalo.me", "chat.zalo.me", "id.zalo.me", "youtube.com", "m.youtube.com", "youtu.be",
    "tiktok.com", "twitter.com", "x.com", "t.co", "linkedin.com", "lnkd.in",
    "instagram.com", "l.instagram.com", "threads.net", "reddit.com", "pinterest.com",
    "t.me", "telegram.org", "messenger.com", "com.facebook.katana", "com.zing.zalo",
)
SOURCES = ("direct", "search", "social", "gov", "campaign", "other")


def classify_source(ref_host: str, host: str, utm_source: str = "", utm_medium: str = "",
                    utm_campaign: str = "") -> str:
    """The referrer source class of a hit (the Python twin of :data:`SOURCE_SQL`)."""
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


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"  # constants, no user input


SOURCE_SQL = (  # over the visit's entry hit `e`
    "CASE WHEN e.utm_source <> '' OR e.utm_medium <> '' OR e.utm_campaign <> '' "
    "THEN 'campaign' "
    "WHEN e.ref_host = '' OR e.ref_host = e.host THEN 'direct' "
    "WHEN e.ref_host = 'gov.vn' OR e.ref_host LIKE '%.gov.vn' THEN 'gov' "
    f"WHEN {_in('e.ref_host', SEARCH_HOSTS)} "
    + "".join(f"OR e.ref_host LIKE '{p}%' " for p in SEARCH_PREFIXES)
    + "THEN 'search' "
    f"WHEN {_in('e.ref_host', SOCIAL_HOSTS)} THEN 'social' ELSE 'other' END"
)

VISIT_COLUMNS = (
    "site_id, day, visitor, start_ts, end_ts, first_visit, hits, pageviews, bounce, "
    "entry_path, exit_path, source, referrer, campaign, browser, os, device, province, hour"
)

# Recompute every visit of the pending visitor-days from raw hits (ids <= :hi), in two
# window passes over narrow rows: (1) over every hit, flag visit starts (gap before > 30
# min) and ends (gap after > 30 min) and keep running counts of hits, page views and
# non-ping hits; (2) over start/end rows only, pair each start with its end — the counts
# of a visit are differences of the running counts. Then look up the entry and exit hits
# by id for their attributes. A visit counts if it holds a non-ping hit; it is the
# visitor's first of the day if no non-ping hit came before it.
# `rollup_pending p CROSS JOIN hits h`: SQLite keeps the written join order, so the few
# pending visitor-days drive index look-ups into hits (never a scan of all hits);
# PostgreSQL plans it as an ordinary inner join.
_SESSIONS = f"""
INSERT INTO visits ({VISIT_COLUMNS})
SELECT v.site_id, v.day, v.visitor, v.start_ts, v.end_ts,
  CASE WHEN v.counted_before = 0 THEN 1 ELSE 0 END, v.hits, v.pageviews,
  CASE WHEN v.pageviews = 1 THEN 1 ELSE 0 END, e.path, x.path,
  {SOURCE_SQL}, CASE WHEN e.ref_host = e.host THEN '' ELSE e.ref_host END,
  e.utm_campaign, e.browser, e.os, e.device, e.province,
  ((v.start_ts + {TZ_OFFSET_MS}) / 3600000) % 24
FROM (
  SELECT b.site_id, b.day, b.visitor, b.ts AS start_ts, b.id AS entry_id,
    CASE WHEN b.last_hit = 1 THEN b.ts ELSE b.next_ts END AS end_ts,
    CASE WHEN b.last_hit = 1 THEN b.id ELSE b.next_id END AS exit_id,
    CASE WHEN b.last_hit = 1 THEN 1 ELSE b.next_n - b.n + 1 END AS hits,
    CASE WHEN b.last_hit = 1 THEN b.pv ELSE b.next_pvs - b.pvs + b.pv END AS pageviews,
    CASE WHEN b.last_hit = 1 THEN b.counts ELSE b.next_cs - b.cs + b.counts END AS counted,
    b.cs - b.counts AS counted_before
  FROM (
    SELECT a.*, LEAD(a.ts) OVER w2 AS next_ts, LEAD(a.id) OVER w2 AS next_id,
      LEAD(a.n) OVER w2 AS next_n, LEAD(a.pvs) OVER w2 AS next_pvs,
      LEAD(a.cs) OVER w2 AS next_cs
    FROM (
      SELECT h.id, h.site_id, h.day, h.visitor, h.ts,
        CASE WHEN h.kind = 'pageview' THEN 1 ELSE 0 END AS pv,
        CASE WHEN h.kind = 'ping' THEN 0 ELSE 1 END AS counts,
        ROW_NUMBER() OVER w AS n,
        SUM(CASE WHEN h.kind = 'pageview' THEN 1 ELSE 0 END) OVER w AS pvs,
        SUM(CASE WHEN h.kind = 'ping' THEN 0 ELSE 1 END) OVER w AS cs,
        CASE WHEN h.ts - LAG(h.ts) OVER w <= {GAP_MS} THEN 0 ELSE 1 END AS new_visit,
        CASE WHEN LEAD(h.ts) OVER w - h.ts <= {GAP_MS} THEN 0 ELSE 1 END AS last_hit
      FROM rollup_pending p CROSS JOIN hits h
      WHERE h.site_id = p.site_id AND h.day = p.day AND h.visitor = p.visitor
        AND h.id <= :hi
      WINDOW w AS (PARTITION BY h.site_id, h.day, h.visitor ORDER BY h.ts, h.id)
    ) a
    WHERE a.new_visit = 1 OR a.last_hit = 1
    WINDOW w2 AS (PARTITION BY a.site_id, a.day, a.visitor ORDER BY a.ts, a.id)
  ) b
  WHERE b.new_visit = 1
) v CROSS JOIN hits e CROSS JOIN hits x
WHERE v.counted > 0 AND e.id = v.entry_id AND x.id = v.exit_id
"""

_DELTA = (
    "INSERT INTO rollup_visit_delta (sign, site_id, day, first_visit, pageviews, bounce, "
    "duration, entry_path, exit_path, source, referrer, campaign, browser, os, device, "
    "province, hour) "
    "SELECT {sign}, v.site_id, v.day, v.first_visit, v.pageviews, v.bounce, "
    "v.end_ts - v.start_ts, v.entry_path, v.exit_path, v.source, v.referrer, v.campaign, "
    "v.browser, v.os, v.device, v.province, v.hour "
    "FROM rollup_pending p CROSS JOIN visits v "
    "WHERE v.site_id = p.site_id AND v.day = p.day AND v.visitor = p.visitor"
)

# visitor-days that already have visits (their rows are replaced); deleted by key, one
# index look-up each (a correlated DELETE would scan the whole visits table on SQLite)
_OLD_VISITOR_DAYS = (
    "SELECT DISTINCT v.site_id, v.day, v.visitor FROM rollup_pending p CROSS JOIN visits v "
    "WHERE v.site_id = p.site_id AND v.day = p.day AND v.visitor = p.visitor"
)
_DELETE_VISITS = (
    "DELETE FROM visits WHERE site_id = :site_id AND day = :day AND visitor = :visitor"
)

_SITE_DAY_VISITS = """
INSERT INTO rollup_site_day (site_id, day, visits, visitors, pageviews, bounces, duration_ms)
SELECT site_id, day, SUM(sign), SUM(sign * first_visit), SUM(sign * pageviews),
       SUM(sign * bounce), SUM(sign * duration)
FROM rollup_visit_delta WHERE 1 = 1 GROUP BY site_id, day
ON CONFLICT (site_id, day) DO UPDATE SET
  visits = rollup_site_day.visits + excluded.visits,
  visitors = rollup_site_day.visitors + excluded.visitors,
  pageviews = rollup_site_day.pageviews + excluded.pageviews,
  bounces = rollup_site_day.bounces + excluded.bounces,
  duration_ms = rollup_site_day.duration_ms + excluded.duration_ms
"""

_SITE_DAY_HITS = """
INSERT INTO rollup_site_day (site_id, day, hits, events, outlinks, downloads)
SELECT site_id, day, COUNT(*),
  SUM(CASE WHEN kind IN ('event', 'dvc', 'rating') THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'outlink' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'download' THEN 1 ELSE 0 END)
FROM hits WHERE id > :lo AND id <= :hi AND day >= :min_day GROUP BY site_id, day
ON CONFLICT (site_id, day) DO UPDATE SET
  hits = rollup_site_day.hits + excluded.hits,
  events = rollup_site_day.events + excluded.events,
  outlinks = rollup_site_day.outlinks + excluded.outlinks,
  downloads = rollup_site_day.downloads + excluded.downloads
"""

_DIM_COLUMNS = "site_id, dimension, day, value, visits, pageviews, bounces, duration_ms"

# visit-based dimensions: name → expression over rollup_visit_delta
VISIT_DIMENSIONS = {
    "entry": "entry_path",
    "exit": "exit_path",
    "source": "source",
    "referrer": "referrer",
    "campaign": "campaign",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "province": "province",
    "hour": "CASE WHEN hour < 10 THEN '0' || CAST(hour AS TEXT) ELSE CAST(hour AS TEXT) END",
}


def _dim_sql(name: str, expr: str) -> str:
    return (
        f"INSERT INTO rollup_dim_delta ({_DIM_COLUMNS}) "
        f"SELECT site_id, '{name}', day, {expr}, SUM(sign), SUM(sign * pageviews), "
        f"SUM(sign * bounce), SUM(sign * duration) FROM rollup_visit_delta "
        f"GROUP BY site_id, day, {expr}"
    )


_DIM_VISITS = [_dim_sql(n, e) for n, e in VISIT_DIMENSIONS.items()]

_DIM_PAGES = (
    f"INSERT INTO rollup_dim_delta ({_DIM_COLUMNS}) "
    "SELECT site_id, 'page', day, path, 0, COUNT(*), 0, 0 FROM hits "
    "WHERE id > :lo AND id <= :hi AND day >= :min_day AND kind = 'pageview' "
    "GROUP BY site_id, day, path"
)

_DIM_DAY = f"""
INSERT INTO rollup_dimensions ({_DIM_COLUMNS})
SELECT {_DIM_COLUMNS} FROM rollup_dim_delta WHERE 1 = 1
ON CONFLICT (site_id, dimension, day, value) DO UPDATE SET
  visits = rollup_dimensions.visits + excluded.visits,
  pageviews = rollup_dimensions.pageviews + excluded.pageviews,
  bounces = rollup_dimensions.bounces + excluded.bounces,
  duration_ms = rollup_dimensions.duration_ms + excluded.duration_ms
"""

_DIM_MONTH = """
INSERT INTO rollup_dimensions_month
  (site_id, dimension, month, value, visits, pageviews, bounces, duration_ms)
SELECT site_id, dimension, SUBSTR(day, 1, 7), value, SUM(visits), SUM(pageviews),
  SUM(bounces), SUM(duration_ms)
FROM rollup_dim_delta WHERE 1 = 1 GROUP BY site_id, dimension, SUBSTR(day, 1, 7), value
ON CONFLICT (site_id, dimension, month, value) DO UPDATE SET
  visits = rollup_dimensions_month.visits + excluded.visits,
  pageviews = rollup_dimensions_month.pageviews + excluded.pageviews,
  bounces = rollup_dimensions_month.bounces + excluded.bounces,
  duration_ms = rollup_dimensions_month.duration_ms + excluded.duration_ms
"""

_DROP_ZEROS = (
    "DELETE FROM rollup_dimensions WHERE site_id = :site_id AND dimension = :dimension "
    "AND day = :day AND visits = 0 AND pageviews = 0 AND bounces = 0 AND duration_ms = 0"
)
_DROP_ZEROS_MONTH = (
    "DELETE FROM rollup_dimensions_month WHERE site_id = :site_id "
    "AND dimension = :dimension AND month = :month "
    "AND visits = 0 AND pageviews = 0 AND bounces = 0 AND duration_ms = 0"
)

_DVC = """
INSERT INTO rollup_dvc (site_id, day, service, views, submissions, other_steps, ratings,
                        rating_sum, ratings_good)
SELECT site_id, day, dvc_service,
  SUM(CASE WHEN kind = 'dvc' AND dvc_state = -1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'dvc' AND dvc_state = 1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'dvc' AND dvc_state NOT IN (-1, 1) THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' THEN CAST(e_v AS INTEGER) ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' AND e_v >= 4 THEN 1 ELSE 0 END)
FROM hits WHERE id > :lo AND id <= :hi AND day >= :min_day AND kind IN ('dvc', 'rating')
GROUP BY site_id, day, dvc_service
ON CONFLICT (site_id, day, service) DO UPDATE SET
  views = rollup_dvc.views + excluded.views,
  submissions = rollup_dvc.submissions + excluded.submissions,
  other_steps = rollup_dvc.other_steps + excluded.other_steps,
  ratings = rollup_dvc.ratings + excluded.ratings,
  rating_sum = rollup_dvc.rating_sum + excluded.rating_sum,
  ratings_good = rollup_dvc.ratings_good + excluded.ratings_good
"""

_DOSSIERS = """
INSERT INTO rollup_dossiers (site_id, day, service, events, received, received_online,
  received_in_person, full_online, paid_online, paid_in_person, results)
SELECT site_id, day, service, COUNT(*),
  SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 1 AND reception = 1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 1 AND reception = 2 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 1 AND reception = 1 AND level = 4 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 1 AND payment = 1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 1 AND payment = 2 THEN 1 ELSE 0 END),
  SUM(CASE WHEN status = 3 THEN 1 ELSE 0 END)
FROM dossiers WHERE id > :lo AND id <= :hi AND day >= :min_day
GROUP BY site_id, day, service
ON CONFLICT (site_id, day, service) DO UPDATE SET
  events = rollup_dossiers.events + excluded.events,
  received = rollup_dossiers.received + excluded.received,
  received_online = rollup_dossiers.received_online + excluded.received_online,
  received_in_person = rollup_dossiers.received_in_person + excluded.received_in_person,
  full_online = rollup_dossiers.full_online + excluded.full_online,
  paid_online = rollup_dossiers.paid_online + excluded.paid_online,
  paid_in_person = rollup_dossiers.paid_in_person + excluded.paid_in_person,
  results = rollup_dossiers.results + excluded.results
"""

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


async def _hits_batch(q: Queries, lo: int, hi: int, min_day: str, session_hi: int) -> int:
    """Roll hits (lo, hi] into the tables; returns the number of visitor-days recomputed.
    Their visits are recomputed from every hit up to ``session_hi`` (>= hi)."""
    p = {"lo": lo, "hi": hi, "min_day": min_day}
    for work in ("rollup_pending", "rollup_visit_delta", "rollup_dim_delta"):
        await q.execute(f"DELETE FROM {work}")
    await q.execute(
        "INSERT INTO rollup_pending (site_id, day, visitor) SELECT DISTINCT site_id, day, "
        "visitor FROM hits WHERE id > :lo AND id <= :hi AND day >= :min_day", p)
    old = await q.fetch_all(_OLD_VISITOR_DAYS)
    removed: list[dict] = []
    if old:
        await q.execute(_DELTA.format(sign=-1))
        removed = await q.fetch_all(
            "SELECT DISTINCT site_id, day FROM rollup_visit_delta WHERE sign = -1")
        await q.execute_many(_DELETE_VISITS, old)
    await q.execute(_SESSIONS, {"hi": session_hi})
    await q.execute(_DELTA.format(sign=1))
    await q.execute(_SITE_DAY_VISITS)
    for sql in _DIM_VISITS:
        await q.execute(sql)
    await q.execute(_DIM_PAGES, p)
    await q.execute(_DIM_DAY)
    await q.execute(_DIM_MONTH)
    await q.execute(_SITE_DAY_HITS, p)
    await q.execute(_DVC, p)
    if removed:  # visits were replaced: values they no longer reach may now be all zero
        await q.execute_many(_DROP_ZEROS, [
            {"site_id": r["site_id"], "day": r["day"], "dimension": d}
            for r in removed for d in VISIT_DIMENSIONS
        ])
        months = {(r["site_id"], r["day"][:7]) for r in removed}
        await q.execute_many(_DROP_ZEROS_MONTH, [
            {"site_id": site, "month": month, "dimension": d}
            for site, month in sorted(months) for d in VISIT_DIMENSIONS
        ])
    n = await q.fetch_one("SELECT COUNT(*) AS n FROM rollup_pending")
    for work in ("rollup_pending", "rollup_visit_delta", "rollup_dim_delta"):
        await q.execute(f"DELETE FROM {work}")
    return int(n["n"]) if n else 0


async def _upper_bound(db: Database, table: str, lo: int, now_ms: int) -> int:
    return max(lo, await db.horizon(table))


async def _watermark(db: Database, name: str) -> int:
    row = await db.fetch_one("SELECT last_id FROM rollup_watermarks WHERE name = :name",
                             {"name": name})
    return int(row["last_id"]) if row else 0


async def _batch(
    q: Queries, name: str, lo: int, hi: int, min_day: str, session_hi: int,
    report: RollupReport,
) -> None:
    """Roll rows (lo, hi] of ``name`` up; sessions are recomputed from hits <= session_hi."""
    p = {"lo": lo, "hi": hi, "min_day": min_day}
    cnt = await q.fetch_one(
        f"SELECT COUNT(*) AS n FROM {name} WHERE id > :lo AND id <= :hi AND day >= :min_day", p)
    n = int(cnt["n"]) if cnt else 0
    if name == "hits":
        report.visitor_days += await _hits_batch(q, lo, hi, min_day, session_hi)
        report.hits += n
    else:
        await q.execute(_DOSSIERS, p)
        report.dossiers += n


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
    while True:
        async with db.transaction() as q:
            lo = await _lock_watermark(q, name, now_ms)
            hi = await _next_hi(q, name, lo, top, batch)
            if hi <= lo:
                break
            await _batch(q, name, lo, hi, "", hi, report)
            await _set_watermark(q, name, hi)
        report.batches += 1
        if progress is not None:
            progress(name, hi - start, top - start)
        if hi >= top:
            break


async def rollup(
    db: Database, batch: int = BATCH, progress: Progress | None = None,
) -> RollupReport:
    """Roll up every hit and dossier event above the watermarks, in id batches.

    ``progress(table, done, total)`` is called after each batch (ids above the starting
    watermark; ``table`` is ``hits`` then ``dossiers``).
    """
    t0 = time.perf_counter()
    now_ms = int(time.time() * 1000)
    report = RollupReport()
    await _run_table(db, "hits", report, batch, progress, now_ms)
    await _run_table(db, "dossiers", report, batch, progress, now_ms)
    report.hits_watermark = await _watermark(db, "hits")
    report.dossiers_watermark = await _watermark(db, "dossiers")
    report.seconds = time.perf_counter() - t0
    return report


async def rebuild(
    db: Database, since: str, batch: int = BATCH, progress: Progress | None = None,
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
        for table in ROLLUP_TABLES:
            await q.execute(f"DELETE FROM {table} WHERE day >= :since", {"since": since})
        await q.execute("DELETE FROM rollup_dimensions_month WHERE month >= :m",
                        {"m": since[:7]})
    report = RollupReport()
    for name, top in tops.items():
        first = await db.fetch_one(
            f"SELECT MIN(id) AS m FROM {name} WHERE day >= :since AND id <= :top",
            {"since": since, "top": top})
        start = lo = int(first["m"]) - 1 if first and first["m"] is not None else top
        while lo < top:
            async with db.transaction() as q:
                current = await _lock_watermark(q, name, now_ms)
                hi = await _next_hi(q, name, lo, top, batch)
                await _batch(q, name, lo, hi, since, current, report)
            report.batches += 1
            lo = hi
            if progress is not None:
                progress(name, hi - start, top - start)
    await rollup(db, batch)  # whatever arrived meanwhile
    report.hits_watermark = await _watermark(db, "hits")
    report.dossiers_watermark = await _watermark(db, "dossiers")
    report.seconds = time.perf_counter() - t0
    return report
