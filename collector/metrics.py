"""The metrics API: figures for a site, an agency or the nation over any date range.

Reads rollup tables only (``rollup_site_day``, ``rollup_dimensions``, ``rollup_dvc``,
``rollup_dossiers``; for the whole months of a range ``rollup_dimensions_month``,
``rollup_site_month``, ``rollup_dossiers_month``; for the nation ``rollup_nation_month``
and ``rollup_nation_day`` — the last four while fresh, see ``collector.rollup_month``)
and the ``dropped`` counters — never raw hits — so a 365-day dashboard is a few index
range scans. ``reports`` calls these functions; they return plain dicts and lists
(JSON-ready).

    scope = Scope.site(47)            # or Scope.agency("H26"), Scope.nation()
    await totals(db, scope, "2026-01-01", "2026-01-31")

Dates are ``datetime.date`` or ``'YYYY-MM-DD'``; ranges are inclusive of both ends.
An agency aggregates its sites (``sites.agency_code``); the nation aggregates everything.

Decisions:

- ``visitors`` over a range is the **sum of daily unique visitors** ("lượt khách theo
  ngày"). Visitor ids are hashed with a salt that rotates at local midnight and is then
  deleted, so the same person on two days is two ids — not even raw data could count
  cross-day uniques. Each result says so in ``visitors_basis = "sum_of_daily_uniques"``.
- Rates are ``None`` when their denominator is zero (never 0 %, never a division error):
  bounce rate = bounces / visits; avg visit duration = total duration / visits (seconds);
  online dossier rate = received online / received; full-process online rate = received
  online at Level 4 / received; online payment rate = paid online / (paid online + paid
  in person); DVC conversion = submissions / views; satisfaction = ratings ≥ 4 / ratings.
- The previous period of ``[start, end]`` is the same number of days just before ``start``;
  deltas are ``current − previous`` and ``pct`` (relative change, ``None`` if previous 0).
- Rankings group sites by agency; ``kind='province'`` covers provinces and centrally run
  cities, ``kind='ministry'`` ministries and ministerial-level agencies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from collector.rollup_month import (
    DAY_GROUPS,
    DOSSIER_COLUMNS,
    DVC_COLUMNS,
    MONTH_COLUMNS,
)
from collector.store import Database

DayLike = dt.date | str

DIMENSIONS = ("page", "entry", "exit", "source", "referrer", "campaign", "browser", "os",
              "device", "province", "hour")
DIMENSION_ORDER = ("visits", "pageviews", "bounces", "duration_ms")
PROVINCE_KINDS = ("province", "city")
MINISTRY_KINDS = ("ministry", "ministerial_agency")


@dataclass(frozen=True)
class Scope:
    """Which sites a figure covers: one site, one agency's sites, or all (nation)."""

    kind: str  # "site" | "agency" | "nation"
    key: str | int | None = None

    @classmethod
    def site(cls, site_id: int) -> Scope:
        return cls("site", int(site_id))

    @classmethod
    def agency(cls, code: str) -> Scope:
        return cls("agency", code)

    @classmethod
    def nation(cls) -> Scope:
        return cls("nation")

    def where(self, column: str = "site_id") -> tuple[str, dict[str, Any]]:
        """An SQL condition on ``column`` and its parameters."""
        if self.kind == "site":
            return f"{column} = :scope_site", {"scope_site": self.key}
        if self.kind == "agency":
            return (f"{column} IN (SELECT id FROM sites WHERE agency_code = :scope_agency)",
                    {"scope_agency": self.key})
        if self.kind == "nation":
            return "1 = 1", {}
        raise ValueError(f"unknown scope kind {self.kind!r}")


def as_day(value: DayLike) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def days_between(start: DayLike, end: DayLike) -> list[str]:
    """Every day from ``start`` to ``end`` inclusive, as 'YYYY-MM-DD'."""
    a, b = as_day(start), as_day(end)
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def previous_period(start: DayLike, end: DayLike) -> tuple[str, str]:
    """The range of the same length just before ``start``."""
    a, b = as_day(start), as_day(end)
    n = (b - a).days + 1
    return (a - dt.timedelta(days=n)).isoformat(), (a - dt.timedelta(days=1)).isoformat()


