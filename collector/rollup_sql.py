"""The SQL of one rollup batch (``collector/rollup.py`` runs it and explains why).

Portable SQL (SQLite ≥ 3.40, PostgreSQL 15) with ``:name`` parameters, except the work
tables' DDL and the one statement SQLite runs differently (:data:`VISITOR_DAYS_SQLITE`).
Work tables are TEMP tables of the rollup's connection (no WAL, no disk), emptied per batch.
"""

from __future__ import annotations

GAP_MS = 30 * 60 * 1000
TZ_OFFSET_MS = 7 * 3600 * 1000
DAY_MS = 86_400_000
# A hit's order inside its visitor-day as one integer: ms since local midnight × 2^36 + id,
# so MIN/MAX give the first/last hit by (ts, id) in one aggregate (< 2^63 while id < 2^36).
ID_BITS = 36
ID_SPAN = 1 << ID_BITS
ORDER_KEY = f"((ts + {TZ_OFFSET_MS}) % {DAY_MS}) * {ID_SPAN} + id"

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
_ENTRY_ATTRIBUTES = (  # a visit's attributes taken from its entry hit `e`
    f"{SOURCE_SQL}, CASE WHEN e.ref_host = e.host THEN '' ELSE e.ref_host END, "
    "e.utm_campaign, e.browser, e.os, e.device, e.province"
)

# -- work tables -----------------------------------------------------------------------

_WORK = {
    # the batch's hits summed per visitor-day; `old` = the visitor-day has hits outside the
    # batch that sessions must see (already counted, or — in a rebuild — counted later)
    "rollup_vd": "site_id {i} NOT NULL, day {t} NOT NULL, visitor {i} NOT NULL, "
                 "n {i} NOT NULL, pv {i} NOT NULL, counted {i} NOT NULL, events {i} NOT NULL, "
                 "outlinks {i} NOT NULL, downloads {i} NOT NULL, t0 {i} NOT NULL, "
                 "t1 {i} NOT NULL, e {i} NOT NULL, x {i} NOT NULL, old {i} NOT NULL DEFAULT 0"
                 "{pk_vd}",
    # visitor-days whose visits are recomputed from raw hits by window functions
    "rollup_slow": "site_id {i} NOT NULL, day {t} NOT NULL, visitor {i} NOT NULL{pk_slow}",
    # visits of the slow visitor-days, cut in Python (collector.rollup.cut_sessions)
    "rollup_sv": "site_id {i} NOT NULL, day {t} NOT NULL, visitor {i} NOT NULL, "
                 "start_ts {i} NOT NULL, end_ts {i} NOT NULL, first_visit {i} NOT NULL, "
                 "hits {i} NOT NULL, pageviews {i} NOT NULL, entry_id {i} NOT NULL, "
                 "exit_id {i} NOT NULL",
    # visits added (sign 1) and replaced (sign -1) by the batch
    "rollup_bv": "sign {i} NOT NULL, site_id {i} NOT NULL, day {t} NOT NULL, "
                 "visitor {i} NOT NULL, start_ts {i} NOT NULL, end_ts {i} NOT NULL, "
                 "first_visit {i} NOT NULL, hits {i} NOT NULL, pageviews {i} NOT NULL, "
                 "bounce {i} NOT NULL, entry_path {t} NOT NULL, exit_path {t} NOT NULL, "
                 "source {t} NOT NULL, referrer {t} NOT NULL, campaign {t} NOT NULL, "
                 "browser {t} NOT NULL, os {t} NOT NULL, device {t} NOT NULL, "
                 "province {t} NOT NULL, hour {i} NOT NULL",
    # visit deltas by (browser, os, device): three dimensions and the site's day totals
    "rollup_g4": "site_id {i} NOT NULL, day {t} NOT NULL, browser {t} NOT NULL, "
                 "os {t} NOT NULL, device {t} NOT NULL, visits {i} NOT NULL, "
                 "visitors {i} NOT NULL, pageviews {i} NOT NULL, bounces {i} NOT NULL, "
                 "duration_ms {i} NOT NULL",
    # dimension deltas, applied to rollup_dimensions and rollup_dimensions_month
    "rollup_dd": "site_id {i} NOT NULL, dimension {t} NOT NULL, day {t} NOT NULL, "
                 "value {t} NOT NULL, visits {i} NOT NULL, pageviews {i} NOT NULL, "
                 "bounces {i} NOT NULL, duration_ms {i} NOT NULL",
}
WORK_TABLES = tuple(_WORK)


