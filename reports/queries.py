"""Report queries the metrics API does not answer, over rollup tables only (portable SQL).

- ``install_status``: last day with stored hits (``rollup_site_day.hits``) and last day
  with refused hits (``dropped``) — day resolution, because rollups are daily.
- ``site_totals``: per-site traffic, DVC and dossier counters for a set of sites in one
  query per table (an agency page shows its sites side by side).
- ``procedure_share``: share of procedures (service codes with received dossiers) that had
  at least one full-process online dossier — our measure of "procedures offered
  full-process online", held against the 80 % target. Overall and per day.
- ``registry``: counts of agencies and sites for the overview.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from collector import compliance, metrics
from collector.metrics import Scope, derive, ratio
from collector.store import Database


async def site_row(db: Database, site_id: int) -> dict[str, Any] | None:
    return await db.fetch_one(
        "SELECT s.id, s.agency_code, s.kind, s.name, s.registered_on, s.required, "
        "a.name AS agency_name FROM sites s LEFT JOIN agencies a ON a.code = s.agency_code "
        "WHERE s.id = :id", {"id": site_id})


async def site_hosts(db: Database, site_id: int) -> list[str]:
    rows = await db.fetch_all(
        "SELECT host FROM site_hosts WHERE site_id = :id ORDER BY host", {"id": site_id})
    return [r["host"] for r in rows]


async def agency_row(db: Database, code: str) -> dict[str, Any] | None:
    return await db.fetch_one(
        "SELECT code, kind, name, merged_from FROM agencies WHERE code = :c", {"c": code})


async def agency_sites(db: Database, code: str) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT id, kind, name, required FROM sites WHERE agency_code = :c ORDER BY id",
        {"c": code})


async def agency_names(db: Database) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await db.fetch_all("SELECT code, name FROM agencies")}


async def install_status(db: Database, site_id: int) -> dict[str, Any]:
    """Last day with hits, last refused hit, and the latest scan with its findings (the
    compliance module's messages, ``collector.compliance``, read-only)."""
    hit, drop, scan = await asyncio.gather(
        db.fetch_one("SELECT MAX(day) AS day FROM rollup_site_day WHERE site_id = :s "
                     "AND hits > 0", {"s": site_id}),
        db.fetch_one("SELECT day, reason, n FROM dropped WHERE site_id = :s "
                     "ORDER BY day DESC, n DESC LIMIT 1", {"s": site_id}),
        latest_scan(db, site_id))
    last_hit = (hit or {}).get("day")
    if scan is not None:
        scan["messages"] = compliance._scan_findings(site_id, scan, 1 if last_hit else 0)
    return {"last_hit_day": last_hit,
            "last_dropped_day": (drop or {}).get("day"),
            "last_dropped_reason": (drop or {}).get("reason"), "scan": scan}


async def latest_scan(db: Database, site_id: int) -> dict[str, Any] | None:
    """The site's latest scan row, ``findings`` decoded, ``commented_pages`` added."""
    scan = await db.fetch_one(
        "SELECT ts, base_url, home_status, snippet, site_id_found, site_id_state, "
        "tracker_url, pages, pages_ok, pages_snippet, findings FROM scans "
        "WHERE site_id = :s ORDER BY ts DESC LIMIT 1", {"s": site_id})
    if scan is None:
        return None
    scan["findings"] = json.loads(scan["findings"] or "[]")
    if "snippet_commented" in scan["findings"]:
        scan["commented_pages"] = [int(r["n"]) for r in await db.fetch_all(
            "SELECT n FROM scan_pages WHERE site_id = :s AND ts = :t "
            "AND snippet = 'commented'", {"s": site_id, "t": scan["ts"]})]
    return scan


SITE_TOTALS = ("visits", "visitors", "pageviews", "bounces", "duration_ms", "views",
               "submissions", "other_steps", "ratings", "rating_sum", "ratings_good",
               "received", "received_online", "full_online", "paid_online", "paid_in_person")


async def site_totals(db: Database, site_ids: list[int], start: str,
                      end: str, scope: Scope | None = None) -> dict[int, dict[str, Any]]:
    """Per site of ``site_ids`` (all of ``scope``'s sites, e.g. one agency's): traffic, DVC
    and dossier counters with rates (``metrics.per_site``: whole months read monthly)."""
    out: dict[int, dict[str, Any]] = {i: {c: 0 for c in SITE_TOTALS} for i in site_ids}
    if not site_ids:
        return out
    if scope is None:
        scope = Scope.site(site_ids[0]) if len(site_ids) == 1 else Scope.nation()
    for sid, t in (await metrics.per_site(db, scope, start, end, SITE_TOTALS)).items():
        if sid in out:
            out[sid].update(t)
    return {i: derive(t) for i, t in out.items()}


def _dossier_union(months: tuple[str, str] | None, edges: list[tuple[str, str]], cond: str,
                   cols: str) -> tuple[str, dict[str, Any]]:
    """``rollup_dossiers_month`` over whole months + ``rollup_dossiers`` over edge days, as
    rows of ``month, service, <cols>``."""
    parts, p = [], {}
    if months:
        parts.append(f"SELECT month, service, {cols} FROM rollup_dossiers_month WHERE {cond} "
                     "AND month >= :m1 AND month <= :m2")
        p.update(m1=months[0], m2=months[1])
    for i, (a, b) in enumerate(edges):
        parts.append(f"SELECT substr(day, 1, 7) AS month, service, {cols} FROM "
                     f"rollup_dossiers WHERE {cond} AND day >= :a{i} AND day <= :b{i}")
        p.update({f"a{i}": a, f"b{i}": b})
    return " UNION ALL ".join(parts), p


async def _procedure_counts(db: Database, scope: Scope, start: str, end: str,
                            by: str = "") -> list[dict[str, Any]]:
    """Procedures (service codes with received dossiers) and those with a full-process
    online one, over the range, or per ``by`` ('month') when given."""
    cond, p = scope.where()
    union, up = _dossier_union(*await metrics.split_range(db, start, end), cond,
                               "received, full_online")
    key = f"{by}, " if by else ""
    return await db.fetch_all(
        f"SELECT {key}COUNT(*) AS n, COALESCE(SUM(CASE WHEN f > 0 THEN 1 ELSE 0 END), 0) "
        f"AS full_n FROM (SELECT {key}service, SUM(full_online) AS f FROM ({union}) u "
        f"GROUP BY {key}service HAVING SUM(received) > 0) x"
        + (f" GROUP BY {by}" if by else ""), {**p, **up})


async def procedure_share(db: Database, scope: Scope, start: str, end: str) -> dict[str, Any]:
    row = (await _procedure_counts(db, scope, start, end) or [{}])[0]
    n, f = int(row.get("n") or 0), int(row.get("full_n") or 0)
    return {"procedures": n, "procedures_full_online": f, "share": ratio(f, n)}


async def procedure_share_by_day(db: Database, scope: Scope, start: str,
                                 end: str) -> dict[str, float | None]:
    cond, p = scope.where()
    rows = await db.fetch_all(
        "SELECT day, COUNT(*) AS n, SUM(CASE WHEN f > 0 THEN 1 ELSE 0 END) AS full_n FROM "
        "(SELECT day, service, SUM(full_online) AS f FROM rollup_dossiers "
        f"WHERE {cond} AND day >= :start AND day <= :end GROUP BY day, service "
        "HAVING SUM(received) > 0) x GROUP BY day", {**p, "start": start, "end": end})
    return {r["day"]: ratio(int(r["full_n"] or 0), int(r["n"])) for r in rows}


async def procedure_share_by_month(db: Database, scope: Scope, start: str,
                                   end: str) -> dict[str, float | None]:
    """As :func:`procedure_share` per calendar month ('YYYY-MM'; edge months: their days
    in the range only)."""
    rows = await _procedure_counts(db, scope, start, end, by="month")
    return {r["month"]: ratio(int(r["full_n"] or 0), int(r["n"])) for r in rows}


async def registry_counts(db: Database) -> dict[str, int]:
    row = await db.fetch_one(
        "SELECT COUNT(*) AS sites, COUNT(DISTINCT agency_code) AS agencies FROM sites")
    return {"sites": int((row or {}).get("sites") or 0),
            "agencies": int((row or {}).get("agencies") or 0)}


async def services_list(db: Database, start: str, end: str, limit: int,
                        offset: int = 0) -> list[dict[str, Any]]:
    """Service codes across all agencies: views, submissions, agencies offering it,
    dossiers received and full-process online; most viewed first."""
    p = {"start": start, "end": end, "n": limit, "m": offset}
    rows = await db.fetch_all(
        "SELECT service, SUM(views) AS views, SUM(submissions) AS submissions, "
        "SUM(received) AS received, SUM(full_online) AS full_online, "
        "COUNT(DISTINCT agency_code) AS agencies FROM ("
        " SELECT d.service, d.views, d.submissions, 0 AS received, 0 AS full_online, "
        " s.agency_code FROM rollup_dvc d JOIN sites s ON s.id = d.site_id "
        " WHERE d.day >= :start AND d.day <= :end "
        " UNION ALL SELECT o.service, 0, 0, o.received, o.full_online, s.agency_code "
        " FROM rollup_dossiers o JOIN sites s ON s.id = o.site_id "
        " WHERE o.day >= :start AND o.day <= :end) u "
        "GROUP BY service ORDER BY views DESC, received DESC, service LIMIT :n OFFSET :m", p)
    out = []
    for r in rows:
        item = {k: (r[k] if k == "service" else int(r[k] or 0)) for k in
                ("service", "views", "submissions", "received", "full_online", "agencies")}
        item["dvc_conversion"] = ratio(item["submissions"], item["views"])
        item["full_online_rate"] = ratio(item["full_online"], item["received"])
        out.append(item)
    return out


RANKING_COLUMNS = ("visits", "visitors", "pageviews", "received", "received_online",
                   "full_online")


async def agency_rankings(db: Database, start: str, end: str,
                          ) -> dict[str, list[dict[str, Any]]]:
    """Every current province/city and ministry with its visits and dossier figures, from
    one narrow per-site read (``metrics.per_site``: whole months from the monthly table).
    Returns ``{"province": [...], "ministry": [...]}`` unsorted, same fields as
    ``metrics.rankings``.
    """
    cols = RANKING_COLUMNS
    agencies, sites, sums = await asyncio.gather(
        db.fetch_all("SELECT code, name, kind FROM agencies WHERE effective_to IS NULL "
                     "ORDER BY code"),
        db.fetch_all("SELECT id, agency_code FROM sites"),
        metrics.per_site(db, Scope.nation(), start, end, cols))
    kinds = {**{k: "province" for k in metrics.PROVINCE_KINDS},
             **{k: "ministry" for k in metrics.MINISTRY_KINDS}}
    items = {a["code"]: {"agency_code": a["code"], "agency_name": a["name"], "kind": a["kind"],
                         **{c: 0 for c in cols}}
             for a in agencies if a["kind"] in kinds}
    for s in sites:
        item, t = items.get(s["agency_code"]), sums.get(int(s["id"]))
        if item is not None and t is not None:
            for c in cols:
                item[c] += t[c]
    out: dict[str, list[dict[str, Any]]] = {"province": [], "ministry": []}
    for i in items.values():
        i["online_rate"] = ratio(i["received_online"], i["received"])
        i["full_online_rate"] = ratio(i["full_online"], i["received"])
        out[kinds[i["kind"]]].append(i)
    return out


def ranked(items: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Copies of ``items`` in ranking order (as ``metrics.rankings``), ``rank`` from 1."""
    if by == "visits":
        order = sorted(items, key=lambda i: (-i["visits"], i["agency_code"]))
    else:
        order = sorted(items, key=lambda i: (i["full_online_rate"] is None,
                                             -(i["full_online_rate"] or 0), -i["received"],
                                             i["agency_code"]))
    return [{**i, "rank": n} for n, i in enumerate(order, 1)]
