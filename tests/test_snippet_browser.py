"""The ``_govaq`` loader in real headless Chromium against the real collector.

Per test: the collector (``create_app`` on the ``config``/``db`` fixtures) runs under uvicorn
on 127.0.0.1 (free port); a second plain HTTP server on another port serves the test portal
pages, so hits are cross-origin as on a real portal. Site 49 is registered for host
``127.0.0.1`` only, so the same page loaded as ``localhost`` is on an unregistered host.

Playwright marks the browser as automated (``navigator.webdriver``, a HeadlessChrome user
agent), which the collector drops as a bot: contexts get a normal Chrome user agent and an
init script that reports ``navigator.webdriver === false``, as a real visitor's browser does.
Every test asserts rows in the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import uvicorn
from playwright import async_api as playwright_api

from collector.app import create_app
from collector.config import Config
from collector.embed import snippet_html
from collector.privacy import PERSONAL_PARAMS
from collector.registry import make_site, save_site
from collector.store import Database

CHROMIUM = "/usr/bin/chromium"
SITE = 49
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
NOT_AUTOMATED = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false});"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture(autouse=True, scope="module")
def chromium_installed() -> None:
    """Under `make test` / CI a missing browser fails every test here, loudly; skip only on
    purpose with GIAMSAT_SKIP_BROWSER=1."""
    if os.environ.get("GIAMSAT_SKIP_BROWSER") == "1":
        pytest.skip("GIAMSAT_SKIP_BROWSER=1")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"needs Debian's chromium at {CHROMIUM}: run `make test-setup`, or set"
                    " GIAMSAT_SKIP_BROWSER=1 to skip the browser tests", pytrace=False)


# --- the portal: a plain threaded HTTP server serving pages set per test -----------------

class Portal(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, bytes]


class PortalHandler(BaseHTTPRequestHandler):
    server: Portal

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        body = self.server.pages.get(path)
        if body is None:
            self.send_error(404)
            return
        ctype = "application/pdf" if path.endswith(".pdf") else "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    server = Portal(("127.0.0.1", 0), PortalHandler)
    server.pages = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- the collector under uvicorn ------------------------------------------------------------

class Collector:
    def __init__(self, config: Config) -> None:
        app = create_app(config)
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
            access_log=False, loop="asyncio",
        ))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("collector did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
async def collector(db: Database, config: Config) -> AsyncIterator[str]:
    await save_site(db, make_site(SITE, "H26", "portal", "Cổng thử nghiệm", ["127.0.0.1"]))
    c = Collector(config)
    base = await asyncio.to_thread(c.start)
    yield base
    await asyncio.to_thread(c.stop)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        await b.close()


async def new_page(browser, *init_scripts: str, automated: bool = False):  # type: ignore[no-untyped-def]
    context = await browser.new_context(
        user_agent=UA, screen={"width": 1366, "height": 768},
        viewport={"width": 1200, "height": 700}, locale="vi-VN",
    )
    if not automated:
        await context.add_init_script(NOT_AUTOMATED)
    for script in init_scripts:
        await context.add_init_script(script)
    page = await context.new_page()
    page.bodies = []  # type: ignore[attr-defined]
    page.sent = []  # type: ignore[attr-defined]  # (method, resource type) of each hit

    def seen(r) -> None:  # type: ignore[no-untyped-def]
        if "/tracking" in r.url:
            page.bodies.append((r.post_data or "") + r.url)  # type: ignore[attr-defined]
            page.sent.append((r.method, r.resource_type))  # type: ignore[attr-defined]

    page.on("request", seen)
    return page


def html(collector: str, body: str = "", title: str = "Trang chủ", head: str = "",
         site: int = SITE) -> bytes:
    """A portal page: ``head`` (commands queued before the loader), then the real embed."""
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        f"<script>var _govaq = window._govaq || [];{head}</script>"
        f"{snippet_html(site, collector)}</head><body>{body}</body></html>"
    ).encode()


def url(portal: Portal, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{portal.server_address[1]}{path}"


async def rows_until(db: Database, sql: str, n: int, params: dict | None = None,
                     timeout: float = 10.0) -> list[dict]:
    """Poll ``sql`` until it returns at least ``n`` rows (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetch_all(sql, params or {})
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def loaded(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the loader has taken over the queue."""
    await page.wait_for_function("window._govaq && window._govaq.gs === 1")


# --- tests ----------------------------------------------------------------------------------

async def test_pageview_url_title_referrer_screen(db, collector, portal, browser) -> None:
    portal.pages = {
        "/": html(collector, '<a id="go" href="/tin-tuc/bai-1.html?trang=2">bài</a>'),
        "/tin-tuc/bai-1.html": html(collector, title="Bài 1 — Sở Nội vụ"),
    }
    page = await new_page(browser)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await page.click("#go")
    await loaded(page)
    rows = await rows_until(
        db, "SELECT * FROM hits WHERE site_id = :s ORDER BY id", 2, {"s": SITE})
    assert [r["kind"] for r in rows] == ["pageview", "pageview"]
    home, article = rows
    assert home["url"] == url(portal, "/") and home["title"] == "Trang chủ"
    assert article["url"] == url(portal, "/tin-tuc/bai-1.html?trang=2")
    assert article["path"] == "/tin-tuc/bai-1.html"
    assert article["title"] == "Bài 1 — Sở Nội vụ"
    assert article["referrer"] == url(portal, "/") and article["ref_host"] == "127.0.0.1"
    assert article["screen"] == "1366x768"
    assert article["lang"] == "vi-vn" and article["browser"] == "Chrome"
    assert article["pv_id"] and article["pv_id"] != home["pv_id"]


async def test_commands_pushed_before_and_after_load(db, collector, portal, browser) -> None:
    before = (
        "_govaq.push(['setDocumentTitle', 'Tiêu đề riêng']);"
        "_govaq.push(['setCustomUrl', '/ao/duong-dan']);"
        "_govaq.push(['trackEvent', 'video', 'play', 'gioi-thieu', 3]);"
    )
    portal.pages = {"/": html(collector, head=before)}
    page = await new_page(browser)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await page.evaluate("_govaq.push(['trackEvent', 'form', 'submit', 'lien-he'])")
    rows = await rows_until(
        db, "SELECT kind, path, title, e_c, e_a, e_n, e_v FROM hits ORDER BY id", 3)
    by_kind = sorted((r["kind"], r["e_a"]) for r in rows)
    assert by_kind == [("event", "play"), ("event", "submit"), ("pageview", "")]
    pv = next(r for r in rows if r["kind"] == "pageview")
    assert pv["title"] == "Tiêu đề riêng" and pv["path"] == "/ao/duong-dan"
    play = next(r for r in rows if r["e_a"] == "play")
    assert (play["e_c"], play["e_n"], play["e_v"]) == ("video", "gioi-thieu", 3.0)
    submit = next(r for r in rows if r["e_a"] == "submit")
    assert (submit["e_c"], submit["e_n"], submit["e_v"]) == ("form", "lien-he", None)


async def test_spa_navigation_is_one_extra_pageview(db, collector, portal, browser) -> None:
    portal.pages = {"/app": html(collector, title="Ứng dụng")}
    page = await new_page(browser)
    await page.goto(url(portal, "/app"))
    await loaded(page)
    await rows_until(db, "SELECT id FROM hits WHERE kind = 'pageview'", 1)
    # a router's usual noise: push, then replace with the same path and a query, push again
    await page.evaluate("""() => {
        history.pushState({}, '', '/app/thu-tuc');
        document.title = 'Thủ tục';
        history.replaceState({}, '', '/app/thu-tuc?tab=1');
        history.pushState({}, '', '/app/thu-tuc?tab=1');
    }""")
    pvs = await rows_until(
        db, "SELECT url, title, referrer FROM hits WHERE kind = 'pageview' ORDER BY id", 2)
    await page.wait_for_timeout(400)  # longer than the loader's debounce
    await page.evaluate("_govaq.push(['trackEvent', 'control', 'done'])")
    await rows_until(db, "SELECT id FROM hits WHERE e_c = 'control'", 1)
    pvs = await db.fetch_all(
        "SELECT url, title, referrer FROM hits WHERE kind = 'pageview' ORDER BY id")
    assert len(pvs) == 2
    assert pvs[1]["url"] == url(portal, "/app/thu-tuc?tab=1")
    assert pvs[1]["title"] == "Thủ tục" and pvs[1]["referrer"] == url(portal, "/app")
    # back: popstate to the first URL is a new page view; a query-only replace is not
    await page.evaluate("history.replaceState({}, '', '/app/thu-tuc?tab=2'); history.go(-2)")
    await rows_until(db, "SELECT id FROM hits WHERE kind = 'pageview'", 3)
    await page.wait_for_timeout(400)  # a second page view would have been sent by now
    await page.evaluate("_govaq.push(['trackEvent', 'control', 'back'])")
    await rows_until(db, "SELECT id FROM hits WHERE e_a = 'back'", 1)
    pvs = await db.fetch_all("SELECT url FROM hits WHERE kind = 'pageview' ORDER BY id")
    assert [r["url"] for r in pvs] == [
        url(portal, "/app"), url(portal, "/app/thu-tuc?tab=1"), url(portal, "/app")]
    assert len(page.bodies) == 5  # 3 page views, 2 control events: nothing else was sent


async def test_outbound_click_and_pdf_download(db, collector, portal, browser) -> None:
    portal.pages = {
        "/": html(collector, '<a id="out" href="' + url(portal, "/ngoai", "localhost") + '">x</a>'
                  '<a id="pdf" href="/files/Mau-don.PDF">mẫu đơn</a> '
                  '<a id="mid" href="' + url(portal, "/ngoai?tab=moi", "localhost") + '">'
                  '<span id="inner">tab mới</span></a> <a id="right" href="/x.zip">zip</a>'),
        "/files/Mau-don.PDF": PDF,
        "/ngoai": b"<!doctype html><title>ngoai</title>",
    }
    page = await new_page(browser)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await page.click("#right", button="right")  # a context menu is not a download
    await page.click("#inner", button="middle")  # a new tab, from a child of the link
    await page.click("#pdf")  # navigates away: the beacon must survive the unload
    await rows_until(db, "SELECT id FROM hits WHERE kind = 'download'", 1)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await page.click("#out")
    rows = await rows_until(
        db, "SELECT kind, url, target FROM hits WHERE kind != 'pageview' ORDER BY id", 3)
    assert sorted((r["kind"], r["target"]) for r in rows) == [
        ("download", url(portal, "/files/Mau-don.PDF")),
        ("outlink", url(portal, "/ngoai", "localhost")),
        ("outlink", url(portal, "/ngoai?tab=moi", "localhost")),
    ]
    assert {r["url"] for r in rows} == {url(portal, "/")}


async def test_trackdvc_extra_with_personal_data_stores_none(db, collector, portal,
                                                             browser) -> None:
    portal.pages = {"/dvc": html(collector, title="Đăng ký khai sinh")}
    page = await new_page(browser)
    await page.goto(url(portal, "/dvc?sdt=0912345678"))
    await loaded(page)
    await page.evaluate(
        "_govaq.push(['trackDVC', '1.000046', '1',"
        " 'HS-2026-000123;01012026;Nguyễn Văn Anh;001234567890;0912 345 678'])")
    rows = await rows_until(db, "SELECT * FROM hits WHERE kind = 'dvc'", 1)
    dvc = rows[0]
    assert (dvc["dvc_service"], dvc["dvc_state"], dvc["e_c"], dvc["e_a"]) == (
        "1.000046", 1, "dvc", "step")
    assert len(dvc["dvc_ref"]) == 32 and "HS-2026" not in dvc["dvc_ref"]
    # the browser sent only the dossier id …
    sent = [b for b in page.bodies if "dvc_extra" in b]
    assert len(sent) == 1 and "dvc_extra=HS-2026-000123&" in sent[0] + "&"
    for secret in ("Nguy", "001234567890", "01012026", "0912", "345678"):
        assert secret not in sent[0]
    # … and no column of any stored hit holds any of it
    for row in await db.fetch_all("SELECT * FROM hits"):
        text = " ".join(str(v) for v in row.values())
        for secret in ("Nguy", "Anh", "001234567890", "01012026", "0912345678"):
            assert secret not in text, (secret, row)


@pytest.mark.parametrize("signal", [
    "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});",
    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});",
], ids=["dnt", "gpc"])
async def test_dnt_and_gpc_send_nothing(db, collector, portal, browser, signal) -> None:
    portal.pages = {"/private": html(collector), "/control": html(collector)}
    private = await new_page(browser, signal)
    await private.goto(url(portal, "/private"))
    await loaded(private)
    await private.evaluate("_govaq.push(['trackEvent', 'a', 'b']);"
                           "_govaq.push(['trackDVC', '1.000046', '-1'])")
    # control: the same page without the signal is counted (so the loader did work)
    control = await new_page(browser)
    await control.goto(url(portal, "/control"))
    await loaded(control)
    await rows_until(db, "SELECT id FROM hits WHERE path = '/control'", 1)
    await private.wait_for_timeout(300)
    assert private.bodies == []
    assert await db.fetch_all("SELECT id FROM hits WHERE path = '/private'") == []


async def test_unregistered_hostname_is_refused_and_counted(db, collector, portal,
                                                            browser) -> None:
    portal.pages = {"/": html(collector)}
    page = await new_page(browser)
    await page.goto(url(portal, "/", "localhost"))  # site 49 is 127.0.0.1 only
    await loaded(page)
    rows = await rows_until(db, "SELECT * FROM dropped WHERE site_id = :s", 1, {"s": SITE})
    assert [(r["reason"], r["host"], r["n"]) for r in rows] == [
        ("host not registered to this site", "localhost", 1)]
    assert await db.fetch_all("SELECT id FROM hits") == []


async def test_webdriver_flag_is_sent_and_dropped_as_bot(db, collector, portal, browser) -> None:
    portal.pages = {"/": html(collector)}
    page = await new_page(browser, automated=True)
    await page.goto(url(portal, "/"))
    await loaded(page)
    rows = await rows_until(db, "SELECT reason FROM dropped WHERE site_id = :s", 1, {"s": SITE})
    assert [r["reason"] for r in rows] == ["bot"]
    assert "wd=1" in page.bodies[0]


async def test_personal_data_is_redacted_in_the_browser(db, collector, portal, browser) -> None:
    portal.pages = {"/hoso/001234567890": html(collector, title="Hồ sơ của a.b@mail.vn 0912345678")}
    page = await new_page(browser)
    await page.goto(url(portal, "/hoso/001234567890?hoten=Nguyen+Van+Anh&email=a%40b.vn#x"))
    await loaded(page)
    rows = await rows_until(db, "SELECT url, path, title FROM hits", 1)
    body = page.bodies[0]
    for secret in ("001234567890", "Nguyen", "a.b@mail.vn", "a%40b.vn", "0912345678", "%23x"):
        assert secret not in body
    assert rows[0]["path"] == "/hoso/[id]"
    assert rows[0]["title"] == "Hồ sơ của [email] [phone]"
    assert "Nguyen" not in rows[0]["url"] and "001234567890" not in rows[0]["url"]


async def test_disable_tracking_before_and_after_load(db, collector, portal, browser) -> None:
    portal.pages = {
        "/tat": html(collector, head="_govaq.push(['disableTracking']);"),  # queued: runs first
        "/sau": html(collector),
        "/doi-chung": html(collector),
    }
    off = await new_page(browser)
    await off.goto(url(portal, "/tat"))
    await loaded(off)
    await off.evaluate("_govaq.push(['trackEvent', 'tat', 'x'], ['trackDVC', '1.000046', '1'],"
                       " ['trackPageView'])")
    later = await new_page(browser)
    await later.goto(url(portal, "/sau"))
    await loaded(later)
    await later.evaluate("_govaq.push(['trackEvent', 'truoc', 'x'])")
    await rows_until(db, "SELECT id FROM hits WHERE e_c = 'truoc'", 1)
    await later.evaluate("""() => {
        _govaq.push(['disableTracking'], ['trackEvent', 'sau', 'x'], ['trackPageView']);
        history.pushState({}, '', '/sau/trang-khac');
    }""")
    await later.wait_for_timeout(400)  # longer than the SPA debounce
    control = await new_page(browser)  # the same loader on another page still counts
    await control.goto(url(portal, "/doi-chung"))
    await loaded(control)
    await rows_until(db, "SELECT id FROM hits WHERE path = '/doi-chung'", 1)
    rows = await db.fetch_all("SELECT kind, path, e_c FROM hits")
    # separate requests in flight at once: their commit order is not their send order
    assert sorted((r["kind"], r["path"], r["e_c"]) for r in rows) == sorted([
        ("pageview", "/sau", ""), ("event", "/sau", "truoc"), ("pageview", "/doi-chung", "")])
    assert off.bodies == [] and len(later.bodies) == 2


async def test_set_referrer_url_and_track_page_view_title(db, collector, portal,
                                                          browser) -> None:
    ref = "https://www.google.com/search?q=dich+vu+cong&hoten=Nguyen+Van+A&email=a%40b.vn"
    portal.pages = {"/": html(collector, title="Trang chủ",
                              head=f"_govaq.push(['setReferrerUrl', '{ref}']);")}
    page = await new_page(browser)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await page.evaluate("_govaq.push(['setDocumentTitle', 'Tiêu đề đặt trước'],"
                        " ['trackPageView', 'Tiêu đề truyền vào'], ['trackPageView'])")
    rows = await rows_until(db, "SELECT title, referrer, ref_host, pv_id FROM hits"
                                " WHERE kind = 'pageview' ORDER BY id", 3)
    # the argument wins over setDocumentTitle, which wins over document.title
    assert [r["title"] for r in rows] == ["Trang chủ", "Tiêu đề truyền vào", "Tiêu đề đặt trước"]
    assert {(r["referrer"], r["ref_host"]) for r in rows} == {
        ("https://www.google.com/search?q=dich+vu+cong", "google.com")}  # host without www.
    assert len({r["pv_id"] for r in rows}) == 3
    for body in page.bodies:
        assert "urlref=https%3A%2F%2Fwww.google.com" in body
        assert "Nguyen" not in body and "a%2540b" not in body and "a%40b" not in body


NO_BEACON = "delete Navigator.prototype.sendBeacon;"
NO_FETCH = "delete window.fetch;"
KEEPALIVE = """
const realFetch = window.fetch;
window.fetch = function (u, options) {
  window.keepalive = options && options.keepalive;
  return realFetch.apply(this, arguments);
};
"""


@pytest.mark.parametrize("scripts, sent", [
    ((), ("POST", "ping")),
    ((NO_BEACON, KEEPALIVE), ("POST", "fetch")),
    ((NO_BEACON, NO_FETCH), ("GET", "image")),
], ids=["beacon", "fetch-keepalive", "image"])
async def test_transport_falls_back_from_beacon_to_fetch_to_image(
        db, collector, portal, browser, scripts, sent) -> None:
    portal.pages = {"/kenh": html(collector, title="Kênh gửi")}
    page = await new_page(browser, *scripts)
    await page.goto(url(portal, "/kenh?trang=1"))
    await loaded(page)
    await page.evaluate("_govaq.push(['trackEvent', 'kenh', 'gui', 'thu', 0])")
    rows = await rows_until(
        db, "SELECT kind, url, title, screen, e_c, e_v FROM hits ORDER BY kind DESC, id", 2)
    assert rows == [
        {"kind": "pageview", "url": url(portal, "/kenh?trang=1"), "title": "Kênh gửi",
         "screen": "1366x768", "e_c": "", "e_v": None},
        {"kind": "event", "url": url(portal, "/kenh?trang=1"), "title": "",
         "screen": "1366x768", "e_c": "kenh", "e_v": 0.0},
    ]
    assert page.sent == [sent, sent]
    if NO_BEACON in scripts:
        assert await page.evaluate("typeof navigator.sendBeacon") == "undefined"
    if KEEPALIVE in scripts:
        assert await page.evaluate("window.keepalive") is True
    if NO_FETCH in scripts:
        assert await page.evaluate("typeof window.fetch") == "undefined"


async def test_personal_parameters_never_leave_the_browser(db, collector, portal,
                                                           browser) -> None:
    """Every name in collector/privacy.py's PERSONAL_PARAMS, in the page URL, the referrer
    and a link target: the browser sends none of the values, the collector keeps none of
    the names."""
    names = sorted(PERSONAL_PARAMS)
    personal = "&".join(f"{n.upper() if i % 2 else n}=bimat{i}" for i, n in enumerate(names))
    query = f"?trang=2&{personal}&q=tim"
    outbound = url(portal, "/ngoai", "localhost") + query
    portal.pages = {
        "/dvc": html(collector, f'<a id="out" href="{escape(outbound)}">cổng khác</a>',
                     head=f"_govaq.push(['setReferrerUrl', 'https://dvc.example.vn/{query}']);"),
        "/ngoai": b"<!doctype html><title>ngoai</title>",
    }
    page = await new_page(browser)
    await page.goto(url(portal, "/dvc" + query))
    await loaded(page)
    await page.click("#out")
    rows = await rows_until(db, "SELECT kind, url, referrer, target FROM hits "
                            "ORDER BY kind DESC, id", 2)  # separate requests: any commit order
    assert len(page.bodies) == 2
    for body in page.bodies:
        assert "bimat" not in body.lower()
    assert rows == [
        {"kind": "pageview", "url": url(portal, "/dvc?trang=2&q=tim"),
         "referrer": "https://dvc.example.vn/?trang=2&q=tim", "target": ""},
        {"kind": "outlink", "url": url(portal, "/dvc?trang=2&q=tim"),
         "referrer": "https://dvc.example.vn/?trang=2&q=tim",
         "target": url(portal, "/ngoai?trang=2&q=tim", "localhost")},
    ]
    assert len(names) == len(PERSONAL_PARAMS) > 40


async def test_opt_out_persists_until_forgotten(db, collector, portal, browser) -> None:
    portal.pages = {"/": html(collector)}
    page = await new_page(browser)
    await page.goto(url(portal, "/"))
    await loaded(page)
    await rows_until(db, "SELECT id FROM hits", 1)
    await page.evaluate("_govaq.push(['optUserOut'])")
    await page.reload()
    await loaded(page)
    await page.evaluate("_govaq.push(['trackEvent', 'opted', 'out'])")
    await page.evaluate("_govaq.push(['forgetUserOptOut'], ['trackEvent', 'back', 'in'])")
    rows = await rows_until(db, "SELECT kind, e_c FROM hits ORDER BY id", 2)
    await page.wait_for_timeout(200)
    rows = await db.fetch_all("SELECT kind, e_c FROM hits ORDER BY id")
    assert [(r["kind"], r["e_c"]) for r in rows] == [("pageview", ""), ("event", "back")]


async def test_noscript_image_counts_a_pageview(db, collector, portal, browser) -> None:
    portal.pages = {"/khong-js": html(collector, title="Không JavaScript")}
    context = await browser.new_context(user_agent=UA, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(url(portal, "/khong-js"))
    rows = await rows_until(db, "SELECT kind, url, host FROM hits", 1)
    # the page is the Referer; a cross-origin image gets only the origin by default policy
    assert rows == [{"kind": "pageview", "url": url(portal, "/"), "host": "127.0.0.1"}]


PRERENDER = """
let prerendering = true;
Object.defineProperty(Document.prototype, 'prerendering', {get: () => prerendering});
window.activate = () => {
  prerendering = false;
  document.dispatchEvent(new Event('prerenderingchange'));
};
"""


async def test_prerendered_page_sends_only_when_shown(db, collector, portal, browser) -> None:
    portal.pages = {"/truoc": html(collector, title="Tải trước")}
    page = await new_page(browser, PRERENDER)  # Chromium's document.prerendering, emulated
    await page.goto(url(portal, "/truoc"))
    await loaded(page)
    await page.wait_for_timeout(300)
    assert page.bodies == []
    assert await db.fetch_all("SELECT id FROM hits") == []
    await page.evaluate("activate()")
    rows = await rows_until(db, "SELECT kind, title FROM hits", 1)
    assert rows == [{"kind": "pageview", "title": "Tải trước"}]


async def test_demo_page_shows_its_hits(db, config, browser) -> None:
    await save_site(db, make_site(1, "H26", "portal", "Demo", ["localhost", "127.0.0.1"]))
    demo = Collector(dataclasses.replace(config, demo=True))
    base = await asyncio.to_thread(demo.start)
    try:
        page = await new_page(browser)
        await page.goto(base + "/demo")
        await loaded(page)
        await page.click("#dvc")
        rows = await rows_until(db, "SELECT kind, dvc_service FROM hits WHERE site_id = 1"
                                    " ORDER BY id", 2)
        assert [(r["kind"], r["dvc_service"]) for r in rows] == [
            ("pageview", ""), ("dvc", "1.000046")]
        await page.wait_for_function(
            "document.querySelectorAll('#hits tr').length >= 2", timeout=10_000)
        table = await page.inner_text("#hits")
        assert "1.000046 / 1" in table and "Nguy" not in table
    finally:
        await asyncio.to_thread(demo.stop)