def work_ddl(dialect: str) -> list[str]:
    """CREATE statements of the work tables. SQLite keeps them for the connection and
    the rollup empties them; PostgreSQL empties them at every commit."""
    if dialect == "sqlite":
        pk = ", PRIMARY KEY (site_id, day, visitor)"
        kinds = {"i": "INTEGER", "t": "TEXT", "pk_vd": pk, "pk_slow": pk}
        tail = {"rollup_vd": " WITHOUT ROWID", "rollup_slow": " WITHOUT ROWID"}
        return [f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols.format(**kinds)})"
                f"{tail.get(name, '')}" for name, cols in _WORK.items()]
    kinds = {"i": "bigint", "t": "text", "pk_vd": "", "pk_slow": ""}
    return [f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols.format(**kinds)}) "
            "ON COMMIT DELETE ROWS" for name, cols in _WORK.items()]


# -- 1. the batch's visitor-days -------------------------------------------------------

_VD_COLUMNS = "site_id, day, visitor, n, pv, counted, events, outlinks, downloads, t0, t1, e, x"
_BATCH_HITS = "FROM hits WHERE id > :lo AND id <= :hi AND day >= :min_day"

VISITOR_DAYS = f"""
INSERT INTO rollup_vd ({_VD_COLUMNS})
SELECT site_id, day, visitor, COUNT(*),
  SUM(CASE WHEN kind = 'pageview' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'ping' THEN 0 ELSE 1 END),
  SUM(CASE WHEN kind IN ('event', 'dvc', 'rating') THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'outlink' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'download' THEN 1 ELSE 0 END),
  MIN(ts), MAX(ts), MIN({ORDER_KEY}), MAX({ORDER_KEY})
{_BATCH_HITS} GROUP BY site_id, day, visitor
"""

# SQLite sorts for GROUP BY; upserting each hit into the keyed temp table is ~2× cheaper
VISITOR_DAYS_SQLITE = f"""
INSERT INTO rollup_vd ({_VD_COLUMNS})
SELECT site_id, day, visitor, 1,
  CASE WHEN kind = 'pageview' THEN 1 ELSE 0 END,
  CASE WHEN kind = 'ping' THEN 0 ELSE 1 END,
  CASE WHEN kind IN ('event', 'dvc', 'rating') THEN 1 ELSE 0 END,
  CASE WHEN kind = 'outlink' THEN 1 ELSE 0 END,
  CASE WHEN kind = 'download' THEN 1 ELSE 0 END,
  ts, ts, {ORDER_KEY}, {ORDER_KEY}
{_BATCH_HITS}
ON CONFLICT (site_id, day, visitor) DO UPDATE SET
  n = n + 1, pv = pv + excluded.pv, counted = counted + excluded.counted,
  events = events + excluded.events, outlinks = outlinks + excluded.outlinks,
  downloads = downloads + excluded.downloads,
  t0 = min(t0, excluded.t0), t1 = max(t1, excluded.t1),
  e = min(e, excluded.e), x = max(x, excluded.x)
"""

# A visitor-day is old if a hit outside the batch, up to :session_hi, belongs to it.
# Incremental run: any such hit has id <= :lo, was counted, and so its site-day has a
# rollup_site_day row: visitor-days of site-days never seen before skip the probe.
MARK_OLD = """
UPDATE rollup_vd SET old = 1
WHERE EXISTS (SELECT 1 FROM rollup_site_day s
              WHERE s.site_id = rollup_vd.site_id AND s.day = rollup_vd.day)
  AND EXISTS (SELECT 1 FROM hits h WHERE h.site_id = rollup_vd.site_id
              AND h.day = rollup_vd.day AND h.visitor = rollup_vd.visitor AND h.id <= :lo)
"""
# rebuild: hits above the batch may already be counted too
MARK_OLD_REBUILD = """
UPDATE rollup_vd SET old = 1
WHERE EXISTS (SELECT 1 FROM hits h WHERE h.site_id = rollup_vd.site_id
              AND h.day = rollup_vd.day AND h.visitor = rollup_vd.visitor
              AND h.id <= :session_hi AND (h.id <= :lo OR h.id > :hi))
"""

