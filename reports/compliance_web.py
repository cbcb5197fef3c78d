"""``/compliance``: the published list of violating sites, per-site "what to fix", exports.

Routes (``routes()``, added to ``reports.web.routes()`` ahead of its ``/api/v1`` mount):

- ``GET /compliance?month=YYYY-MM&state=…&kind=ministry|province`` — per ministry and per
  province: agencies' roll-up and the violating required sites with state and evidence;
  month-by-month history of compliant sites; ``&format=csv|json`` downloads the list.
- ``GET /compliance/latest.csv`` / ``/compliance/latest.json`` — open-data snapshot: every
  required site's state for the current month, from the same cached result the page shows
  (so the same period and states), with ``X-Giamsat-Period: start/end``.
- ``GET /compliance/sites/{id}?month=…`` — one site: state, what to fix (Vietnamese and
  English), evidence, scan history, reconciliation comparisons.
- ``POST /api/v1/compliance/reported`` — agency-reported totals (CSV body with header
  ``site,service,period,count``, or JSON ``{"rows": [...]}``), ``Authorization: Bearer`` API
  token of ``reports.auth``: an admin may report for any site, an agency user for its own
  agency's sites only. The body is limited to ``MAX_REPORTED_BODY`` while it streams.

Query parameters: an absent or empty ``month`` is the current month; any other value must
be an ASCII ``YYYY-MM`` from 2000-01 to 2100-12, and ``state``, ``kind``, ``format`` one of
their values, else a 400 whose reason (``X-Giamsat-Error``) names the parameter — never a
silent fallback, never a 500 (``int()`` and ``str.isdigit()`` accept non-ASCII digits, so
nothing here uses them on raw input). Site ids in paths are ASCII digits, else 404.

Pages go through ``reports.web`` (its base template, language, session and access rules):
they are public while ``compliance`` is in ``GIAMSAT_PUBLIC_PAGES`` (the default), else
they need a signed-in user; the open-data files are always public. Scanned pages
are attacker-controlled: every value (site ids found, tracker URLs, hostnames) reaches the
page through Jinja autoescaping, CSV cells through ``reports.tables.safe_cell``, JSON with
``<``/``>``/``&`` escaped.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.bodies import MalformedLength, read_limited
from collector.compliance import (
    MONTH_MIN,
    STATE_NAMES,
    STATES,
    Result,
    compute,
    month_period,
    monthly_counts,
    months_back,
    parse_month,
)
from collector.tracking import local_day
from reports.i18n import date, datetime_ms, number
from reports.params import path_id
from reports.tables import Column, Table, download
from reports.web import Ctx, Denied, error, page, render, require

KINDS = {"ministry": ("ministry", "ministerial_agency"), "province": ("province", "city")}
HISTORY_MONTHS = 12
MAX_REPORTED_BODY = 2_000_000  # bytes, POST /api/v1/compliance/reported
CACHE_SECONDS = 600.0  # closed months
CACHE_CURRENT_SECONDS = 60.0  # the current month (rollups run every minute)

VI = {
    "Compliance with the monitoring code": "Tình hình gắn mã giám sát",
    "Month": "Tháng", "State": "Trạng thái", "Agency kind": "Loại cơ quan",
    "All": "Tất cả", "Ministries": "Bộ, cơ quan ngang bộ", "Provinces": "Tỉnh, thành phố",
    "Show": "Xem", "Agencies": "Cơ quan", "Agency": "Cơ quan", "Site": "Trang",
    "Kind": "Loại", "Required sites": "Số trang bắt buộc", "Compliant": "Đạt",
    "Violating sites": "Trang vi phạm", "Evidence": "Căn cứ", "Last hit": "Lần ghi nhận cuối",
    "Last scan": "Lần quét cuối", "Gap days": "Số ngày gián đoạn",
    "History": "Diễn biến theo tháng", "Compliant sites": "Số trang đạt",
    "Download": "Tải về", "No violating site.": "Không có trang vi phạm.",
    "What to fix": "Cần khắc phục", "Nothing to fix.": "Không có gì cần khắc phục.",
    "Warnings": "Lưu ý", "Scans": "Các lần quét", "Pages": "Số trang",
    "Snippet": "Mã giám sát", "Findings": "Phát hiện", "Reconciliation": "Đối soát",
    "Service code": "Mã thủ tục", "Compared": "So sánh", "Difference": "Chênh lệch",
    "Tolerance": "Ngưỡng", "Result": "Kết quả", "agree": "khớp", "differ": "lệch",
    "Open data": "Dữ liệu mở", "Home page": "Trang chủ", "Counts": "Số liệu",
    "never": "chưa có", "Site not found": "Không tìm thấy trang",
    "Sites compared": "Các trang được đối chiếu", "feed": "dữ liệu hồ sơ",
    "reported": "tự báo cáo",
}


def _t(lang: str):  # type: ignore[no-untyped-def]
    return (lambda s: VI.get(s, s)) if lang == "vi" else (lambda s: s)


def _state_name(state: str, lang: str) -> str:
    vi, en = STATE_NAMES[state]
    return vi if lang == "vi" else en


class BadParam(Exception):
    """A query parameter the pages cannot use: a 400 whose one-line reason names it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _month(q: str | None, today: str) -> str:
    """``?month=``: absent or empty is the current month; anything but an ASCII ``YYYY-MM``
    from 2000-01 to 2100-12 is a 400 (no silent fallback to another month)."""
    if not q:
        return today[:7]
    try:
        return parse_month(q)
    except ValueError as e:
        raise BadParam(str(e)) from None


