"""The active install scanner: fetch each site's pages, read their snippet, keep the result.

``giamsat scan [SITE_ID…]`` (and the in-server job every ``GIAMSAT_SCAN_INTERVAL``
seconds, off by default) fetches for every registered site its home page and a sample of
its pages — from ``sitemap.xml`` next to the home page when it lists any, else same-host
links of the home page — with httpx, a bound on requests in flight, timeouts and retries
(timeouts, refused connections, 502/503/504; never TLS or DNS errors). Every page is read
by :func:`collector.scan_html.analyse_page`; one ``scans`` row per site and one
``scan_pages`` row per page are stored with the scan time, as history.

Where a site is scanned (decision): ``https://<first registered host>/``, unless the
``scan_targets`` table holds a base URL for it (``giamsat scan SITE --url URL --save-url``;
``--url`` alone overrides one run). Tests and benches point sites at local servers that way.

Page status vocabulary: ``ok``, ``timeout``, ``dns_error``, ``tls_error``,
``connection_refused``, ``connection_error``, ``too_many_redirects``, ``http_<code>``
(4xx/5xx), ``not_html``, ``error``.

HTTPS enforced: for an ``https`` base, ``http://<host>/`` is requested once without
following redirects; 1 when it redirects to an ``https:`` URL or plain HTTP is refused, 0 when
it serves a page (or redirects to another ``http:`` URL), NULL when unknown. For an ``http``
base: 1 if the home page ended on ``https``, else 0 (the page was served in plaintext).

Site finding codes (``scans.findings``), over the home page and every sampled page read:
``home_unreachable`` · ``snippet_absent`` (home) · ``snippet_commented`` ·
``site_id_empty`` · ``site_id_wrong`` · ``site_id_missing`` · ``tracker_http`` ·
``tracker_not_ours`` · ``tracker_missing`` · ``loader_missing`` ·
``snippet_missing_on_pages`` (a sampled page read fine but has no active snippet) ·
``badge_missing`` · ``https_not_enforced`` · ``tracker_host_unknown``. What each one means
for the compliance state is decided in ``collector/compliance.py``.

Tracker host (decision): "ours" is the host of ``GIAMSAT_PUBLIC_URL`` or any host listed in
``GIAMSAT_PUBLIC_HOSTS`` (comma separated: a collector reachable under several names, an
old name kept during a move). With neither configured the scanner cannot tell ours from
another server: ``tracker_ours`` is stored as NULL and the site gets the warning
``tracker_host_unknown`` (shown, no effect on the state) instead of a wrong
``tracker_not_ours`` or a silent pass. ``giamsat scan --public-url … --public-hosts …``
set them for one run.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from collector.config import Config
from collector.registry import Site, list_sites
from collector.scan_html import PageFindings, analyse_page, sitemap_urls
from collector.store import Database

RETRY_STATUS = (502, 503, 504)
USER_AGENT = "giamsat-scanner/0.1 (+install check of the monitoring code)"


@dataclass(frozen=True)
class ScanOptions:
    sample: int = 5            # pages besides the home page
    concurrency: int = 16      # requests in flight over all sites
    timeout: float = 10.0      # seconds, per request (connect, read, pool)
    retries: int = 1
    max_redirects: int = 5
    max_bytes: int = 2_000_000
    verify: bool = True        # TLS certificate verification (off only for experiments)


@dataclass
class Page:
    url: str
    status: str
    http_status: int | None = None
    final_url: str = ""
    elapsed_ms: int = 0
    error: str = ""
    text: str = field(default="", repr=False)
    findings: PageFindings | None = None


@dataclass
class SiteScan:
    site_id: int
    ts: int
    base_url: str
    pages: list[Page]
    https_enforced: int | None
    findings: list[str]
    duration_ms: int = 0

    @property
    def home(self) -> Page:
        return self.pages[0]


def _classify(exc: BaseException) -> str:
    if isinstance(exc, httpx.TooManyRedirects):
        return "too_many_redirects"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(str(x) for x in chain).lower()
    if any(isinstance(x, ssl.SSLError) for x in chain) or "ssl" in text or "certificate" in text:
        return "tls_error"
    if any(isinstance(x, socket.gaierror) for x in chain) or "name or service" in text \
            or "getaddrinfo" in text or "name resolution" in text:
        return "dns_error"
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or "refused" in text:
        return "connection_refused"
    if isinstance(exc, httpx.TransportError):
        return "connection_error"
    return "error"


def _is_html(content_type: str, text: str) -> bool:
    ct = content_type.lower()
    if "html" in ct:
        return True
    if ct and not ct.startswith("text/plain"):
        return False
    head = text[:512].lstrip().lower()
    return head.startswith(("<!doctype html", "<html"))


async def fetch(
    client: httpx.AsyncClient, url: str, opts: ScanOptions, gate: asyncio.Semaphore,
    *, html: bool = True,
) -> Page:
    """GET one URL with retries; never raises."""
    attempt = 0
    while True:
        start = time.perf_counter()
        page = await _fetch_once(client, url, opts, gate, html=html)
        page.elapsed_ms = int((time.perf_counter() - start) * 1000)
        retry = page.status in ("timeout", "connection_refused", "connection_error") or (
            page.http_status in RETRY_STATUS)
        if not retry or attempt >= opts.retries:
            return page
        attempt += 1
        await asyncio.sleep(0.2 * 2 ** (attempt - 1))


async def _fetch_once(
    client: httpx.AsyncClient, url: str, opts: ScanOptions, gate: asyncio.Semaphore, *,
    html: bool,
) -> Page:
    async with gate:
        try:
            async with client.stream("GET", url) as r:
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) >= opts.max_bytes:
                        break
                final = str(r.url)
                if r.status_code >= 400:
                    return Page(url, f"http_{r.status_code}", r.status_code, final)
                text = bytes(body).decode(r.encoding or "utf-8", errors="replace")
                if html and not _is_html(r.headers.get("content-type", ""), text):
                    return Page(url, "not_html", r.status_code, final)
                return Page(url, "ok", r.status_code, final, text=text)
        except Exception as e:  # every failure becomes a status; a scan never stops
            return Page(url, _classify(e), None, "", error=f"{type(e).__name__}: {e}"[:300])


async def _sample(
    client: httpx.AsyncClient, home: Page, base_url: str, opts: ScanOptions,
    gate: asyncio.Semaphore,
) -> list[str]:
    if opts.sample <= 0:
        return []
    root = home.final_url or base_url
    hosts = {urlsplit(root).netloc.lower(), urlsplit(base_url).netloc.lower()}
    home_urls = {u.rstrip("/") for u in (base_url, root)}
    candidates: list[str] = []
    sm = await fetch(client, urljoin(base_url, "sitemap.xml"), opts, gate, html=False)
    if sm.status in ("ok", "not_html") and sm.text:
        pages, children = sitemap_urls(sm.text)
        for child in children[:2]:
            c = await fetch(client, urljoin(base_url, child), opts, gate, html=False)
            pages += sitemap_urls(c.text)[0] if c.status in ("ok", "not_html") else []
        candidates = [urljoin(base_url, u) for u in pages]
    if not candidates and home.findings is not None:
        candidates = list(home.findings.links)
    out: list[str] = []
    for u in candidates:
        parts = urlsplit(u)
        if parts.scheme in ("http", "https") and parts.netloc.lower() in hosts \
                and u.rstrip("/") not in home_urls and u not in out:
            out.append(u)
        if len(out) >= opts.sample:
            break
    return out


async def _https_enforced(
    client: httpx.AsyncClient, base_url: str, home: Page, opts: ScanOptions,
    gate: asyncio.Semaphore,
) -> int | None:
    parts = urlsplit(base_url)
    if parts.scheme == "http":
        if home.final_url.startswith("https:"):
            return 1
        return 0 if home.status == "ok" else None
    plain = parts._replace(scheme="http").geturl()
    async with gate:
        try:
            r = await client.get(plain, follow_redirects=False)
        except Exception as e:
            return 1 if _classify(e) == "connection_refused" else None
    if r.is_redirect:
        return 1 if r.headers.get("location", "").startswith("https:") else 0
    return 0 if r.status_code < 400 else None


def site_findings(pages: list[Page], https_enforced: int | None) -> list[str]:
    home = pages[0]
    out: list[str] = []

    def add(code: str) -> None:
        if code not in out:
            out.append(code)

    if home.status != "ok":
        add("home_unreachable")
    read = [p for p in pages if p.status == "ok" and p.findings is not None]
    if home.findings is not None and home.findings.snippet == "absent":
        add("snippet_absent")
    for i, p in enumerate(read):
        f = p.findings
        assert f is not None
        if f.snippet == "commented":
            add("snippet_commented")
        elif f.snippet == "absent" and (i > 0 or p is not home):
            add("snippet_missing_on_pages")
        if f.snippet != "present":
            continue
        if f.site_id_state in ("empty", "wrong", "missing"):
            add(f"site_id_{f.site_id_state}")
        if not f.tracker_url:
            add("tracker_missing")
        if f.tracker_https is False:
            add("tracker_http")
        if f.tracker_ours is False:
            add("tracker_not_ours")
        if f.tracker_ours is None and f.tracker_url and f.tracker_https is not None:
            add("tracker_host_unknown")
        if not f.loader:
            add("loader_missing")
    if read and not any(p.findings and p.findings.badge for p in read):
        add("badge_missing")
    if https_enforced == 0:
        add("https_not_enforced")
    return out


async def _analyse(text: str, site_id: int, our_hosts: frozenset[str], url: str) -> PageFindings:
    """Small pages in line; big ones on a thread so a scan inside the server does not hold
    the event loop that answers /tracking."""
    if len(text) < 100_000:
        return analyse_page(text, site_id, our_hosts, url)
    return await asyncio.to_thread(analyse_page, text, site_id, our_hosts, url)


async def scan_site(
    client: httpx.AsyncClient, site_id: int, base_url: str, our_hosts: frozenset[str],
    opts: ScanOptions, gate: asyncio.Semaphore,
) -> SiteScan:
    start = time.perf_counter()
    ts = int(time.time() * 1000)
    home = await fetch(client, base_url, opts, gate)
    if home.status == "ok":
        home.findings = await _analyse(home.text, site_id, our_hosts, home.final_url or base_url)
    urls = await _sample(client, home, base_url, opts, gate) if home.status == "ok" else []
    https_task = asyncio.create_task(_https_enforced(client, base_url, home, opts, gate))
    pages = [home, *await asyncio.gather(*(fetch(client, u, opts, gate) for u in urls))]
    for p in pages[1:]:
        if p.status == "ok":
            p.findings = await _analyse(p.text, site_id, our_hosts, p.final_url or p.url)
    https = await https_task
    for p in pages:
        p.text = ""  # keep memory flat over thousands of sites
    return SiteScan(site_id, ts, base_url, pages, https, site_findings(pages, https),
                    int((time.perf_counter() - start) * 1000))


def _b(v: bool | None) -> int | None:
    return None if v is None else int(v)


async def store_scan(db: Database, s: SiteScan) -> None:
    home = s.home.findings
    ok = [p for p in s.pages if p.status == "ok"]
    row = {
        "site_id": s.site_id, "ts": s.ts, "base_url": s.base_url[:500],
        "duration_ms": s.duration_ms, "home_status": s.home.status,
        "https_enforced": s.https_enforced,
        "snippet": home.snippet if home else "unknown",
        "site_id_found": home.site_id_found if home else "",
        "site_id_state": home.site_id_state if home else "",
        "tracker_url": home.tracker_url if home else "",
        "tracker_https": _b(home.tracker_https) if home else None,
        "tracker_ours": _b(home.tracker_ours) if home else None,
        "loader": int(bool(home and home.loader)),
        "badge": int(any(p.findings and p.findings.badge for p in ok)),
        "pages": len(s.pages), "pages_ok": len(ok),
        "pages_snippet": sum(1 for p in ok if p.findings and p.findings.snippet == "present"),
        "findings": json.dumps(s.findings),
    }
    pages = [
        {
            "site_id": s.site_id, "ts": s.ts, "n": i, "url": p.url[:2048],
            "final_url": p.final_url[:2048], "status": p.status, "http_status": p.http_status,
            "elapsed_ms": p.elapsed_ms,
            "snippet": p.findings.snippet if p.findings else "unknown",
            "site_id_found": p.findings.site_id_found if p.findings else "",
            "site_id_state": p.findings.site_id_state if p.findings else "",
            "tracker_url": p.findings.tracker_url if p.findings else "",
            "tracker_https": _b(p.findings.tracker_https) if p.findings else None,
            "tracker_ours": _b(p.findings.tracker_ours) if p.findings else None,
            "loader": int(bool(p.findings and p.findings.loader)),
            "badge": int(bool(p.findings and p.findings.badge)), "error": p.error,
        }
        for i, p in enumerate(s.pages)
    ]
    cols = list(row)
    pcols = list(pages[0])
    async with db.transaction() as tx:
        await tx.execute(
            f"INSERT INTO scans ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
            "ON CONFLICT (site_id, ts) DO NOTHING", row)
        await tx.execute_many(
            f"INSERT INTO scan_pages ({', '.join(pcols)}) "
            f"VALUES ({', '.join(':' + c for c in pcols)}) "
            "ON CONFLICT (site_id, ts, n) DO NOTHING", pages)


async def scan_targets(db: Database, site_ids: list[int] | None = None) -> list[tuple[Site, str]]:
    """(site, base URL) for the given ids (all sites when None), registry order."""
    overrides = {r["site_id"]: r["base_url"]
                 for r in await db.fetch_all("SELECT site_id, base_url FROM scan_targets")}
    wanted = set(site_ids) if site_ids else None
    return [(s, overrides.get(s.id) or f"https://{s.hosts[0]}/")
            for s in await list_sites(db)
            if (wanted is None or s.id in wanted) and s.hosts]


async def save_target(db: Database, site_id: int, base_url: str) -> None:
    await db.execute(
        "INSERT INTO scan_targets (site_id, base_url) VALUES (:s, :u) "
        "ON CONFLICT (site_id) DO UPDATE SET base_url = excluded.base_url",
        {"s": site_id, "u": base_url})


def our_hosts(config: Config) -> frozenset[str]:
    """The hosts a tracker URL may point at: ``GIAMSAT_PUBLIC_URL``'s and those listed in
    ``GIAMSAT_PUBLIC_HOSTS``. Empty when neither is set: the check is then unknown."""
    hosts = {h.strip() for h in config.public_hosts.split(",") if h.strip()}
    if config.public_url:
        hosts.add(urlsplit(config.public_url).hostname or "")
    return frozenset(h for h in hosts if h)


async def run_scans(
    db: Database, config: Config, targets: list[tuple[int, str]], opts: ScanOptions,
    on_done: Callable[[SiteScan], None] | None = None,
) -> list[SiteScan]:
    """Scan (site id, base URL) pairs with ``opts.concurrency`` requests in flight; store each
    site's result as soon as it is done."""
    gate = asyncio.Semaphore(max(1, opts.concurrency))
    host = our_hosts(config)
    timeout = httpx.Timeout(opts.timeout)
    limits = httpx.Limits(max_connections=max(1, opts.concurrency), max_keepalive_connections=32)
    results: list[SiteScan] = []
    async with httpx.AsyncClient(
        follow_redirects=True, max_redirects=opts.max_redirects, timeout=timeout,
        limits=limits, verify=opts.verify, headers={"user-agent": USER_AGENT},
        trust_env=False,
    ) as client:

        async def one(site_id: int, base: str) -> None:
            s = await scan_site(client, site_id, base, host, opts, gate)
            await store_scan(db, s)
            results.append(s)
            if on_done:
                on_done(s)

        # sites start in waves so a big registry does not hold thousands of tasks at once
        wave = max(1, opts.concurrency) * 4
        for i in range(0, len(targets), wave):
            await asyncio.gather(*(one(sid, base) for sid, base in targets[i:i + wave]))
    return results


async def scheduled_scan(db: Database, config: Config) -> int:
    """The in-server job: scan every registered site once; returns sites scanned."""
    targets = [(s.id, base) for s, base in await scan_targets(db)]
    await run_scans(db, config, targets, ScanOptions(sample=config.scan_sample))
    return len(targets)