def month_split(start: DayLike, end: DayLike) -> tuple[tuple[str, str] | None,
                                                       list[tuple[str, str]]]:
    """``[start, end]`` as a range of whole months ('YYYY-MM', or ``None``) plus the
    leftover day ranges at either edge: long ranges read the monthly rollups."""
    a, b = as_day(start), as_day(end)
    if b < a:
        return None, [(a.isoformat(), b.isoformat())]
    first_full = a if a.day == 1 else (a.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    after_end = b + dt.timedelta(days=1)
    last_full_end = after_end.replace(day=1) - dt.timedelta(days=1)  # end of last full month
    if first_full > last_full_end:
        return None, [(a.isoformat(), b.isoformat())]
    edges = []
    if a < first_full:
        edges.append((a.isoformat(), (first_full - dt.timedelta(days=1)).isoformat()))
    if last_full_end < b:
        edges.append((after_end.replace(day=1).isoformat(), b.isoformat()))
    return (first_full.isoformat()[:7], last_full_end.isoformat()[:7]), edges


def ratio(num: float | int | None, den: float | int | None) -> float | None:
    if not den or num is None:
        return None
    return num / den


def _range(scope: Scope, start: DayLike, end: DayLike) -> tuple[str, dict[str, Any]]:
    cond, params = scope.where()
    params = {**params, "start": as_day(start).isoformat(), "end": as_day(end).isoformat()}
    return f"{cond} AND day >= :start AND day <= :end", params


def _sums(columns: tuple[str, ...]) -> str:
    return ", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for c in columns)


def _ints(row: dict[str, Any] | None, columns: tuple[str, ...]) -> dict[str, int]:
    row = row or {}
    return {c: int(row.get(c) or 0) for c in columns}


def derive(t: dict[str, Any]) -> dict[str, Any]:
    """Add the rates and KPIs computed from summed counters (in place, returned)."""
    if "visits" in t:
        t["bounce_rate"] = ratio(t["bounces"], t["visits"])
        avg = ratio(t["duration_ms"], t["visits"])
        t["avg_duration_s"] = None if avg is None else avg / 1000
        t["pageviews_per_visit"] = ratio(t["pageviews"], t["visits"])
        t["visitors_basis"] = "sum_of_daily_uniques"
    if "views" in t:
        t["dvc_conversion"] = ratio(t["submissions"], t["views"])
        t["satisfaction"] = ratio(t["ratings_good"], t["ratings"])
        t["avg_rating"] = ratio(t["rating_sum"], t["ratings"])
    if "received" in t:
        t["online_rate"] = ratio(t["received_online"], t["received"])
        t["full_online_rate"] = ratio(t["full_online"], t["received"])
        t["online_payment_rate"] = ratio(t["paid_online"],
                                         t["paid_online"] + t["paid_in_person"])
    return t


async def months_fresh(db: Database) -> bool:
    """Whether the monthly tables (``rollup_site_month``, ``rollup_dossiers_month``) were
    refreshed at the current rollup watermarks (``collector.rollup_month``)."""
    rows = await db.fetch_all(
        "SELECT w.last_id AS w, s.last_id AS m FROM rollup_watermarks w "
        "LEFT JOIN rollup_month_state s ON s.name = w.name")
    return bool(rows) and all(r["m"] is not None and int(r["m"]) == int(r["w"]) for r in rows)


async def split_range(db: Database, start: DayLike, end: DayLike,
                      ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """:func:`month_split`, if the monthly tables are fresh; else the whole range as days."""
    months, edges, _ = await _split_fresh(db, start, end)
    return months, edges


async def _split_fresh(db: Database, start: DayLike, end: DayLike,
                       ) -> tuple[tuple[str, str] | None, list[tuple[str, str]], bool]:
    months, edges = month_split(start, end)
    if not await months_fresh(db):
        return None, [(as_day(start).isoformat(), as_day(end).isoformat())], False
    return months, edges, True


async def per_site(db: Database, scope: Scope, start: DayLike, end: DayLike,
                   columns: tuple[str, ...] = MONTH_COLUMNS) -> dict[int, dict[str, int]]:
    """Per site of ``scope``: sums of ``columns`` (names of ``MONTH_COLUMNS``) over the
    range — whole months from ``rollup_site_month``, edge days from the daily tables.
    Sites without any row are absent."""
    months, edges = await split_range(db, start, end)
    cond, p = scope.where()
    jobs: list[tuple[list[int], Any]] = []  # (positions in `columns` of the row's sums, rows)
    if months:
        jobs.append((list(range(len(columns))), db.fetch_rows(
            f"SELECT site_id, {_sums(columns)} FROM rollup_site_month WHERE {cond} "
            "AND month >= :m1 AND month <= :m2 GROUP BY site_id",
            {**p, "m1": months[0], "m2": months[1]})))
    for a, b in edges:
        for table, cols, renames in DAY_GROUPS:
            wanted = tuple(c for c in cols if renames.get(c, c) in columns)
            if wanted:
                # "+site_id … GROUP BY 1": SQLite then reads the covering index by day and
                # sorts, instead of skip-scanning the (site_id, day) key: 2 edge days of
                # 1,000 sites 13 → 4 ms; the same for 30 days (PostgreSQL: unary plus)
                jobs.append(([columns.index(renames.get(c, c)) for c in wanted], db.fetch_rows(
                    f"SELECT +site_id AS site_id, {_sums(wanted)} FROM {table} WHERE {cond} "
                    "AND day >= :a AND day <= :b GROUP BY 1", {**p, "a": a, "b": b})))
    acc: dict[int, list[Any]] = {}
    n = len(columns)
    for (positions, _), rows in zip(jobs, await asyncio.gather(*(j for _, j in jobs)),
                                    strict=True):
        for row in rows:
            t = acc.get(row[0])
            if t is None:
                t = acc[row[0]] = [0] * n
            for i, v in zip(positions, row[1:], strict=True):
                t[i] += v
    return {int(sid): dict(zip(columns, map(int, t), strict=True)) for sid, t in acc.items()}


def _month_table(scope: Scope) -> str:
    return "rollup_nation_month" if scope.kind == "nation" else "rollup_site_month"


def _day_groups(scope: Scope, fresh: bool) -> tuple[tuple[str, tuple[str, ...],
                                                           dict[str, str]], ...]:
    """The daily tables to read: for the nation while fresh, ``rollup_nation_day``."""
    if fresh and scope.kind == "nation":
        return (("rollup_nation_day", MONTH_COLUMNS, {}),)
    return DAY_GROUPS


async def _summed(db: Database, scope: Scope, start: DayLike,
                  end: DayLike) -> dict[str, int]:
    months, edges, fresh = await _split_fresh(db, start, end)
    cond, p = scope.where()
    jobs: list[tuple[dict[str, str], Any]] = []
    if months:
        jobs.append(({}, db.fetch_one(
            f"SELECT {_sums(MONTH_COLUMNS)} FROM {_month_table(scope)} WHERE {cond} "
            "AND month >= :m1 AND month <= :m2", {**p, "m1": months[0], "m2": months[1]})))
    for a, b in edges:
        for table, cols, renames in _day_groups(scope, fresh):
            jobs.append((renames, db.fetch_one(
                f"SELECT {_sums(cols)} FROM {table} WHERE {cond} AND day >= :a AND day <= :b",
                {**p, "a": a, "b": b})))
    t = {c: 0 for c in MONTH_COLUMNS}
    for (renames, _), row in zip(jobs, await asyncio.gather(*(j for _, j in jobs)),
                                 strict=True):
        for k, v in (row or {}).items():
            t[renames.get(k, k)] += int(v or 0)
    return t


async def totals(db: Database, scope: Scope, start: DayLike, end: DayLike,
                 with_dropped: bool = True) -> dict[str, Any]:
    """Summed counters and derived rates over the range: traffic, DVC, dossiers, KPIs.

    Keys: every column of ``rollup_month.SITE_COLUMNS``; DVC ``views submissions other_steps ratings
    rating_sum ratings_good``; dossiers ``dossier_events received received_online
    received_in_person full_online paid_online paid_in_person results``; rates
    ``bounce_rate avg_duration_s pageviews_per_visit dvc_conversion satisfaction
    avg_rating online_rate full_online_rate online_payment_rate``; ``dropped``.
    Whole months of the range are read from ``rollup_site_month`` (the nation:
    ``rollup_nation_month``) while they are fresh. ``with_dropped=False`` leaves out
    ``dropped`` (read daily: a year of the nation's counters costs ~10 ms).
    """
    if not with_dropped:
        return derive(dict(await _summed(db, scope, start, end)))
    t, dropped_n = await asyncio.gather(_summed(db, scope, start, end),
                                        dropped_total(db, scope, start, end))
    out: dict[str, Any] = dict(t)
    out["dropped"] = dropped_n
    return derive(out)


async def month_series(
    db: Database, scope: Scope, start: DayLike, end: DayLike, columns: tuple[str, ...],
) -> list[dict[str, Any]]:
    """One row per calendar month the range touches (``{"month": 'YYYY-MM', *columns}``,
    zeros where no data; edge months hold only the range's days): a long range's chart."""
    months, edges, fresh = await _split_fresh(db, start, end)
    cond, p = scope.where()
    a, b = as_day(start), as_day(end)
    series: dict[str, dict[str, Any]] = {}
    m = a.replace(day=1)
    while m <= b:
        series[m.isoformat()[:7]] = {"month": m.isoformat()[:7], **{c: 0 for c in columns}}
        m = (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    jobs: list[tuple[dict[str, str], Any]] = []
    if months:
        jobs.append(({}, db.fetch_all(
            f"SELECT month, {_sums(columns)} FROM {_month_table(scope)} WHERE {cond} "
            "AND month >= :m1 AND month <= :m2 GROUP BY month",
            {**p, "m1": months[0], "m2": months[1]})))
    for x, y in edges:
        for table, cols, renames in _day_groups(scope, fresh):
            wanted = tuple(c for c in cols if renames.get(c, c) in columns)
            if wanted:
                jobs.append((renames, db.fetch_all(
                    f"SELECT substr(day, 1, 7) AS month, {_sums(wanted)} FROM {table} "
                    f"WHERE {cond} AND day >= :a AND day <= :b GROUP BY substr(day, 1, 7)",
                    {**p, "a": x, "b": y})))
    for (renames, _), rows in zip(jobs, await asyncio.gather(*(j for _, j in jobs)),
                                  strict=True):
        for r in rows:
            row = series.get(r["month"])
            if row is None:
                continue
            for k, v in r.items():
                if k != "month":
                    row[renames.get(k, k)] += int(v or 0)
    return list(series.values())


async def kpis(db: Database, scope: Scope, start: DayLike, end: DayLike) -> dict[str, Any]:
    """The national KPIs: online, full-process online and online payment rates of dossiers,
    DVC view→submission conversion, satisfaction (share of ratings ≥ 4)."""
    t = await totals(db, scope, start, end)
    keys = ("online_rate", "full_online_rate", "online_payment_rate", "dvc_conversion",
            "satisfaction", "received", "received_online", "full_online", "paid_online",
            "paid_in_person", "views", "submissions", "ratings", "ratings_good")
    return {k: t[k] for k in keys}


async def timeseries(
    db: Database, scope: Scope, start: DayLike, end: DayLike,
    metrics: tuple[str, ...] = ("visits", "visitors", "pageviews", "bounces", "duration_ms"),
) -> list[dict[str, Any]]:
    """One row per day of the range (days without data are zeros): ``{"day", *metrics}``.

    ``metrics`` may name columns of ``rollup_site_day``, ``rollup_dvc`` or
    ``rollup_dossiers`` (``events`` means site events; dossier events are ``dossier_events``).
    """
    cond, p = _range(scope, start, end)
    series: dict[str, dict[str, Any]] = {
        d: {"day": d, **{m: 0 for m in metrics}} for d in days_between(start, end)
    }
    groups = DAY_GROUPS
    if scope.kind == "nation" and await months_fresh(db):
        # the national daily totals, one row a day ("events" there: site events)
        groups = (("rollup_nation_day", MONTH_COLUMNS, {}),)
    unknown = set(metrics)
    for table, columns, renames in groups:
        wanted = [c for c in columns if renames.get(c, c) in metrics]
        if table == "rollup_dossiers":
            wanted = [c for c in wanted if c != "events" or "dossier_events" in metrics]
        if not wanted:
            continue
        unknown -= {renames.get(c, c) for c in wanted}
        sql = (f"SELECT day, {_sums(tuple(wanted))} FROM {table} WHERE {cond} "
               "GROUP BY day ORDER BY day")
        for row in await db.fetch_all(sql, p):
            for c in wanted:
                series[row["day"]][renames.get(c, c)] = int(row[c] or 0)
    if unknown:
        raise ValueError(f"unknown metric(s): {', '.join(sorted(unknown))}")
    return list(series.values())


async def top(
    db: Database, scope: Scope, start: DayLike, end: DayLike, dimension: str,
    limit: int = 10, order_by: str | None = None,
) -> list[dict[str, Any]]:
    """Top values of a dimension: ``[{"value", "visits", "pageviews", "bounces",
    "duration_ms", "bounce_rate"}]``, largest first (by pageviews for ``page``, else visits).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {DIMENSIONS}")
    order_by = order_by or ("pageviews" if dimension == "page" else "visits")
    if order_by not in DIMENSION_ORDER:
        raise ValueError(f"cannot order by {order_by!r}")
    cond, p = scope.where()
    months, edges = month_split(start, end)
    parts = []
    if months:
        parts.append(f"SELECT value, {', '.join(DIMENSION_ORDER)} FROM rollup_dimensions_month "
                     f"WHERE dimension = :dim AND {cond} AND month >= :m1 AND month <= :m2")
        p.update(m1=months[0], m2=months[1])
    for i, (a, b) in enumerate(edges):
        parts.append(f"SELECT value, {', '.join(DIMENSION_ORDER)} FROM rollup_dimensions "
                     f"WHERE dimension = :dim AND {cond} AND day >= :a{i} AND day <= :b{i}")
        p.update({f"a{i}": a, f"b{i}": b})
    rows = await db.fetch_all(
        f"SELECT value, {_sums(DIMENSION_ORDER)} FROM ({' UNION ALL '.join(parts)}) u "
        f"GROUP BY value ORDER BY {order_by} DESC, value LIMIT :limit",
        {**p, "dim": dimension, "limit": limit},
    )
    out = []
    for r in rows:
        item = {"value": r["value"], **_ints(r, DIMENSION_ORDER)}
        item["bounce_rate"] = ratio(item["bounces"], item["visits"])
        out.append(item)
    return out


def _delta(cur: Any, prev: Any) -> dict[str, Any] | None:
    if not isinstance(cur, int | float) or not isinstance(prev, int | float):
        return None
    return {"current": cur, "previous": prev, "change": cur - prev,
            "pct": None if not prev else (cur - prev) / prev}


async def compare(db: Database, scope: Scope, start: DayLike, end: DayLike,
                  with_dropped: bool = True) -> dict[str, Any]:
    """Totals of the range and of the previous period of equal length, with deltas."""
    pstart, pend = previous_period(start, end)
    cur, prev = await asyncio.gather(totals(db, scope, start, end, with_dropped),
                                     totals(db, scope, pstart, pend, with_dropped))
    return compared(cur, prev, pstart, pend)


def compared(cur: dict[str, Any], prev: dict[str, Any], pstart: str,
             pend: str) -> dict[str, Any]:
    """:func:`compare`'s result from two :func:`totals` results."""
    deltas = {k: d for k in cur if (d := _delta(cur[k], prev.get(k))) is not None}
    return {"current": cur, "previous": prev, "previous_start": pstart, "previous_end": pend,
            "deltas": deltas}


async def dropped_total(db: Database, scope: Scope, start: DayLike, end: DayLike) -> int:
    """Refused hits and dossier events over the range (``totals()["dropped"]``)."""
    cond, p = _range(scope, start, end)
    row = await db.fetch_one(f"SELECT COALESCE(SUM(n), 0) AS n FROM dropped WHERE {cond}", p)
    return int((row or {}).get("n") or 0)


async def dvc_services(
    db: Database, scope: Scope, start: DayLike, end: DayLike, limit: int | None = None,
) -> list[dict[str, Any]]:
    """Per service code: views, submissions, other steps, ratings, conversion, satisfaction;
    most viewed first."""
    cond, p = _range(scope, start, end)
    sql = (f"SELECT service, {_sums(DVC_COLUMNS)} FROM rollup_dvc WHERE {cond} "
           "GROUP BY service ORDER BY views DESC, submissions DESC, service")
    if limit is not None:
        sql += " LIMIT :limit"
        p["limit"] = limit
    return [derive({"service": r["service"], **_ints(r, DVC_COLUMNS)})
            for r in await db.fetch_all(sql, p)]


async def dossier_services(
    db: Database, scope: Scope, start: DayLike, end: DayLike, limit: int | None = None,
) -> list[dict[str, Any]]:
    """Per service code: dossier counters and rates; most received first."""
    cond, p = _range(scope, start, end)
    sql = (f"SELECT service, {_sums(DOSSIER_COLUMNS)} FROM rollup_dossiers WHERE {cond} "
           "GROUP BY service ORDER BY received DESC, events DESC, service")
    if limit is not None:
        sql += " LIMIT :limit"
        p["limit"] = limit
    return [derive({"service": r["service"], **_ints(r, DOSSIER_COLUMNS)})
            for r in await db.fetch_all(sql, p)]


async def service_listing(
    db: Database, service: str, start: DayLike, end: DayLike,
) -> list[dict[str, Any]]:
    """One service code across agencies (a /dvc page): per agency, DVC and dossier
    counters with conversion, satisfaction and dossier rates; most viewed first."""
    p = {"service": service, "start": as_day(start).isoformat(), "end": as_day(end).isoformat()}
    by_agency: dict[str, dict[str, Any]] = {}
    for table, columns in (("rollup_dvc", DVC_COLUMNS), ("rollup_dossiers", DOSSIER_COLUMNS)):
        sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in columns)
        rows = await db.fetch_all(
            f"SELECT s.agency_code, a.name AS agency_name, {sums} FROM {table} r "
            "JOIN sites s ON s.id = r.site_id LEFT JOIN agencies a ON a.code = s.agency_code "
            "WHERE r.service = :service AND r.day >= :start AND r.day <= :end "
            "GROUP BY s.agency_code, a.name", p)
        for r in rows:
            item = by_agency.setdefault(r["agency_code"], {
                "agency_code": r["agency_code"], "agency_name": r["agency_name"] or "",
                **{c: 0 for c in DVC_COLUMNS}, **{c: 0 for c in DOSSIER_COLUMNS}})
            item.update(_ints(r, columns))
    out = [derive(item) for item in by_agency.values()]
    out.sort(key=lambda i: (-i["views"], -i["received"], i["agency_code"]))
    return out


async def rankings(
    db: Database, start: DayLike, end: DayLike, kind: str = "province", by: str = "visits",
) -> list[dict[str, Any]]:
    """Agencies of one kind (``province`` or ``ministry``) ranked by ``visits`` or by
    ``full_online_rate`` (agencies with no received dossier rank last, rate ``None``).
    Every agency of the kind is listed, with zeros when it has no data; rank starts at 1."""
    kinds = {"province": PROVINCE_KINDS, "ministry": MINISTRY_KINDS}.get(kind)
    if kinds is None:
        raise ValueError("kind must be 'province' or 'ministry'")
    if by not in ("visits", "full_online_rate"):
        raise ValueError("by must be 'visits' or 'full_online_rate'")
    p = {"start": as_day(start).isoformat(), "end": as_day(end).isoformat(),
         "k1": kinds[0], "k2": kinds[1]}
    agencies = await db.fetch_all(
        "SELECT code, name, kind FROM agencies WHERE kind IN (:k1, :k2) "
        "AND effective_to IS NULL ORDER BY code", p)
    items = {a["code"]: {"agency_code": a["code"], "agency_name": a["name"], "kind": a["kind"],
                         "visits": 0, "visitors": 0, "pageviews": 0, "received": 0,
                         "received_online": 0, "full_online": 0} for a in agencies}
    queries = (
        ("rollup_site_day", ("visits", "visitors", "pageviews")),
        ("rollup_dossiers", ("received", "received_online", "full_online")),
    )
    for table, columns in queries:
        sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in columns)
        rows = await db.fetch_all(
            f"SELECT s.agency_code, {sums} FROM {table} r JOIN sites s ON s.id = r.site_id "
            "WHERE r.day >= :start AND r.day <= :end GROUP BY s.agency_code", p)
        for r in rows:
            if r["agency_code"] in items:
                items[r["agency_code"]].update(_ints(r, columns))
    out = list(items.values())
    for i in out:
        i["online_rate"] = ratio(i["received_online"], i["received"])
        i["full_online_rate"] = ratio(i["full_online"], i["received"])
    if by == "visits":
        out.sort(key=lambda i: (-i["visits"], i["agency_code"]))
    else:
        out.sort(key=lambda i: (i["full_online_rate"] is None, -(i["full_online_rate"] or 0),
                                -i["received"], i["agency_code"]))
    for n, i in enumerate(out, 1):
        i["rank"] = n
    return out


async def dropped(
    db: Database, scope: Scope, start: DayLike, end: DayLike,
) -> list[dict[str, Any]]:
    """Refused hits and dossier events by reason: ``[{"reason", "n"}]``, largest first.
    (The nation scope includes site 0: hits whose site id was missing or unknown.)"""
    cond, p = _range(scope, start, end)
    rows = await db.fetch_all(
        f"SELECT reason, SUM(n) AS n FROM dropped WHERE {cond} GROUP BY reason "
        "ORDER BY n DESC, reason", p)
    return [{"reason": r["reason"], "n": int(r["n"])} for r in rows]


async def dashboard(
    db: Database, scope: Scope, start: DayLike, end: DayLike, top_n: int = 10,
) -> dict[str, Any]:
    """Everything a dashboard page shows: totals with comparison, daily series, top-N of
    every dimension, DVC services, dossier services, dropped by reason. The queries run
    concurrently (the store's connection pool answers several at once)."""
    comp, series, dvc, dos, drops, *tops = await asyncio.gather(
        compare(db, scope, start, end),
        timeseries(db, scope, start, end),
        dvc_services(db, scope, start, end, top_n),
        dossier_services(db, scope, start, end, top_n),
        dropped(db, scope, start, end),
        *(top(db, scope, start, end, d, top_n) for d in DIMENSIONS),
    )
    return {
        "scope": {"kind": scope.kind, "key": scope.key},
        "start": as_day(start).isoformat(), "end": as_day(end).isoformat(),
        "compare": comp, "series": series, "top": dict(zip(DIMENSIONS, tops, strict=True)),
        "dvc": dvc, "dossiers": dos, "dropped": drops,
    }