_ONE_VISIT = (  # a new visitor-day whose hits span <= 30 min of one local day: one visit
    f"v.old = 0 AND v.t1 - v.t0 <= {GAP_MS} "
    f"AND (v.t0 + {TZ_OFFSET_MS}) / {DAY_MS} = (v.t1 + {TZ_OFFSET_MS}) / {DAY_MS}"
)
SUMMARY = (
    "SELECT COALESCE(SUM(n), 0) AS hits, COUNT(*) AS visitor_days, "
    "COALESCE(SUM(old), 0) AS old, "
    f"COALESCE(SUM(CASE WHEN {_ONE_VISIT} THEN 0 ELSE 1 END), 0) AS slow FROM rollup_vd v"
)

# -- 2. visits -------------------------------------------------------------------------

_BV_COLUMNS = f"sign, {VISIT_COLUMNS}"

FAST_VISITS = f"""
INSERT INTO rollup_bv ({_BV_COLUMNS})
SELECT 1, v.site_id, v.day, v.visitor, v.t0, v.t1, 1, v.n, v.pv,
  CASE WHEN v.pv = 1 THEN 1 ELSE 0 END, e.path, x.path, {_ENTRY_ATTRIBUTES},
  ((v.t0 + {TZ_OFFSET_MS}) / 3600000) % 24
FROM rollup_vd v CROSS JOIN hits e CROSS JOIN hits x
WHERE {_ONE_VISIT} AND v.counted > 0
  AND e.id = v.e % {ID_SPAN} AND e.ts = v.t0 AND x.id = v.x % {ID_SPAN} AND x.ts = v.t1
"""

SLOW_VISITOR_DAYS = (
    "INSERT INTO rollup_slow (site_id, day, visitor) SELECT site_id, day, visitor "
    f"FROM rollup_vd v WHERE NOT ({_ONE_VISIT})"
)

# the visits being replaced, subtracted (rows in `visits` only for old visitor-days)
OLD_VISITS = (
    f"INSERT INTO rollup_bv ({_BV_COLUMNS}) "
    f"SELECT -1, {', '.join('v.' + c for c in VISIT_COLUMNS.split(', '))} "
    "FROM rollup_slow p CROSS JOIN visits v "
    "WHERE v.site_id = p.site_id AND v.day = p.day AND v.visitor = p.visitor"
)
OLD_VISITOR_DAYS = (
    "SELECT DISTINCT site_id, day, visitor FROM rollup_bv WHERE sign = -1"
)
DELETE_VISITS = (  # by key: one index look-up each
    "DELETE FROM visits WHERE site_id = :site_id AND day = :day AND visitor = :visitor"
)

# Every hit of the slow visitor-days up to :session_hi, in session order, for
# cut_sessions. `rollup_slow p CROSS JOIN hits h`: SQLite keeps the written join order, so
# the slow visitor-days drive index look-ups into hits (the order comes from the indexes).
SLOW_HITS = (
    "SELECT h.site_id, h.day, h.visitor, h.ts, h.id, "
    "CASE h.kind WHEN 'pageview' THEN 2 WHEN 'ping' THEN 0 ELSE 1 END "
    "FROM rollup_slow p CROSS JOIN hits h "
    "WHERE h.site_id = p.site_id AND h.day = p.day AND h.visitor = p.visitor "
    "AND h.id <= :session_hi ORDER BY h.site_id, h.day, h.visitor, h.ts, h.id"
)
SV_COLUMNS = ("site_id", "day", "visitor", "start_ts", "end_ts", "first_visit", "hits",
              "pageviews", "entry_id", "exit_id")
SLOW_VISITS = f"""
INSERT INTO rollup_bv ({_BV_COLUMNS})
SELECT 1, v.site_id, v.day, v.visitor, v.start_ts, v.end_ts, v.first_visit, v.hits,
  v.pageviews, CASE WHEN v.pageviews = 1 THEN 1 ELSE 0 END, e.path, x.path,
  {_ENTRY_ATTRIBUTES}, ((v.start_ts + {TZ_OFFSET_MS}) / 3600000) % 24
FROM rollup_sv v CROSS JOIN hits e CROSS JOIN hits x
WHERE e.id = v.entry_id AND e.ts = v.start_ts AND x.id = v.exit_id AND x.ts = v.end_ts
"""

