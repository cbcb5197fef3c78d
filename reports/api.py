"""The read-only stats API under ``/api/v1/`` and its OpenAPI document.

    GET /api/v1/reports                              names of the reports
    GET /api/v1/national/{report}                    the whole country
    GET /api/v1/agencies/{code}/{report}             one agency (its sites aggregated)
    GET /api/v1/sites/{id}/{report}                  one site
    GET /api/v1/openapi.json
    POST /api/v1/compliance/reported                 agency-reported totals (compliance_web)

Query: ``period`` (today 7d 30d 90d month year custom) or ``from``/``to`` (YYYY-MM-DD),
``limit`` (1–1000, default 100) and ``page`` (from 1) for list reports. Authentication:
``Authorization: Bearer gs_…`` (see ``giamsat token add``) or a signed-in session. The
same access rules as the pages: an agency's token reads only its agency and sites; the
national reports are open when the overview page is public, else for admins only.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import metrics
from collector.metrics import DIMENSIONS, Scope
from reports import auth, queries
from reports.params import ascii_int, path_id
from reports.periods import BadPeriod, Period, local_today, parse_period

LIST_REPORTS = {f"top_{d}" for d in DIMENSIONS} | {"timeseries", "dvc", "dossiers", "dropped"}
REPORTS = {
    "totals": "Totals of the period, the previous period and deltas",
    "kpis": "Dossier and DVC KPIs: online, full-process online, online payment rates, "
            "conversion, satisfaction",
    "timeseries": "One row per day: visits, visitors, page views, bounces, duration",
    **{f"top_{d}": f"Top values of the dimension '{d}'" for d in DIMENSIONS},
    "dvc": "DVC per service code: views, submissions, conversion, ratings",
    "dossiers": "Dossiers per service code: received online / in person, rates",
    "dropped": "Refused hits by reason",
    "rankings_provinces": "Provinces ranked by visits (national only)",
    "rankings_ministries": "Ministries ranked by visits (national only)",
    "sites": "The agency's sites side by side (agency only)",
}
MAX_ROWS = 100_000
BAD_BY = object()  # run_report: an unknown ?by= (answered 400)


def dumps(obj: Any) -> bytes:
    body = json.dumps(obj, ensure_ascii=False)
    return body.replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026").encode("utf-8")


def reply(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status, media_type="application/json",
                    headers={"x-content-type-options": "nosniff", "cache-control": "no-store"})


def problem(status: int, message: str) -> Response:
    headers = {"www-authenticate": 'Bearer realm="giamsat"'} if status == 401 else None
    r = reply({"error": message, "status": status}, status)
    if headers:
        r.headers.update(headers)
    return r


async def api_user(request: Request) -> auth.User | None:
    db = request.app.state.giamsat.db
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return await auth.user_for_token(db, header[7:].strip()[:200])
    from reports.web import context

    return (await context(request)).user


def _public(request: Request, page: str) -> bool:
    pages = request.app.state.giamsat.config.public_pages
    return page in {p.strip() for p in pages.split(",")}


def _paging(request: Request) -> tuple[int, int] | None:
    q = request.query_params
    limit, page = ascii_int(q.get("limit") or "100"), ascii_int(q.get("page") or "1")
    if limit is None or page is None:
        return None
    if not 1 <= limit <= 1000 or page < 1 or limit * page > MAX_ROWS:
        return None
    return limit, page


async def run_report(request: Request, scope: Scope, report: str, period: Period,
                     limit: int, page: int) -> Any:
    db = request.app.state.giamsat.db
    s, e = period.start.isoformat(), period.end.isoformat()
    want = limit * page + 1  # one more, to tell whether a next page exists
    if report == "totals":
        return await metrics.compare(db, scope, s, e)
    if report == "kpis":
        return await metrics.kpis(db, scope, s, e)
    if report == "timeseries":
        return await metrics.timeseries(db, scope, s, e)
    if report.startswith("top_"):
        return await metrics.top(db, scope, s, e, report[4:], want)
    if report == "dvc":
        return await metrics.dvc_services(db, scope, s, e, want)
    if report == "dossiers":
        return await metrics.dossier_services(db, scope, s, e, want)
    if report == "dropped":
        return await metrics.dropped(db, scope, s, e)
    if report.startswith("rankings_") and scope.kind == "nation":
        kind = "province" if report == "rankings_provinces" else "ministry"
        by = request.query_params.get("by") or "visits"
        if by not in ("visits", "full_online_rate"):
            return BAD_BY
        return await metrics.rankings(db, s, e, kind, by)
    if report == "sites" and scope.kind == "agency":
        sites = await queries.agency_sites(db, str(scope.key))
        totals = await queries.site_totals(db, [int(x["id"]) for x in sites], s, e, scope)
        return [{"site_id": x["id"], "name": x["name"], "kind": x["kind"],
                 **totals[int(x["id"])]} for x in sites]
    return None


async def stats(request: Request) -> Response:
    p = request.path_params
    report = p["report"]
    if report not in REPORTS:
        return problem(404, f"unknown report {report!r}; see /api/v1/reports")
    user = await api_user(request)
    db = request.app.state.giamsat.db
    if "site_id" in p:
        sid = path_id(p["site_id"])
        site = await queries.site_row(db, sid) if sid is not None else None
        agency, page_name = (site or {}).get("agency_code", ""), "sites"
        scope = Scope.site(sid) if site and sid is not None else None
    elif "code" in p:
        code = p["code"][:20].upper()
        row = await queries.agency_row(db, code) if "\x00" not in code else None
        agency, page_name = (row or {}).get("code", ""), "agencies"
        scope = Scope.agency(row["code"]) if row else None
    else:  # national reports compare every agency: public with the overview, else admins
        agency, page_name, scope = "", "overview", Scope.nation()
    if not _public(request, page_name):
        if user is None:
            return problem(401, "authentication required (Authorization: Bearer <token>)")
        if not user.may_see_agency(agency):
            return problem(403, "this token may not read that agency or site")
    if scope is None:
        return problem(404, "no such site or agency")
    paging = _paging(request)
    if paging is None:
        return problem(400, "limit must be 1-1000 and page >= 1 (at most 100000 rows)")
    limit, page = paging
    config = request.app.state.giamsat.config
    try:
        period = parse_period(request.query_params, local_today(config.timezone_offset_hours))
    except BadPeriod as bad:
        return problem(400, str(bad))
    data = await run_report(request, scope, report, period, limit, page)
    if data is BAD_BY:
        return problem(400, "by: one of visits, full_online_rate")
    if data is None:
        return problem(404, f"report {report!r} is not available for this scope")
    body: dict[str, Any] = {"report": report, "scope": {"kind": scope.kind, "key": scope.key},
                            "start": period.start.isoformat(), "end": period.end.isoformat()}
    if report in LIST_REPORTS or report.startswith("rankings_") or report == "sites":
        rows = data[(page - 1) * limit: page * limit]
        body.update({"limit": limit, "page": page, "rows": rows,
                     "has_more": len(data) > page * limit})
    else:
        body["data"] = data
    return reply(body)


async def report_list(request: Request) -> Response:
    return reply({"reports": [{"name": k, "description": v} for k, v in REPORTS.items()]})


def openapi_document() -> dict[str, Any]:
    params = [
        {"name": "period", "in": "query", "schema": {"type": "string", "enum": [
            "today", "7d", "30d", "90d", "month", "year", "custom"], "default": "30d"}},
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
         "description": "with period=custom"},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                   "default": 1}},
        {"name": "by", "in": "query", "description": "rankings_* only",
         "schema": {"type": "string", "enum": ["visits", "full_online_rate"],
                    "default": "visits"}},
    ]
    report_param = {"name": "report", "in": "path", "required": True,
                    "schema": {"type": "string", "enum": list(REPORTS)}}
    ok = {"200": {"description": "the report", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Report"}}}},
          "400": {"description": "a parameter that cannot be read: period, from/to, "
                                 "limit/page, by"}, "401": {"description": "no token"},
          "403": {"description": "not your agency"}, "404": {"description": "unknown"}}

    def op(summary: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": [*extra, report_param, *params],
                        "responses": ok, "security": [{"bearer": []}, {}]}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "giamsat stats API", "version": "1",
                 "description": "Read-only usage statistics of government portals and DVC "
                                "systems, from daily rollups."},
        "paths": {
            "/api/v1/reports": {"get": {"summary": "List report names", "responses": {
                "200": {"description": "report names and descriptions"}}}},
            "/api/v1/national/{report}": op("A national report", []),
            "/api/v1/agencies/{code}/{report}": op("A report for one agency", [
                {"name": "code", "in": "path", "required": True, "schema": {"type": "string"},
                 "example": "H26"}]),
            "/api/v1/sites/{site_id}/{report}": op("A report for one site", [
                {"name": "site_id", "in": "path", "required": True,
                 "schema": {"type": "integer"}}]),
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
            "/api/v1/compliance/reported": {"post": {
                "summary": "Report an agency's own dossier totals (reconciliation)",
                "description": "Rows of site, service code, period (YYYY-MM or YYYY-MM-DD) "
                               "and count, held against the feed's and the browser's counts "
                               "in the compliance report. An admin token may report for "
                               "any site, an agency token for its own agency's sites only. "
                               "At most 2 MB.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {
                    "text/csv": {"schema": {"type": "string"},
                                 "example": "site,service,period,count\n48,1.001234,"
                                            "2026-03,120\n"},
                    "application/json": {"schema": {"$ref": "#/components/schemas/Reported"}},
                }},
                "responses": {
                    "200": {"description": "rows saved (refused rows listed)", "content": {
                        "application/json": {"schema": {
                            "$ref": "#/components/schemas/ReportedResult"}}}},
                    "400": {"description": "nothing saved: malformed body or every row "
                                           "refused"},
                    "401": {"description": "no valid API token"},
                    "413": {"description": "body over 2 MB"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Report": {"type": "object", "required": ["report", "scope", "start",
                                                                   "end"],
                                   "properties": {
                "report": {"type": "string"}, "scope": {"type": "object"},
                "start": {"type": "string", "format": "date"},
                "end": {"type": "string", "format": "date"},
                "limit": {"type": "integer"}, "page": {"type": "integer"},
                "has_more": {"type": "boolean"},
                "rows": {"type": "array", "items": {"type": "object"}},
                "data": {}}},
                "Reported": {"type": "object", "required": ["rows"], "properties": {
                    "rows": {"type": "array", "items": {
                        "type": "object", "required": ["site", "service", "period", "count"],
                        "properties": {"site": {"type": ["integer", "string"]},
                                       "service": {"type": "string"},
                                       "period": {"type": "string"},
                                       "count": {"type": ["integer", "string"]}}}}}},
                "ReportedResult": {"type": "object", "properties": {
                    "saved": {"type": "integer"}, "refused": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object"}}}}},
        },
    }


async def openapi(request: Request) -> Response:
    return reply(openapi_document())


def api_routes(prefix: str = "/api/v1") -> list[BaseRoute]:
    # plain routes, not a Mount: a Mount would swallow every other /api/v1/… route
    return [
        Route(prefix + "/openapi.json", openapi),
        Route(prefix + "/reports", report_list),
        Route(prefix + "/national/{report}", stats),
        Route(prefix + "/agencies/{code}/{report}", stats),
        Route(prefix + "/sites/{site_id}/{report}", stats),
    ]
