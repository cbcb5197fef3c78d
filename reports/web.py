"""The report pages: ``/``, ``/sites/{id}``, ``/agencies/{code}``, ``/dvc``, login, logout,
settings. ``routes()`` is appended to the app's routes by ``collector.app.create_app``.

Access (see ``reports.auth``): a page named in ``GIAMSAT_PUBLIC_PAGES`` is open to
everyone; otherwise an anonymous visitor is sent to ``/login`` and a signed-in agency user
sees only its own agency's page and its sites (403 otherwise) — not the national pages
(overview, /dvc, compliance list), which compare every agency: those are for admins
unless published. Every page answers
``?table=<name>&format=csv|json`` with one of its tables, under the same rules.

Responses carry a strict Content-Security-Policy (no script at all, inline styles only):
even if escaping failed somewhere, injected script would not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector.embed import snippet_html
from collector.enrich import installation_secret
from reports import auth, queries, views
from reports.cache import ViewCache
from reports.i18n import SITE_KINDS, Formats, pick_lang
from reports.params import BadParameter, path_id, query_int, text
from reports.periods import CHOICES, LABELS, Period, local_today, parse_period
from reports.tables import Table, download

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                         autoescape=True, trim_blocks=True, lstrip_blocks=True)


class Denied(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Ctx:
    """One request's view of the reports: language, user, session, period."""

    def __init__(self, request: Request, user: auth.User | None, session: dict[str, Any],
                 sessions: auth.Sessions) -> None:
        self.request = request
        self.user = user
        self.session = session
        self.sessions = sessions
        self.lang = pick_lang(request.query_params, request.headers.get("accept-language", ""))
        self.f = Formats(self.lang)
        self.state = request.app.state.giamsat
        self.config = self.state.config
        self.db = self.state.db

    def period(self) -> Period:
        default = self.session.get("period", "30d")
        return parse_period(self.request.query_params,
                            local_today(self.config.timezone_offset_hours), default)

    def cache(self, name: str = "reports_cache") -> ViewCache:
        """The app's cache of heavy views (one per app: never shared between databases).
        Site pages have their own (``site_cache``), so a crawl of many site dashboards
        cannot evict the overview and agency pages."""
        state = self.request.app.state
        if getattr(state, name, None) is None:
            setattr(state, name, ViewCache())
        return getattr(state, name)  # type: ignore[no-any-return]

    def public(self, page: str) -> bool:
        return page in {p.strip() for p in self.config.public_pages.split(",")}

    def url(self, path: str | None = None, **changes: str | None) -> str:
        """This page (or ``path``) with query parameters changed; keeps ``lang``."""
        q = dict(self.request.query_params) if path is None else {}
        if path is not None and "?" in path:
            path, _, query = path.partition("?")
            q.update(parse_qsl(query))
        if path is not None and "lang" in self.request.query_params:
            q["lang"] = self.lang
        for k, v in changes.items():
            if v is None:
                q.pop(k, None)
            else:
                q[k] = v
        base = self.request.url.path if path is None else path
        return base + ("?" + urlencode(q) if q else "")

    def csrf(self) -> str:
        if "csrf" not in self.session:
            self.session["csrf"] = auth.new_csrf()
            self.session["_dirty"] = True
        return str(self.session["csrf"])


async def sessions_for(request: Request) -> auth.Sessions:
    app = request.app
    s = getattr(app.state, "reports_sessions", None)
    if s is None:
        state = app.state.giamsat
        secret = await installation_secret(state.db, state.config.secret)
        s = auth.Sessions(secret, state.config.public_url.startswith("https://"))
        app.state.reports_sessions = s
    return s


async def context(request: Request) -> Ctx:
    sessions = await sessions_for(request)
    session = sessions.load(request)
    user = None
    if isinstance(session.get("uid"), int):
        user = await auth.user_by_id(request.app.state.giamsat.db, session["uid"])
        if user is not None and session.get("ep", 0) != user.epoch:
            user = None  # signed out, password changed or disabled since: a void session
            session = {k: v for k, v in session.items() if k not in ("uid", "ep")}
    return Ctx(request, user, session, sessions)