ADD_VISITS = (
    f"INSERT INTO visits ({VISIT_COLUMNS}) SELECT {VISIT_COLUMNS} FROM rollup_bv "
    "WHERE sign = 1"
)

# -- 3. dimensions and daily totals ----------------------------------------------------

_DIM_COLUMNS = "site_id, dimension, day, value, visits, pageviews, bounces, duration_ms"
_VISIT_SUMS = ("SUM(sign), SUM(sign * pageviews), SUM(sign * bounce), "
               "SUM(sign * (end_ts - start_ts))")
_NAMED_SUMS = ("SUM(sign) AS visits, SUM(sign * pageviews) AS pageviews, "
               "SUM(sign * bounce) AS bounces, SUM(sign * (end_ts - start_ts)) AS duration_ms")
_G_SUMS = "SUM(visits), SUM(pageviews), SUM(bounces), SUM(duration_ms)"
HOUR_TEXT = "CASE WHEN hour < 10 THEN '0' || CAST(hour AS TEXT) ELSE CAST(hour AS TEXT) END"

G4 = (
    "INSERT INTO rollup_g4 (site_id, day, browser, os, device, visits, visitors, pageviews, "
    "bounces, duration_ms) SELECT site_id, day, browser, os, device, SUM(sign), "
    "SUM(sign * first_visit), SUM(sign * pageviews), SUM(sign * bounce), "
    "SUM(sign * (end_ts - start_ts)) FROM rollup_bv GROUP BY site_id, day, browser, os, device"
)


def _by_visit(name: str, expr: str) -> str:
    return (f"SELECT site_id, '{name}', day, {expr}, {_VISIT_SUMS} FROM rollup_bv "
            f"GROUP BY site_id, day, {expr}")


def _by_group(table: str, name: str, column: str) -> str:
    return (f"SELECT site_id, '{name}', day, {column}, {_G_SUMS} FROM {table} "
            f"GROUP BY site_id, day, {column}")


# visit dimensions: entry, exit, province and hour from the visits; source, referrer and
# campaign from one grouping of the three (few combinations), browser, os and device
# from rollup_g4 — fewer rows to sort than ten groupings of every visit
VISIT_DIMENSIONS = ("entry", "exit", "source", "referrer", "campaign", "browser", "os",
                    "device", "province", "hour")
DIM_VISITS = (
    f"WITH g3 AS MATERIALIZED (SELECT site_id, day, source, referrer, campaign, {_NAMED_SUMS} "
    "FROM rollup_bv GROUP BY site_id, day, source, referrer, campaign) "
    f"INSERT INTO rollup_dd ({_DIM_COLUMNS}) "
    + " UNION ALL ".join([
        _by_visit("entry", "entry_path"), _by_visit("exit", "exit_path"),
        _by_group("g3", "source", "source"), _by_group("g3", "referrer", "referrer"),
        _by_group("g3", "campaign", "campaign"),
        _by_group("rollup_g4", "browser", "browser"), _by_group("rollup_g4", "os", "os"),
        _by_group("rollup_g4", "device", "device"),
        _by_visit("province", "province"),
        f"SELECT site_id, 'hour', day, {HOUR_TEXT}, visits, pageviews, bounces, duration_ms "
        f"FROM (SELECT site_id, day, hour, {_NAMED_SUMS} FROM rollup_bv "
        "GROUP BY site_id, day, hour) h",
    ])
)

DIM_PAGES = (
    f"INSERT INTO rollup_dd ({_DIM_COLUMNS}) "
    f"SELECT site_id, 'page', day, path, 0, COUNT(*), 0, 0 {_BATCH_HITS} "
    "AND kind = 'pageview' GROUP BY site_id, day, path"
)

_ADD = "{t}.{c} + excluded.{c}"