def _choice(q: Any, name: str, allowed: Any) -> str:
    value = q.get(name, "")
    if value and value not in allowed:
        raise BadParam(f"{name} invalid: expected one of {', '.join(allowed)}")
    return value


def _bad(ctx: Ctx, e: BadParam) -> Response:
    """The 400: the reason in ``X-Giamsat-Error``; an export asked for gets it as text."""
    if ctx.request.query_params.get("format") in ("csv", "json"):
        resp: Response = Response(e.reason + "\n", 400, media_type="text/plain; charset=utf-8")
    else:
        resp = error(ctx, 400)
    resp.headers["x-giamsat-error"] = e.reason
    resp.headers["cache-control"] = "no-store"
    return resp


def _now_ms(request: Request) -> int:
    """The pages' "now" (epoch ms): the wall clock, or the app state's ``clock`` when one
    is set (a callable returning epoch ms: tests pin it to a fixed instant). One value per
    request, so the month shown and the states computed agree across local midnight."""
    clock = getattr(request.app.state.giamsat, "clock", None)
    return int(clock()) if clock is not None else int(time.time() * 1000)


async def _compute(request: Request, month: str, now_ms: int) -> Result:
    """States for a month as of ``now_ms``, cached in the process: a closed month for ten
    minutes, the current one for a minute (the in-server rollup runs every minute)."""
    state = request.app.state.giamsat
    today = local_day(now_ms)
    cache: dict[str, tuple[float, Result]] = getattr(state, "_compliance_cache", None) or {}
    state._compliance_cache = cache
    hit = cache.get(month)
    ttl = CACHE_SECONDS if month < today[:7] else CACHE_CURRENT_SECONDS
    if hit and time.monotonic() - hit[0] < ttl:
        return hit[1]
    start, end = month_period(month)
    result = await compute(state.db, state.config, start, end, now_ms)
    cache[month] = (time.monotonic(), result)
    return result


def _evidence(s: Any, lang: str) -> str:
    t = _t(lang)
    parts = [f"{t('Last hit')}: {date(s.last_hit_day, lang) if s.last_hit_day else t('never')}"]
    if s.gap_days:
        parts.append(f"{t('Gap days')}: {s.gap_days}")
    if s.scan:
        parts.append(f"{t('Last scan')}: {date(s.scan['day'], lang)} ({s.scan['home_status']}, "
                     f"{t('Snippet').lower()}: {s.scan['snippet']})")
    return "; ".join(parts)


def violators_table(result: Result, lang: str, states: tuple[str, ...], kinds: tuple[str, ...]
                    ) -> Table:
    t = _t(lang)
    rows = []
    for s in result.sites:
        if not s.required or s.state == "compliant" or s.state not in states \
                or (kinds and s.agency_kind not in kinds):
            continue
        rows.append({
            "site_id": s.site_id, "site": s.name, "agency_code": s.agency_code,
            "agency": s.agency_name, "kind": s.kind, "state": s.state,
            "state_name": _state_name(s.state, lang),
            "last_hit": s.last_hit_day or "", "gap_days": s.gap_days,
            "findings": "; ".join(f.message_vi if lang == "vi" else f.message_en
                                  for f in s.findings if f.state),
        })
    cols = [Column("site_id", "ID", "code"), Column("site", t("Site")),
            Column("agency_code", t("Agency"), "code"), Column("agency", t("Agency")),
            Column("kind", t("Kind"), "code"), Column("state", t("State"), "code"),
            Column("state_name", t("State")), Column("last_hit", t("Last hit"), "date"),
            Column("gap_days", t("Gap days"), "int"), Column("findings", t("What to fix"))]
    return Table("violators", t("Violating sites"), cols, rows)


