"""The install scanner against real local portals (HTTP and HTTPS servers on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import run_sync

from collector.cli import main as cli_main
from collector.compliance import compute
from collector.config import Config
from collector.fixture_portals import (
    PortalServer,
    Route,
    page,
    script_only,
    self_signed_context,
    sitemap,
    snippet,
)
from collector.scan import ScanOptions, run_scans
from collector.scan_html import analyse_page, split_js
from collector.store import Database, open_database
from collector.tracking import local_day
from tests.compliance_helpers import add_days, days, ensure_rollups, register

EMC = "https://emc.gov.vn"
OPTS = ScanOptions(sample=3, concurrency=4, timeout=0.5, retries=0)


def badge(site_id: int) -> str:
    return f'<a href="{EMC}"><img src="{EMC}/badge/{site_id}.svg" alt="EMC"></a>'


def portal(routes: dict[str, Route], server: PortalServer, kind: str, sid: int) -> None:
    """Fill ``routes`` with the fixture portal of ``kind`` under ``/p/``."""
    ok = snippet(sid, EMC)
    pages = [server.url(f"/p/page{i}") for i in (1, 2)]
    home = {
        "correct": ok + badge(sid),
        "commented": "<!-- " + script_only(ok) + " -->",
        "empty_id": snippet("", EMC),
        "http_tracker": snippet(sid, "http://emc.gov.vn"),
        "home_only": ok,
        "absent": "<p>Chào mừng</p>",
    }.get(kind)
    if home is not None:
        routes["/p/"] = Route(page(home))
        routes["/p/sitemap.xml"] = sitemap(pages)
        for u in pages:
            routes[u.split(str(server.port), 1)[1]] = Route(
                page("<p>trang con</p>" if kind == "home_only" else home))
    elif kind == "timeout":
        routes["/p/"] = Route(page(ok), delay=3)
    elif kind == "redirect_loop":
        routes["/p/"] = Route(status=302, headers={"location": "/p/a"})
        routes["/p/a"] = Route(status=302, headers={"location": "/p/"})
    elif kind == "error_500":
        routes["/p/"] = Route(page("lỗi"), 500)


CASES = {
    # kind: (home status, home snippet, finding codes, state with earlier hits, state without)
    "correct": ("ok", "present", ["https_not_enforced"], "compliant", "not_connected"),
    "commented": ("ok", "commented", ["snippet_commented", "badge_missing",
                                      "https_not_enforced"], "incomplete", "not_connected"),
    "empty_id": ("ok", "present", ["site_id_empty", "badge_missing", "https_not_enforced"],
                 "incomplete", "not_connected"),
    "http_tracker": ("ok", "present", ["tracker_http", "badge_missing", "https_not_enforced"],
                     "incomplete", "not_connected"),
    "home_only": ("ok", "present", ["snippet_missing_on_pages", "badge_missing",
                                    "https_not_enforced"], "incomplete", "not_connected"),
    "absent": ("ok", "absent", ["snippet_absent", "snippet_missing_on_pages", "badge_missing",
                                "https_not_enforced"],
               "incomplete", "not_connected"),
    "timeout": ("timeout", "unknown", ["home_unreachable"], "compliant", "not_connected"),
    "redirect_loop": ("too_many_redirects", "unknown", ["home_unreachable"], "compliant",
                      "not_connected"),
    "error_500": ("http_500", "unknown", ["home_unreachable"], "compliant", "not_connected"),
}


async def scan_and_state(db: Database, sid: int, url: str, with_hits: bool,
                         opts: ScanOptions = OPTS) -> tuple[dict, list[dict], str, list[str]]:
    await ensure_rollups(db)
    await register(db, sid)
    config = Config(public_url=EMC)
    await run_scans(db, config, [(sid, url)], opts)
    scan = await db.fetch_one("SELECT * FROM scans WHERE site_id = :s", {"s": sid})
    pages = await db.fetch_all("SELECT * FROM scan_pages WHERE site_id = :s ORDER BY n",
                               {"s": sid})
    # the scanner stamps the scan with the clock: the period and the hits are built around
    # that instant, and the states computed as of it
    now = scan["ts"]
    today = local_day(now)
    month_start = today[:8] + "01"
    if with_hits:
        prev = (dt.date.fromisoformat(month_start) - dt.timedelta(days=5)).isoformat()
        await add_days(db, sid, days(prev, today))
    result = await compute(db, config, month_start, today, now)
    [site] = [s for s in result.sites if s.site_id == sid]
    return scan, pages, site.state, [f.message_vi for f in site.findings]


@pytest.mark.parametrize("with_hits", [True, False], ids=["had-hits", "never-hit"])
@pytest.mark.parametrize("kind", list(CASES))
async def test_fixture_portal(db: Database, kind: str, with_hits: bool) -> None:
    status, snip, findings, state_hits, state_none = CASES[kind]
    routes: dict[str, Route] = {}
    with PortalServer(routes) as server:
        portal(routes, server, kind, 101)
        scan, pages, state, messages = await scan_and_state(db, 101, server.url("/p/"),
                                                            with_hits)
    assert scan is not None
    assert (scan["home_status"], scan["snippet"]) == (status, snip)
    assert json.loads(scan["findings"]) == findings
    assert state == (state_hits if with_hits else state_none)
    assert pages[0]["status"] == status
    if status == "ok":
        assert len(pages) == 3 and scan["pages_ok"] == 3
        assert scan["https_enforced"] == 0  # a plain http:// portal
    else:
        assert len(pages) == 1 and scan["pages_ok"] == 0
        assert any("không mở được trang chủ" in m for m in messages)
    if kind == "correct":
        assert (scan["site_id_state"], scan["site_id_found"]) == ("right", "101")
        assert (scan["tracker_url"], scan["tracker_https"], scan["tracker_ours"]) == (
            EMC + "/tracking", 1, 1)
        assert scan["loader"] == 1 and scan["badge"] == 1 and scan["pages_snippet"] == 3
    if kind == "commented" and with_hits:
        assert "mã giám sát bị chú thích (comment) trên trang chủ" in messages
    if kind == "empty_id":
        assert scan["site_id_state"] == "empty"
        assert "setSiteId rỗng" in messages
    if kind == "http_tracker":
        assert scan["tracker_https"] == 0
        assert "trackerUrl dùng http (phải là https)" in messages
    if kind == "home_only":
        assert [p["snippet"] for p in pages] == ["present", "absent", "absent"]
        assert scan["pages_snippet"] == 1
        assert "thiếu mã giám sát trên 2/2 trang con đã kiểm tra" in messages
    if kind == "timeout":
        assert "Timeout" in pages[0]["error"]


async def test_broken_tls_certificate(db: Database, tmp_path: Path) -> None:
    tls = self_signed_context(tmp_path)
    with PortalServer({"/": Route(page(snippet(102, EMC)))}, tls=tls) as server:
        scan, pages, state, messages = await scan_and_state(db, 102, server.url("/"), False)
    assert scan["home_status"] == "tls_error"
    assert "CERTIFICATE_VERIFY_FAILED" in pages[0]["error"]
    assert state == "not_connected"
    assert any("tls_error" in m for m in messages)


async def test_connection_refused_and_retries(db: Database) -> None:
    with PortalServer({}) as server:
        url = server.url("/")
    scan, _pages, state, _ = await scan_and_state(db, 103, url, False)
    assert scan["home_status"] == "connection_refused"
    assert state == "not_connected"
    routes = {"/": Route(page("bận"), 503)}
    with PortalServer(routes) as busy:
        opts = ScanOptions(sample=0, timeout=2, retries=2)
        await run_scans(db, Config(), [(103, busy.url("/"))], opts)
        assert busy.requests == 3  # 503 is retried twice; sample=0 and an http base: no more
    scan = await db.fetch_one("SELECT home_status FROM scans WHERE site_id = 103 "
                              "ORDER BY ts DESC LIMIT 1")
    assert scan == {"home_status": "http_503"}


async def test_links_sample_when_no_sitemap_and_wrong_site_id(db: Database) -> None:
    routes: dict[str, Route] = {}
    with PortalServer(routes) as server:
        links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(5))
        routes["/p/"] = Route(page(snippet(999, EMC) + links +
                                   '<a href="https://elsewhere.example/x">x</a>'))
        for i in range(5):
            routes[f"/p/{i}"] = Route(page(snippet(104, EMC)))
        scan, pages, state, messages = await scan_and_state(db, 104, server.url("/p/"), True)
    assert [p["url"].rsplit("/", 1)[1] for p in pages] == ["", "0", "1", "2"]
    assert (scan["site_id_state"], scan["site_id_found"]) == ("wrong", "999")
    assert "setSiteId sai: '999' thay vì '104'" in messages
    assert state == "incomplete"


def test_cli_scan_saves_the_url_and_history(database_url: str, db: Database,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    routes: dict[str, Route] = {}
    with PortalServer(routes) as server:
        routes["/"] = Route(page(snippet(47, EMC)))
        argv = ["--database-url", database_url, "scan", "47", "--url", server.url("/"),
                "--save-url", "--timeout", "2", "--public-url", EMC]
        assert cli_main(argv) == 0
        assert cli_main(["--database-url", database_url, "scan", "47", "--timeout", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("47\tok\tsnippet=present") == 2

    async def read() -> tuple[list[dict], dict | None]:
        fresh = await open_database(database_url)
        try:
            return (await fresh.fetch_all("SELECT base_url, snippet FROM scans "
                                          "WHERE site_id = 47 ORDER BY ts"),
                    await fresh.fetch_one("SELECT base_url FROM scan_targets WHERE site_id = 47"))
        finally:
            await fresh.close()

    rows, target = run_sync(read())
    assert rows == [{"base_url": server.url("/"), "snippet": "present"}] * 2
    assert target == {"base_url": server.url("/")}


def test_js_comments_and_strings() -> None:
    active, commented = split_js("var u = 'https://x/y'; // _govaq.push(['a'])\n/* b */ c")
    assert "https://x/y" in active and "_govaq" in commented and " c" in active
    f = analyse_page("<script>var _govaq=[];// _govaq.push(['setSiteId','1'])\n</script>",
                     1, "emc.gov.vn")
    assert f.snippet == "commented"
    f = analyse_page("<script>_govaq.push(['setSiteId', '7']);"
                     "_govaq.push(['setTrackerUrl', 'https://other.example/t'])</script>"
                     '<img alt="Đã kết nối EMC" src="/x.png">', 7, "emc.gov.vn")
    assert (f.snippet, f.site_id_state, f.tracker_ours, f.loader, f.badge) == (
        "present", "right", False, False, True)


async def test_badge_image(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/badge/47.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "Đã kết nối" in r.text and "47" in r.text
    r = await client.get("/badge/9999.svg")
    assert r.status_code == 404 and r.headers["x-giamsat-error"] == "unknown site"


async def test_scheduled_scan_runs_inside_the_server(db: Database, config: Config) -> None:
    import asyncio

    from collector.app import create_app
    from collector.scan import save_target

    routes = {"/": Route(page(snippet(47, EMC)))}
    with PortalServer(routes) as server:
        await save_target(db, 47, server.url("/"))
        await save_target(db, 48, server.url("/"))
        app = create_app(dataclasses.replace(config, scan_interval=0.2, scan_sample=0,
                                             public_url=EMC))
        async with app.router.lifespan_context(app):
            for _ in range(100):
                rows = await db.fetch_all("SELECT site_id, snippet, site_id_state FROM scans "
                                          "ORDER BY site_id")
                if {r["site_id"] for r in rows} == {47, 48}:
                    break
                await asyncio.sleep(0.1)
    assert {(r["site_id"], r["snippet"], r["site_id_state"]) for r in rows} == {
        (47, "present", "right"), (48, "present", "wrong")}


def test_cli_compliance_and_reconcile(database_url: str, db: Database, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    totals = tmp_path / "totals.csv"
    totals.write_text("site,service,period,count\n47,1.1,2026-03,5\n47,1.1,2026-3,5\n",
                      encoding="utf-8")
    assert cli_main(["--database-url", database_url, "reconcile", "import", str(totals)]) == 1
    captured = capsys.readouterr()
    assert "1 row(s) saved, 1 row(s) refused" in captured.out
    assert "totals.csv:3: period: expected YYYY-MM" in captured.err
    assert cli_main(["--database-url", database_url, "compliance", "--month", "2023-12"]) == 0
    assert capsys.readouterr().out == ""  # the conftest sites were registered in 2024
    for month in (["--month", "2026-03"], []):  # a fixed month, the current one
        assert cli_main(["--database-url", database_url, "compliance", *month]) == 0
        out = capsys.readouterr().out
        assert "47\tH26\tnot_connected\tCổng TTĐT Hà Nội\tchưa nhận được dữ liệu" in out
    assert cli_main(["--database-url", database_url, "compliance", "--month", "03/2026"]) == 2


async def test_https_enforced_probe() -> None:
    import asyncio

    import httpx

    from collector.scan import Page, _https_enforced

    routes: dict[str, Route] = {}
    gate = asyncio.Semaphore(2)
    with PortalServer(routes) as server:
        https_base = server.url("/").replace("http:", "https:")
        async with httpx.AsyncClient() as client:
            routes["/"] = Route(status=301, headers={"location": https_base})
            assert await _https_enforced(client, https_base, Page(https_base, "ok"), OPTS,
                                         gate) == 1
            routes["/"] = Route(page("plaintext"))
            assert await _https_enforced(client, https_base, Page(https_base, "ok"), OPTS,
                                         gate) == 0
            routes["/"] = Route(status=302, headers={"location": server.url("/other")})
            assert await _https_enforced(client, https_base, Page(https_base, "ok"), OPTS,
                                         gate) == 0
    refused = https_base  # the server is gone: plain HTTP refused
    async with httpx.AsyncClient() as client:
        assert await _https_enforced(client, refused, Page(refused, "ok"), OPTS, gate) == 1


async def test_big_page_and_size_cap(db: Database) -> None:
    filler = "<p>nội dung</p>" * 20_000  # ~300 KB: analysed on a thread
    routes = {"/": Route(page(filler + snippet(105, EMC))),
              "/huge": Route(page("<p>x</p>" * 400_000 + snippet(105, EMC)))}  # > 2 MB
    with PortalServer(routes) as server:
        scan, _pages, _state, _ = await scan_and_state(db, 105, server.url("/"), True)
        assert (scan["home_status"], scan["snippet"]) == ("ok", "present")
        huge, *_ = await scan_and_state(db, 106, server.url("/huge"), True)
    # only the first 2 MB are read: a snippet after them is not seen
    assert (huge["home_status"], huge["snippet"]) == ("ok", "absent")


@pytest.mark.parametrize(("config", "ours", "codes", "state"), [
    # nothing configured: unknown (NULL) and a warning, never a wrong "not ours"
    (Config(), None, ["tracker_host_unknown", "https_not_enforced"], "compliant"),
    # the collector under a second name: GIAMSAT_PUBLIC_HOSTS
    (Config(public_hosts="old-emc.gov.vn, www.emc.gov.vn"), 1, ["https_not_enforced"],
     "compliant"),
    (Config(public_url="https://new-emc.gov.vn", public_hosts="old-emc.gov.vn"), 0,
     ["tracker_not_ours", "https_not_enforced"], "incomplete"),
])
async def test_tracker_host_check_without_public_url(db: Database, config: Config, ours: int,
                                                     codes: list[str], state: str) -> None:
    await ensure_rollups(db)
    await register(db, 107)
    routes = {"/": Route(page(snippet(107, EMC) + badge(107)))}
    with PortalServer(routes) as server:
        await run_scans(db, config, [(107, server.url("/"))], ScanOptions(sample=0, timeout=2,
                                                                          retries=0))
    scan = await db.fetch_one("SELECT * FROM scans WHERE site_id = 107")
    assert (scan["tracker_url"], scan["tracker_ours"]) == (EMC + "/tracking", ours)
    assert json.loads(scan["findings"]) == codes
    today = local_day(scan["ts"])
    await add_days(db, 107, days((dt.date.fromisoformat(today) - dt.timedelta(days=40))
                                 .isoformat(), today))
    result = await compute(db, config, today[:8] + "01", today, scan["ts"])
    [site] = [s for s in result.sites if s.site_id == 107]
    assert site.state == state
    if ours is None:
        [f] = [f for f in site.findings if f.code == "tracker_host_unknown"]
        assert f.severity == "warning" and "chưa kiểm tra được máy chủ" in f.message_vi


def test_tracker_host_forms() -> None:
    html = "<script>_govaq.push(['setSiteId', '7']);_govaq.push(['setTrackerUrl', '{}'])</script>"
    for url, ours in (("https://EMC.gov.vn:8443/tracking", True),
                      ("https://emc.gov.vn@evil.example/tracking", False),
                      ("https://[::1/tracking", False),
                      ("//emc.gov.vn/tracking", True)):  # protocol-relative, on an https page
        f = analyse_page(html.format(url), 7, {"emc.gov.vn"}, "https://portal.gov.vn/")
        assert f.tracker_ours is ours, url
    assert analyse_page(html.format("https://x/t"), 7, None).tracker_ours is None