def _upsert_set(table: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{c} = {_ADD.format(t=table, c=c)}" for c in columns)


_DIM_METRICS = ("visits", "pageviews", "bounces", "duration_ms")
DIM_DAY = (
    f"INSERT INTO rollup_dimensions ({_DIM_COLUMNS}) SELECT {_DIM_COLUMNS} FROM rollup_dd "
    "WHERE 1 = 1 ON CONFLICT (site_id, dimension, day, value) DO UPDATE SET "
    + _upsert_set("rollup_dimensions", _DIM_METRICS)
)
DIM_MONTH = (
    "INSERT INTO rollup_dimensions_month (site_id, dimension, month, value, visits, "
    "pageviews, bounces, duration_ms) "
    f"SELECT site_id, dimension, SUBSTR(day, 1, 7), value, {_G_SUMS} FROM rollup_dd "
    "GROUP BY site_id, dimension, SUBSTR(day, 1, 7), value "
    "ON CONFLICT (site_id, dimension, month, value) DO UPDATE SET "
    + _upsert_set("rollup_dimensions_month", _DIM_METRICS)
)

_SITE_METRICS = ("visits", "visitors", "pageviews", "bounces", "duration_ms", "hits",
                 "events", "outlinks", "downloads")
SITE_DAY = (
    f"INSERT INTO rollup_site_day (site_id, day, {', '.join(_SITE_METRICS)}) "
    f"SELECT site_id, day, {', '.join(f'SUM({c})' for c in _SITE_METRICS)} FROM ("
    "SELECT site_id, day, SUM(visits) AS visits, SUM(visitors) AS visitors, "
    "SUM(pageviews) AS pageviews, SUM(bounces) AS bounces, SUM(duration_ms) AS duration_ms, "
    "0 AS hits, 0 AS events, 0 AS outlinks, 0 AS downloads "
    "FROM rollup_g4 GROUP BY site_id, day "
    "UNION ALL SELECT site_id, day, 0, 0, 0, 0, 0, SUM(n), SUM(events), SUM(outlinks), "
    "SUM(downloads) FROM rollup_vd GROUP BY site_id, day"
    ") u GROUP BY site_id, day "
    "ON CONFLICT (site_id, day) DO UPDATE SET " + _upsert_set("rollup_site_day", _SITE_METRICS)
)

# values the replaced visits no longer reach may now be all zero: only rows whose visits
# went down can (visit dimensions count every visit; page rows only grow)
_ZERO = "visits = 0 AND pageviews = 0 AND bounces = 0 AND duration_ms = 0"
SHRUNK = "SELECT site_id, dimension, day, value FROM rollup_dd WHERE visits < 0"
DROP_ZERO = (
    "DELETE FROM rollup_dimensions WHERE site_id = :site_id AND dimension = :dimension "
    f"AND day = :day AND value = :value AND {_ZERO}"
)
DROP_ZERO_MONTH = (
    "DELETE FROM rollup_dimensions_month WHERE site_id = :site_id "
    f"AND dimension = :dimension AND month = :month AND value = :value AND {_ZERO}"
)

DVC = f"""
INSERT INTO rollup_dvc (site_id, day, service, views, submissions, other_steps, ratings,
                        rating_sum, ratings_good)
SELECT site_id, day, dvc_service,
  SUM(CASE WHEN kind = 'dvc' AND dvc_state = -1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'dvc' AND dvc_state = 1 THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'dvc' AND dvc_state NOT IN (-1, 1) THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' THEN CAST(e_v AS INTEGER) ELSE 0 END),
  SUM(CASE WHEN kind = 'rating' AND e_v >= 4 THEN 1 ELSE 0 END)
{_BATCH_HITS} AND kind IN ('dvc', 'rating')
GROUP BY site_id, day, dvc_service
ON CONFLICT (site_id, day, service) DO UPDATE SET
  {_upsert_set("rollup_dvc", ("views", "submissions", "other_steps", "ratings", "rating_sum",
                              "ratings_good"))}
"""

_DOSSIER_METRICS = ("events", "received", "received_online", "received_in_person",
                    "full_online", "paid_online", "paid_in_person", "results")
DOSSIERS = f"""
INSERT INTO rollup_dossiers (site_id, day, service, {', '.join(_DOSSIER_METRICS)})
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
  {_upsert_set("rollup_dossiers", _DOSSIER_METRICS)}
"""