def render(ctx: Ctx, template: str, status: int = 200, **data: Any) -> HTMLResponse:
    periods = [(k, ctx.f.t(LABELS[k])) for k in CHOICES]
    html = env.get_template(template).render(
        ctx=ctx, f=ctx.f, t=ctx.f.t, user=ctx.user, lang=ctx.lang, periods=periods,
        kinds=SITE_KINDS, **data)
    response = HTMLResponse(html, status, headers={
        "content-security-policy": CSP, "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin", "cache-control": "private, no-store",
        "content-language": ctx.lang})
    if ctx.session.pop("_dirty", None):
        ctx.sessions.save(ctx.request, response, ctx.session)
    return response


def error(ctx: Ctx, status: int, message: str = "") -> Response:
    if status == 401:
        return RedirectResponse(ctx.url("/login", next=ctx.request.url.path + (
            "?" + ctx.request.url.query if ctx.request.url.query else "")), 303)
    title = {403: "Forbidden", 404: "Not found", 400: "Bad request"}.get(status, "Error")
    return render(ctx, "error.html", status, title=ctx.f.t(title), status_code=status,
                  message=message)


def require(ctx: Ctx, page: str, agency: str | None = None) -> None:
    """Access to ``page``: open if public; else a signed-in user — for one agency's page
    (``agency`` given) an admin or that agency's user, for a national page (``agency``
    ``None``: the overview, /dvc, the compliance list, all of which compare agencies) an
    admin only. Raises :class:`Denied` (401: sign in; 403)."""
    if ctx.public(page):
        return
    if ctx.user is None:
        raise Denied(401)
    if not ctx.user.may_see_agency("" if agency is None else agency):
        raise Denied(403)


def maybe_export(ctx: Ctx, tables: dict[str, Table], stem: str) -> Response | None:
    name = ctx.request.query_params.get("table")
    if not name:
        return None
    fmt = ctx.request.query_params.get("format", "csv")
    if name not in tables or fmt not in ("csv", "json"):
        raise Denied(404)
    return download(tables[name], fmt, stem)


def page(handler):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        ctx = await context(request)
        try:
            return await handler(ctx)
        except Denied as d:
            return error(ctx, d.status)
        except BadParameter as bad:  # a period, date or number that cannot be read
            return error(ctx, 400, str(bad))

    endpoint.__name__ = handler.__name__
    return endpoint


@page
async def overview(ctx: Ctx) -> Response:
    require(ctx, "overview")
    period = ctx.period()
    data = await ctx.cache().get(ctx.db, ("overview", period.start, period.end, ctx.lang),
                           lambda: views.overview_view(ctx.db, ctx.config, period, ctx.f))
    return maybe_export(ctx, data["tables"], "overview") or render(
        ctx, "overview.html", period=period, **data)


@page
async def site_page(ctx: Ctx) -> Response:
    sid = path_id(ctx.request.path_params["site_id"])
    site = await queries.site_row(ctx.db, sid) if sid is not None else None
    if site is None:
        # unknown sites look the same as forbidden ones to those who may not see sites
        require(ctx, "sites", agency="")
        raise Denied(404)
    require(ctx, "sites", agency=site["agency_code"])
    period = ctx.period()
    sid = int(site["id"])
    data = await ctx.cache("site_cache").get(
        ctx.db, ("site", sid, period.start, period.end, ctx.lang),
        lambda: views.site_view(ctx.db, sid, period, ctx.f))
    return maybe_export(ctx, data["tables"], f"site-{site['id']}") or render(
        ctx, "site.html", period=period, site=site, hosts=await queries.site_hosts(ctx.db, sid),
        install=await queries.install_status(ctx.db, sid), **data)  # fresh, not cached


@page
async def install_page(ctx: Ctx) -> Response:
    sid = path_id(ctx.request.path_params["site_id"])
    site = await queries.site_row(ctx.db, sid) if sid is not None else None
    if site is None:
        require(ctx, "sites", agency="")
        raise Denied(404)
    require(ctx, "sites", agency=site["agency_code"])
    base = ctx.config.public_url or f"{ctx.request.url.scheme}://{ctx.request.url.netloc}"
    return render(ctx, "install.html", site=site, snippet=snippet_html(int(site["id"]), base),
                  hosts=await queries.site_hosts(ctx.db, int(site["id"])),
                  install=await queries.install_status(ctx.db, int(site["id"])))