def snapshot_table(result: Result) -> Table:
    rows = [{
        "month": result.start[:7], "site_id": s.site_id, "site": s.name,
        "agency_code": s.agency_code, "agency": s.agency_name, "agency_kind": s.agency_kind,
        "kind": s.kind, "state": s.state, "last_hit": s.last_hit_day or "",
        "gap_days": s.gap_days, "scan_day": s.scan["day"] if s.scan else "",
        "findings": " ".join(f.code for f in s.findings),
        "what_to_fix_vi": "; ".join(f.message_vi for f in s.findings if f.state),
        "what_to_fix_en": "; ".join(f.message_en for f in s.findings if f.state),
    } for s in result.sites if s.required]
    cols = [Column(k, k) for k in ("month", "site_id", "site", "agency_code", "agency",
                                   "agency_kind", "kind", "state", "last_hit", "gap_days",
                                   "scan_day", "findings", "what_to_fix_vi", "what_to_fix_en")]
    return Table("compliance", "compliance", cols, rows)


@page
async def compliance_page(ctx: Ctx) -> Response:
    require(ctx, "compliance")
    request = ctx.request
    q = request.query_params
    lang = ctx.lang
    t = _t(lang)
    now = _now_ms(request)
    today = local_day(now)
    try:
        month = _month(q.get("month"), today)
        state_f = _choice(q, "state", STATES)
        kind_f = _choice(q, "kind", tuple(KINDS))
        _choice(q, "format", ("csv", "json", "html"))
    except BadParam as e:
        return _bad(ctx, e)
    states = (state_f,) if state_f else STATES
    kinds = KINDS.get(kind_f, ())
    result = await _compute(request, month, now)
    table = violators_table(result, lang, states, kinds)
    if q.get("format") in ("csv", "json"):
        return _period_headers(download(table, q["format"], f"giamsat-{month}"), result)
    by_id = {s.site_id: s for s in result.sites}
    groups = []
    for key, label in (("ministry", t("Ministries")), ("province", t("Provinces"))):
        if kinds and kinds != KINDS[key]:
            continue
        agencies = [a for a in result.agencies if a.kind in KINDS[key]]
        sites = [r for r in table.rows if by_id[r["site_id"]].agency_kind in KINDS[key]]
        groups.append({"label": label, "agencies": agencies, "sites": sites})
    state = request.app.state.giamsat
    months = [m for m in months_back(month, HISTORY_MONTHS) if MONTH_MIN <= m <= today[:7]]
    history = [{"month": m, "total": sum(c.values()), **c}
               for m, c in (await monthly_counts(state.db, state.config, months, now,
                                                    known={month: result})).items()]
    counts = result.counts()
    return render(
        ctx, "compliance.html", tc=t, month=month, state_f=state_f, kind_f=kind_f,
        states=STATES, state_name=lambda s: _state_name(s, lang), groups=groups,
        counts=counts, history=history, number=lambda v: number(v, lang),
        evidence=lambda r: _evidence(by_id[r["site_id"]], lang), fmt_date=lambda d: date(d, lang),
    )


def _period_headers(resp: Response, result: Result) -> Response:
    """Exports say which period their states are for (``X-Giamsat-Period: start/end``)."""
    resp.headers["x-giamsat-period"] = f"{result.start}/{result.end}"
    return resp


async def latest(request: Request) -> Response:
    fmt = request.path_params["fmt"]
    now = _now_ms(request)
    today = local_day(now)
    result = await _compute(request, today[:7], now)  # the same entry /compliance reads
    resp = _period_headers(download(snapshot_table(result), fmt,
                                    f"giamsat-compliance-{today[:7]}"), result)
    # no longer in shared caches than the page's own copy (the current month's TTL)
    resp.headers["cache-control"] = f"public, max-age={int(CACHE_CURRENT_SECONDS)}"
    resp.headers["access-control-allow-origin"] = "*"
    if fmt == "csv":
        resp.headers["content-disposition"] = 'inline; filename="compliance-latest.csv"'
    return resp


