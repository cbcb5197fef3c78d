"""Page data: metrics API results → tables, KPI cards and SVG charts for one page.

Each ``*_view`` returns a dict for its template: ``tables`` (name → :class:`Table`, the
same objects the CSV/JSON downloads use), ``charts`` (ready SVG markup) and figures.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from collector import metrics
from collector.config import Config
from collector.metrics import Scope
from collector.store import Database
from reports import queries
from reports.charts import RefLine, bar_chart, funnel, line_chart
from reports.i18n import SITE_KINDS, Formats
from reports.periods import Period
from reports.tables import Column, Table

SOURCES = {"direct": "Direct", "search": "Search engines", "social": "Social networks",
           "gov": "Government portals", "campaign": "Campaigns", "other": "Other"}
DEVICES = {"desktop": "Desktop", "mobile": "Mobile", "tablet": "Tablet", "other": "Other"}
MONTHLY_CHART_DAYS = 92  # the overview charts longer periods per month
KPI_KEYS = ("visits", "visitors", "pageviews", "bounce_rate", "avg_duration_s")


def kpi_cards(cmp: dict[str, Any], f: Formats) -> list[dict[str, Any]]:
    cur, deltas = cmp["current"], cmp["deltas"]
    spec = (("visits", "Visits", f.num), ("visitors", "Visitors", f.num),
            ("pageviews", "Page views", f.num), ("bounce_rate", "Bounce rate", f.pct),
            ("avg_duration_s", "Visit duration", f.dur))
    cards = []
    for key, label, fmt in spec:
        d = deltas.get(key)
        pct = d["pct"] if d else None
        # for the bounce rate, lower is better
        good = None if pct is None or pct == 0 else (pct < 0 if key == "bounce_rate" else pct > 0)
        cards.append({"key": key, "label": f.t(label), "value": fmt(cur.get(key)),
                      "raw": cur.get(key), "delta": f.delta(pct), "good": good})
    return cards


def _dim_label(dim: str, value: str, f: Formats, names: dict[str, str]) -> str:
    if dim == "source":
        return f.t(SOURCES.get(value, value))
    if dim == "device":
        return f.t(DEVICES.get(value, value))
    if dim == "province":
        return names.get(value, value) if value else f.t("unknown")
    if dim == "hour":
        return f"{value}:00"
    return value or f.t("unknown")


def dim_table(name: str, title: str, head: str, dim: str, rows: list[dict[str, Any]],
              total: int, f: Formats, names: dict[str, str]) -> Table:
    metric = "pageviews" if dim == "page" else "visits"
    cols = [Column("label", f.t(head)), Column(metric, f.t("Page views" if metric ==
                                                        "pageviews" else "Visits"), "int"),
            Column("share", f.t("Share"), "pct")]
    if dim == "entry":
        cols[2] = Column("bounce_rate", f.t("Bounce rate"), "pct")
    out = []
    for r in rows:
        out.append({"value": r["value"], "label": _dim_label(dim, r["value"], f, names),
                    metric: r[metric], "share": metrics.ratio(r[metric], total),
                    "bounce_rate": r.get("bounce_rate")})
    return Table(name, f.t(title), cols, out)


def _point_label(key: str, f: Formats) -> str:
    """A chart point: a day ('YYYY-MM-DD') as dd/mm (vi) or mm-dd, a month ('YYYY-MM') as
    mm/yyyy (vi) or yyyy-mm."""
    if len(key) == 7:
        return f"{key[5:]}/{key[:4]}" if f.lang == "vi" else key
    return f.date(key)[:5] if f.lang == "vi" else key[5:]


def series_chart(series: list[dict[str, Any]], prev: list[dict[str, Any]] | None,
                 f: Formats, title: str) -> Markup:
    labels = [f.date(r["day"])[:5] if f.lang == "vi" else r["day"][5:] for r in series]
    lines: list[tuple[str, list[float]]] = [(f.t("Visits"), [r["visits"] for r in series])]
    if prev is not None:
        lines.append((f.t("Previous period"), [r["visits"] for r in prev][: len(series)]))
    return line_chart(labels, lines, title=title, fmt=lambda v: f.num(v), integer=True)


def dvc_tables(dvc: list[dict[str, Any]], dos: list[dict[str, Any]], f: Formats,
               names: dict[str, str] | None = None) -> dict[str, Table]:
    t1 = Table("dvc", f.t("DVC services"), [
        Column("service", f.t("Service code"), "code"), Column("views", f.t("Views"), "int"),
        Column("submissions", f.t("Submissions"), "int"),
        Column("dvc_conversion", f.t("Conversion"), "pct"),
        Column("ratings", f.t("Ratings"), "int"),
        Column("satisfaction", f.t("Satisfaction"), "pct")], dvc)
    t2 = Table("dossiers", f.t("Dossier KPIs"), [
        Column("service", f.t("Service code"), "code"),
        Column("received", f.t("Received"), "int"),
        Column("received_online", f.t("Online"), "int"),
        Column("received_in_person", f.t("In person"), "int"),
        Column("online_rate", f.t("Online rate"), "pct"),
        Column("full_online_rate", f.t("Full-process rate"), "pct"),
        Column("online_payment_rate", f.t("Online payment"), "pct"),
        Column("results", f.t("Results returned"), "int")], dos)
    return {"dvc": t1, "dossiers": t2}


def funnel_chart(cur: dict[str, Any], f: Formats) -> Markup | None:
    if not cur["views"] and not cur["received_online"]:
        return None
    steps = [(f.t("Procedure views"), cur["views"]), (f.t("Dossiers submitted"),
                                                      cur["submissions"])]
    if cur["received"]:
        steps += [(f.t("Received online"), cur["received_online"]),
                  (f.t("Results returned"), cur["results"])]
    return funnel(steps, title=f.t("View → submission funnel"), fmt=lambda v: f.num(v),
                  pct=lambda r: f.pct(r), width=440)


def dropped_table(rows: list[dict[str, Any]], f: Formats) -> Table:
    return Table("dropped", f.t("Dropped traffic"), [
        Column("reason", f.t("Reason")), Column("n", f.t("Count"), "int")], rows)


async def site_view(db: Database, site_id: int, period: Period, f: Formats) -> dict[str, Any]:
    s, e = period.start.isoformat(), period.end.isoformat()
    scope = Scope.site(site_id)
    dash = await metrics.dashboard(db, scope, s, e, top_n=10)
    cmp = dash["compare"]
    cur = cmp["current"]
    names = await queries.agency_names(db)
    prev_series = await metrics.timeseries(db, scope, cmp["previous_start"], cmp["previous_end"],
                                           ("visits",))
    dims = (("pages", "Top pages", "Page", "page"), ("entry", "Entry pages", "Page", "entry"),
            ("sources", "Sources", "Source", "source"),
            ("referrers", "Referrers", "Source", "referrer"),
            ("campaigns", "Campaigns", "Campaign", "campaign"),
            ("devices", "Devices", "Device", "device"),
            ("browsers", "Browsers", "Browser", "browser"),
            ("os", "Operating systems", "Operating system", "os"),
            ("provinces", "Provinces", "Province", "province"))
    tables: dict[str, Table] = {}
    for name, title, head, dim in dims:
        total = cur["pageviews"] if dim == "page" else cur["visits"]
        tables[name] = dim_table(name, title, head, dim, dash["top"][dim], total, f, names)
    hours = {r["value"]: r["visits"] for r in
             await metrics.top(db, scope, s, e, "hour", limit=24)}
    hour_rows = [{"hour": f"{h:02d}", "visits": hours.get(f"{h:02d}", 0)} for h in range(24)]
    tables["hours"] = Table("hours", f.t("Hours of day"), [
        Column("hour", f.t("Hour")), Column("visits", f.t("Visits"), "int")], hour_rows)
    tables.update(dvc_tables(dash["dvc"], dash["dossiers"], f))
    tables["dropped"] = dropped_table(dash["dropped"], f)
    tables["daily"] = Table("daily", f.t("Visits per day"), [
        Column("day", "day", "date"), Column("visits", f.t("Visits"), "int"),
        Column("visitors", f.t("Visitors"), "int"), Column("pageviews", f.t("Page views"), "int"),
        Column("bounces", "bounces", "int")], dash["series"])
    charts = {
        "series": series_chart(dash["series"], prev_series, f, f.t("Visits per day")),
        "hours": line_chart([r["hour"] for r in hour_rows],
                            [(f.t("Visits"), [r["visits"] for r in hour_rows])],
                            title=f.t("Hours of day"), fmt=lambda v: f.num(v), height=150,
                            integer=True),
        "funnel": funnel_chart(cur, f),
        "devices": bar_chart([(r["label"], r["visits"]) for r in tables["devices"].rows],
                             title=f.t("Devices"), fmt=lambda v: f.num(v), label_width=140,
                             width=480) if tables["devices"].rows else None,
    }
    return {"compare": cmp, "cur": cur, "cards": kpi_cards(cmp, f), "tables": tables,
            "charts": charts}


async def agency_view(db: Database, code: str, period: Period, f: Formats) -> dict[str, Any]:
    s, e = period.start.isoformat(), period.end.isoformat()
    scope = Scope.agency(code)
    cmp = await metrics.compare(db, scope, s, e)
    sites = await queries.agency_sites(db, code)
    per_site = await queries.site_totals(db, [int(x["id"]) for x in sites], s, e, scope)
    rows = []
    for x in sites:
        t = per_site[int(x["id"])]
        rows.append({"id": x["id"], "name": x["name"],
                     "kind": f.t(SITE_KINDS.get(x["kind"], x["kind"])), **t})
    cur = cmp["current"]
    total = {"id": "", "name": f.t("Total"), "kind": "", **cur}
    site_table = Table("sites", f.t("Sites"), [
        Column("id", "ID", "code"), Column("name", f.t("Site")), Column("kind", f.t("Kind")),
        Column("visits", f.t("Visits"), "int"), Column("visitors", f.t("Visitors"), "int"),
        Column("pageviews", f.t("Page views"), "int"),
        Column("bounce_rate", f.t("Bounce rate"), "pct"),
        Column("avg_duration_s", f.t("Avg. duration"), "dur"),
        Column("submissions", f.t("Submissions"), "int"),
        Column("received", f.t("Received"), "int"),
        Column("full_online_rate", f.t("Full-process rate"), "pct")], rows,
        link=lambda r: f"/sites/{r['id']}")
    series = await metrics.timeseries(db, scope, s, e, ("visits",))
    prev = await metrics.timeseries(db, scope, cmp["previous_start"], cmp["previous_end"],
                                    ("visits",))
    dvc = await metrics.dvc_services(db, scope, s, e, 20)
    dos = await metrics.dossier_services(db, scope, s, e, 20)
    tables = {"sites": site_table, **dvc_tables(dvc, dos, f)}
    charts = {"series": series_chart(series, prev, f, f.t("Visits per day")),
              "funnel": funnel_chart(cur, f),
              "sites": bar_chart([(r["name"], r["visits"]) for r in rows], title=f.t("Visits"),
                                 fmt=lambda v: f.num(v), width=1100, label_width=280)
              if rows else None}
    return {"compare": cmp, "cur": cur, "cards": kpi_cards(cmp, f), "tables": tables,
            "charts": charts, "total": total}


def ranking_table(name: str, title: str, rows: list[dict[str, Any]], f: Formats,
                  by: str) -> Table:
    cols = [Column("rank", f.t("Rank"), "int"), Column("agency_name", f.t("Agency"))]
    if by == "visits":
        cols += [Column("visits", f.t("Visits"), "int"),
                 Column("pageviews", f.t("Page views"), "int")]
    else:
        cols += [Column("received", f.t("Received"), "int"),
                 Column("online_rate", f.t("Online"), "pct"),
                 Column("full_online_rate", f.t("Full-process"), "pct")]
    return Table(name, f.t(title), cols, rows, link=lambda r: f"/agencies/{r['agency_code']}")


async def overview_view(db: Database, config: Config, period: Period,
                        f: Formats) -> dict[str, Any]:
    s, e = period.start.isoformat(), period.end.isoformat()
    nation = Scope.nation()
    # independent reads, run side by side (the SQLite pool has 3 connections, PostgreSQL a pool)
    series_cols = ("received", "received_online", "ratings", "ratings_good", "visits")
    # a long range is charted per month (read from the monthly table), a short one per day
    monthly = period.days > MONTHLY_CHART_DAYS
    # (national totals summed from the rankings' per-site read was measured slower: a
    # GROUP BY site_id of every column costs more than a plain SUM and a narrow GROUP BY)
    cmp, figures, share, ts, share_by, registry = await asyncio.gather(
        metrics.compare(db, nation, s, e, with_dropped=False),  # not shown here
        queries.agency_rankings(db, s, e),
        queries.procedure_share(db, nation, s, e),
        metrics.month_series(db, nation, s, e, series_cols) if monthly else
        metrics.timeseries(db, nation, s, e, series_cols),
        queries.procedure_share_by_month(db, nation, s, e) if monthly else
        queries.procedure_share_by_day(db, nation, s, e),
        queries.registry_counts(db),
    )
    cur = cmp["current"]
    tables: dict[str, Table] = {}
    charts: dict[str, Markup | None] = {}
    pct = f.pct
    for kind, label in (("ministry", "ministries"), ("province", "provinces")):
        by_visits = queries.ranked(figures[kind], "visits")
        by_rate = queries.ranked(figures[kind], "full_online_rate")
        tables[f"{kind}_visits"] = ranking_table(
            f"{kind}_visits", f"Ranking of {label} by visits", by_visits, f, "visits")
        tables[f"{kind}_full_online"] = ranking_table(
            f"{kind}_full_online", f"Ranking of {label} by full-process online rate",
            by_rate, f, "rate")
        top_v = [r for r in by_visits if r["visits"]][:15]
        charts[f"{kind}_visits"] = bar_chart(
            [(r["agency_name"], r["visits"]) for r in top_v],
            title=f.t(f"Ranking of {label} by visits"), fmt=lambda v: f.num(v), width=560,
            label_width=190) if top_v else None
        rated = [r for r in by_rate if r["full_online_rate"] is not None][:15]
        refs = [RefLine(cur["full_online_rate"], f"{f.t('Total')} {pct(cur['full_online_rate'])}",
                        "#555")] if cur["full_online_rate"] is not None else []
        charts[f"{kind}_full_online"] = bar_chart(
            [(r["agency_name"], r["full_online_rate"]) for r in rated],
            title=f.t(f"Ranking of {label} by full-process online rate"),
            fmt=lambda v: pct(v), refs=refs, x_max=1.0, width=560,
            label_width=190) if rated else None
    # KPIs per day (per month) held against the national targets (reference lines)
    key = "month" if monthly else "day"
    labels = [_point_label(r[key], f) for r in ts]
    online = [metrics.ratio(r["received_online"], r["received"]) for r in ts]
    sat = [metrics.ratio(r["ratings_good"], r["ratings"]) for r in ts]
    proc = [share_by.get(r[key]) for r in ts]
    targets = [
        {"label": f.t("Dossiers online"), "target": config.target_online_rate,
         "value": cur["online_rate"]},
        {"label": f.t("Procedures full-process online"),
         "target": config.target_full_online_procedures, "value": share["share"]},
        {"label": f.t("Satisfaction"), "target": config.target_satisfaction,
         "value": cur["satisfaction"]},
    ]
    for t in targets:
        t["met"] = None if t["value"] is None else t["value"] >= t["target"]
    charts["targets"] = line_chart(
        labels, [(targets[0]["label"], online), (targets[1]["label"], proc),
                 (targets[2]["label"], sat)],
        title=f.t("National targets"), fmt=lambda v: pct(v, 0), y_max=1.0,
        refs=[RefLine(t["target"], f"{f.t('Target')} {pct(t['target'], 0)}", color)
              for t, color in zip(targets, ("#0b5cab", "#6b7785", "#c0392b"), strict=True)])
    charts["series"] = line_chart(
        labels, [(f.t("Visits"), [r["visits"] for r in ts])],
        title=f.t("Visits per month" if monthly else "Visits per day"), fmt=lambda v: f.num(v),
        integer=True)
    targets_table = Table("targets", f.t("National targets"), [
        Column("label", f.t("Target")), Column("value", f.t("Period"), "pct"),
        Column("target", f.t("Target"), "pct")], targets)
    tables["targets"] = targets_table
    return {"compare": cmp, "cur": cur, "cards": kpi_cards(cmp, f), "tables": tables,
            "charts": charts, "targets": targets, "share": share, "monthly": monthly,
            "registry": registry}


async def dvc_view(db: Database, period: Period, f: Formats, service: str,
                   limit: int, page: int) -> dict[str, Any]:
    s, e = period.start.isoformat(), period.end.isoformat()
    tables: dict[str, Table] = {}
    rows = await queries.services_list(db, s, e, limit, (page - 1) * limit)
    tables["services"] = Table("services", f.t("DVC services"), [
        Column("service", f.t("Service code"), "code"),
        Column("agencies", f.t("Agencies offering it"), "int"),
        Column("views", f.t("Views"), "int"), Column("submissions", f.t("Submissions"), "int"),
        Column("dvc_conversion", f.t("Conversion"), "pct"),
        Column("received", f.t("Dossiers received"), "int"),
        Column("full_online_rate", f.t("Full-process online rate"), "pct")], rows,
        link=lambda r: "/dvc?service=" + quote(r["service"], safe=""))
    chart = None
    if service:
        per = await metrics.service_listing(db, service, s, e)
        tables["by_agency"] = Table("by_agency", f"{f.t('Service code')} {service}", [
            Column("agency_name", f.t("Agency")), Column("views", f.t("Views"), "int"),
            Column("submissions", f.t("Submissions"), "int"),
            Column("dvc_conversion", f.t("Conversion"), "pct"),
            Column("received", f.t("Dossiers received"), "int"),
            Column("online_rate", f.t("Online dossier rate"), "pct"),
            Column("full_online_rate", f.t("Full-process online rate"), "pct"),
            Column("satisfaction", f.t("Satisfaction"), "pct")], per,
            link=lambda r: f"/agencies/{r['agency_code']}")
        conv = [(r["agency_name"], r["dvc_conversion"]) for r in per
                if r["dvc_conversion"] is not None]
        if conv:
            chart = bar_chart(conv, title=f.t("Conversion"), fmt=lambda v: f.pct(v), x_max=1.0,
                              width=1100, label_width=280)
    return {"tables": tables, "chart": chart, "has_next": len(rows) == limit}