@page
async def agency_page(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"][:20].upper()
    agency = await queries.agency_row(ctx.db, code) if "\x00" not in code else None
    if agency is None:
        require(ctx, "agencies", agency="")
        raise Denied(404)
    require(ctx, "agencies", agency=code)
    period = ctx.period()
    data = await ctx.cache().get(ctx.db, ("agency", code, period.start, period.end, ctx.lang),
                           lambda: views.agency_view(ctx.db, code, period, ctx.f))
    return maybe_export(ctx, data["tables"], f"agency-{code}") or render(
        ctx, "agency.html", period=period, agency=agency, **data)


@page
async def dvc_page(ctx: Ctx) -> Response:
    require(ctx, "dvc")
    period = ctx.period()
    q = ctx.request.query_params
    service = text(q.get("service", ""), "service", 100)
    limit, pg = query_int(q, "limit", 50, 1, 500), query_int(q, "page", 1, 1, 100000)
    data = await views.dvc_view(ctx.db, period, ctx.f, service, limit, pg)
    return maybe_export(ctx, data["tables"], "dvc") or render(
        ctx, "dvc.html", period=period, service=service, page_no=pg, limit=limit, **data)


def _safe_next(target: str) -> str:
    # only local paths: never "//host" or a scheme
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _form(ctx: Ctx) -> FormData:
    if len(await ctx.request.body()) > 16384:
        raise Denied(400)
    return await ctx.request.form()


@page
async def login(ctx: Ctx) -> Response:
    nxt = _safe_next(ctx.request.query_params.get("next", "/"))
    if ctx.request.method == "GET":
        return render(ctx, "login.html", next=nxt, message="")
    form = await _form(ctx)
    if not auth.csrf_ok(ctx.session, form.get("csrf_token")):
        return render(ctx, "login.html", 403, next=nxt, message=ctx.f.t(
            "Request refused: the form expired or was not sent from this site. "
            "Reload and retry."))
    user = await auth.authenticate(ctx.db, str(form.get("username", ""))[:100],
                                   str(form.get("password", ""))[:1000])
    if user is None:
        return render(ctx, "login.html", 401, next=nxt,
                      message=ctx.f.t("Wrong user name or password."))
    # a fresh session (new CSRF token) at sign-in: no fixation
    ctx.session = {"uid": user.id, "ep": user.epoch, "csrf": auth.new_csrf()}
    pref = await ctx.db.fetch_one(
        "SELECT value FROM user_settings WHERE user_id = :u AND key = 'period'", {"u": user.id})
    if pref:
        ctx.session["period"] = pref["value"]
    target = _safe_next(str(form.get("next", nxt)))
    if target == "/" and not user.is_admin and not ctx.public("overview"):
        target = f"/agencies/{user.agency_code}"
    response = RedirectResponse(target, 303)
    ctx.sessions.save(ctx.request, response, ctx.session)
    return response


@page
async def logout(ctx: Ctx) -> Response:
    form = await _form(ctx)
    if not auth.csrf_ok(ctx.session, form.get("csrf_token")):
        return error(ctx, 403)
    if ctx.user is not None:  # every cookie of this user, on every browser, stops working
        await auth.revoke_sessions(ctx.db, ctx.user.id)
    response = RedirectResponse("/", 303)
    ctx.sessions.clear(ctx.request, response)
    return response


@page
async def settings(ctx: Ctx) -> Response:
    if ctx.user is None:
        raise Denied(401)
    saved = False
    if ctx.request.method == "POST":
        form = await _form(ctx)
        if not auth.csrf_ok(ctx.session, form.get("csrf_token")):
            return error(ctx, 403)
        choice = str(form.get("period", ""))
        if choice in CHOICES and choice != "custom":
            ctx.session["period"] = choice
            ctx.session["_dirty"] = True
            await ctx.db.execute(
                "INSERT INTO user_settings (user_id, key, value) VALUES (:u, 'period', :v) "
                "ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
                {"u": ctx.user.id, "v": choice})
            saved = True
    return render(ctx, "settings.html", saved=saved,
                  current=ctx.session.get("period", "30d"))


def routes() -> list[BaseRoute]:
    """Every reports route: pages, the stats API, the compliance pages."""
    from reports.api import api_routes
    from reports.compliance_web import routes as compliance_routes

    return [
        *compliance_routes(),  # first: it holds one API route (/api/v1/compliance/reported)
        *api_routes(),
        Route("/", overview),
        Route("/sites/{site_id}", site_page),
        Route("/sites/{site_id}/install", install_page),
        Route("/agencies/{code}", agency_page),
        Route("/dvc", dvc_page),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/settings", settings, methods=["GET", "POST"]),
    ]