@page
async def site_page(ctx: Ctx) -> Response:
    if not ctx.public("compliance") and ctx.user is None:
        raise Denied(401)
    request = ctx.request
    q = request.query_params
    lang = ctx.lang
    t = _t(lang)
    wanted = path_id(request.path_params["site_id"])
    now = _now_ms(request)
    today = local_day(now)
    if wanted is None:
        raise Denied(404)
    try:
        month = _month(q.get("month"), today)
        _choice(q, "format", ("json", "html"))
    except BadParam as e:
        return _bad(ctx, e)
    result = await _compute(request, month, now)
    site = next((s for s in result.sites if s.site_id == wanted), None)
    # not public: an agency user reads its own sites' compliance only (unknown ids: 403)
    require(ctx, "compliance", agency="" if site is None else site.agency_code)
    if site is None:
        raise Denied(404)
    db = request.app.state.giamsat.db
    scans = await db.fetch_all(
        "SELECT ts, base_url, home_status, snippet, site_id_state, site_id_found, tracker_url, "
        "pages, pages_ok, pages_snippet, findings FROM scans WHERE site_id = :s "
        "ORDER BY ts DESC LIMIT 10", {"s": site.site_id})
    for s in scans:
        s["findings"] = json.loads(s["findings"] or "[]")
    comparisons = [c for c in result.comparisons if site.site_id in c.sites]
    if q.get("format") == "json":
        body = json.dumps({"month": month, **site.as_dict()}, ensure_ascii=False)
        body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return Response(body, media_type="application/json",
                        headers={"x-content-type-options": "nosniff"})
    return render(
        ctx, "compliance_site.html", tc=t, month=month, site=site,
        state_name=_state_name(site.state, lang), scans=scans, comparisons=comparisons,
        fixes=[f for f in site.findings if f.state],
        warnings=[f for f in site.findings if not f.state],
        fmt_date=lambda d: date(d, lang), fmt_ts=lambda ms: datetime_ms(ms, lang),
        number=lambda v: number(v, lang),
    )


async def reported_api(request: Request) -> Response:
    from collector.reconcile import ReportedError, import_reported, save_reported, validate_row
    from reports.auth import user_for_token

    state = request.app.state.giamsat
    auth = request.headers.get("authorization", "")
    user = None
    if auth.lower().startswith("bearer "):
        user = await user_for_token(state.db, auth[7:].strip())
    if user is None:
        return JSONResponse({"error": "an API token is needed (Authorization: Bearer …)"}, 401,
                            headers={"www-authenticate": "Bearer"})
    allowed = None
    if not user.is_admin:
        allowed = {r["id"] for r in await state.db.fetch_all(
            "SELECT id FROM sites WHERE agency_code = :a", {"a": user.agency_code})}
    try:
        body = await read_limited(request, MAX_REPORTED_BODY)
    except MalformedLength as e:
        return JSONResponse({"error": str(e)}, 400)
    if body is None:
        return JSONResponse({"error": f"body too large (over {MAX_REPORTED_BODY} bytes)"}, 413,
                            headers={"connection": "close"})
    source = f"api:{user.username}"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return JSONResponse({"error": "body is not UTF-8"}, 400)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "malformed JSON"}, 400)
        rows = doc.get("rows") if isinstance(doc, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return JSONResponse({"error": 'expected {"rows": [{"site", "service", "period", '
                                          '"count"}, …]}'}, 400)
        registered = {r["id"] for r in await state.db.fetch_all("SELECT id FROM sites")}
        if allowed is not None:
            registered &= allowed
        good, errors = [], []
        for i, row in enumerate(rows):
            try:
                good.append(validate_row({k: (str(v) if v is not None else None)
                                          for k, v in row.items()}, registered))
            except ReportedError as e:
                errors.append({"index": i, "reason": str(e)})
        saved = await save_reported(state.db, good, source)
    else:
        report = await import_reported(state.db, text, source, allowed)
        saved = report.saved
        errors = [{"line": line, "reason": msg} for line, msg in report.errors]
    if saved:
        state._compliance_cache = {}  # the next view reconciles against the new totals
    status = 200 if saved or not errors else 400
    return JSONResponse({"saved": saved, "refused": len(errors), "errors": errors[:100]}, status)


def routes() -> list[BaseRoute]:
    return [
        Route("/compliance", compliance_page),
        Route("/compliance/latest.{fmt:str}", latest_dispatch),
        Route("/compliance/sites/{site_id}", site_page),
        Route("/api/v1/compliance/reported", reported_api, methods=["POST"]),
    ]


async def latest_dispatch(request: Request) -> Response:
    if request.path_params["fmt"] not in ("csv", "json"):
        return Response("not found\n", 404, media_type="text/plain")
    return await latest(request)

