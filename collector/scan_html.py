"""What one fetched page says about its monitoring code: a pure function over the HTML.

``analyse_page(html, site_id, our_hosts)`` finds the ``_govaq`` snippet and reports:

- ``snippet``: ``present`` (an active ``_govaq.push(…)`` in an inline script),
  ``commented`` (pushes only inside ``<!-- … -->`` or JavaScript ``//`` / ``/* */``
  comments), or ``absent``;
- the site id it sets (``setSiteId``): ``right``, ``wrong`` (another id), ``empty``
  (``''`` or blank), ``missing`` (a snippet without ``setSiteId``);
- the tracker URL (``setTrackerUrl``), resolved through simple ``var u = '…'`` string
  assignments and ``+`` concatenation; whether it is ``https`` and on one of our hosts
  (the host of ``GIAMSAT_PUBLIC_URL`` and those of ``GIAMSAT_PUBLIC_HOSTS``, compared
  without ``www.``, port or user info); unknown (``None``) when neither is configured —
  the scanner then reports ``tracker_host_unknown``, a warning, rather than guess;
- whether the loader (``…/gov-tracking.min.js``) is referenced, by a ``<script src>`` or
  a string in active script code;
- whether the page shows the "connected" badge.

The badge is recognised (decision) when the page has an ``<img>`` whose ``src`` path is the
collector's badge URL ``/badge/<id>.svg`` (served by ``collector/badge.py``), or an
``<img>``/``<a>`` whose ``alt``, ``title`` or text says "EMC" together with "kết nối" or
"connected" (e.g. "Đã kết nối EMC"), the forms agencies copy from the ministry's guide.

Only the HTML itself and its inline scripts are read: a snippet bundled into an external
``.js`` file is not seen (the loader reference and the hits still show it). Pages are
attacker-controlled text: nothing here executes, every value found is truncated, and it is
escaped wherever it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from collector.registry import normalize_host

MAX_VALUE = 300
LOADER = re.compile(r"gov-tracking(\.min)?\.js", re.I)
BADGE_PATH = re.compile(r"/badge/(\d+)\.svg$")
BADGE_TEXT = re.compile(r"\bEMC\b", re.I)
BADGE_WORDS = re.compile(r"kết\s*nối|ket\s*noi|connected", re.I)
PUSH = re.compile(r"_govaq\s*\.\s*push\s*\(\s*\[(.*?)\]\s*\)", re.S)
ASSIGN = re.compile(r"(?:\bvar|\blet|\bconst|[;{\s,])\s*([A-Za-z_$][\w$]*)\s*=\s*([^;\n]+)")
TOKEN = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|`([^`$]*)`|"""
                   r"""([A-Za-z_$][\w$.]*)|(-?\d+)|(\+))""", re.S)


@dataclass
class PageFindings:
    snippet: str = "absent"          # present | commented | absent
    site_id_found: str = ""
    site_id_state: str = ""          # right | wrong | empty | missing | ''
    tracker_url: str = ""
    tracker_https: bool | None = None
    tracker_ours: bool | None = None
    loader: bool = False
    badge: bool = False
    links: tuple[str, ...] = ()      # same-host links, absolute


def split_js(code: str) -> tuple[str, str]:
    """Split script text into (active code, commented-out code); string literals are kept
    whole so ``'https://…'`` is never taken for a ``//`` comment."""
    active: list[str] = []
    comments: list[str] = []
    i, n = 0, len(code)
    start = 0
    while i < n:
        c = code[i]
        if c in "'\"`":
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            i = j + 1
        elif code.startswith("//", i):
            active.append(code[start:i])
            j = code.find("\n", i)
            j = n if j < 0 else j
            comments.append(code[i + 2:j])
            i = start = j
        elif code.startswith("/*", i):
            active.append(code[start:i])
            j = code.find("*/", i + 2)
            j = n if j < 0 else j
            comments.append(code[i + 2:j])
            i = start = j + 2
        else:
            i += 1
    active.append(code[start:])
    return "".join(active), "\n".join(comments)


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _eval(expr: str, names: dict[str, str]) -> str | None:
    """Evaluate ``'a' + u + "b"``-style string expressions; None when anything else."""
    out, pos, expect_value = [], 0, True
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            return None
        pos = m.end()
        s1, s2, s3, ident, num, plus = m.groups()
        if plus:
            if expect_value:
                return None
            expect_value = True
            continue
        if not expect_value:
            return None
        expect_value = False
        if s1 is not None or s2 is not None or s3 is not None:
            out.append(_unescape(next(s for s in (s1, s2, s3) if s is not None)))
        elif num is not None:
            out.append(num)
        elif ident in names:
            out.append(names[ident])
        else:
            return None
    return None if expect_value else "".join(out)


def _args(body: str, names: dict[str, str]) -> list[str | None]:
    parts, depth, cur, quote = [], 0, [], ""
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [_eval(p, names) for p in parts]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.html_comments: list[str] = []
        self.script_srcs: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.anchors: list[dict[str, str]] = []
        self._in_script = False
        self._in_a: dict[str, str] | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "script":
            self._in_script, self._buf = True, []
            if a.get("src"):
                self.script_srcs.append(a["src"])
        elif tag == "img":
            self.imgs.append(a)
            if self._in_a is not None:
                self._in_a["text"] += " " + a.get("alt", "")
        elif tag == "a":
            self._in_a = {**a, "text": ""}
            self.anchors.append(self._in_a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script:
            self.scripts.append("".join(self._buf))
            self._in_script = False
        elif tag == "a":
            self._in_a = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self._buf.append(data)
        elif self._in_a is not None and len(self._in_a["text"]) < 500:
            self._in_a["text"] += data

    def handle_comment(self, data: str) -> None:
        self.html_comments.append(data)


def _is_badge(site_id: int, img: dict[str, str], page_url: str) -> bool:
    m = BADGE_PATH.search(urlsplit(urljoin(page_url, img.get("src", ""))).path)
    if m and int(m.group(1)) == site_id:
        return True
    text = " ".join((img.get("alt", ""), img.get("title", ""), img.get("text", "")))
    return bool(BADGE_TEXT.search(text) and BADGE_WORDS.search(text))


def analyse_page(html: str, site_id: int, our_hosts: Collection[str] | str | None,
                 page_url: str = "") -> PageFindings:
    ours = {normalize_host(h) for h in ([our_hosts] if isinstance(our_hosts, str)
                                        else our_hosts or ()) if h}
    p = _Collector()
    try:
        p.feed(html)
        p.close()
    except Exception:  # html.parser is lenient; a pathological page must not stop a scan
        pass
    active_parts, commented_parts = [], list(p.html_comments)
    for s in p.scripts:
        a, c = split_js(s)
        active_parts.append(a)
        commented_parts.append(c)
    active = "\n".join(active_parts)
    f = PageFindings()
    pushes = [m.group(1) for m in PUSH.finditer(active)]
    if pushes:
        f.snippet = "present"
    elif any("_govaq" in c and PUSH.search(c) for c in commented_parts):
        f.snippet = "commented"
    names: dict[str, str] = {}
    for m in ASSIGN.finditer(active):
        value = _eval(m.group(2).strip().rstrip(";"), names)
        if value is not None:
            names[m.group(1)] = value
    site_ids, trackers = [], []
    for body in pushes:
        args = _args(body, names)
        if args and args[0] == "setSiteId":
            site_ids.append(args[1] if len(args) > 1 else "")
        elif args and args[0] == "setTrackerUrl":
            trackers.append(args[1] if len(args) > 1 else None)
    if f.snippet == "present":
        if not site_ids:
            f.site_id_state = "missing"
        else:
            found = site_ids[-1]
            f.site_id_found = (found if found is not None else "?")[:64]
            if found is None or not found.strip():
                f.site_id_state = "empty" if found is not None else "wrong"
            else:
                f.site_id_state = "right" if found.strip() == str(site_id) else "wrong"
        if trackers:
            t = trackers[-1]
            f.tracker_url = (t if t is not None else "?")[:MAX_VALUE]
            if t is not None:
                try:
                    parts = urlsplit(urljoin(page_url, t) if t.startswith("/") else t)
                except ValueError:  # 'https://[::1/tracking': not a URL at all
                    parts = urlsplit("")
                f.tracker_https = parts.scheme == "https"
                if ours:
                    f.tracker_ours = normalize_host(parts.hostname or "") in ours
    f.loader = any(LOADER.search(s) for s in p.script_srcs) or bool(LOADER.search(active))
    f.badge = any(_is_badge(site_id, i, page_url) for i in p.imgs) or any(
        _is_badge(site_id, {"alt": a.get("title", ""), "text": a["text"]}, page_url)
        for a in p.anchors
    )
    f.links = same_host_links(page_url, [a.get("href", "") for a in p.anchors])
    return f


def same_host_links(page_url: str, hrefs: list[str], limit: int = 200) -> tuple[str, ...]:
    """Absolute http(s) links on the page's own host, without fragments, in order, unique."""
    base = urlsplit(page_url)
    out: dict[str, None] = {}
    for h in hrefs:
        h = h.strip()
        if not h or h.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        u = urlsplit(urljoin(page_url, h))
        if u.scheme not in ("http", "https") or u.netloc.lower() != base.netloc.lower():
            continue
        url = u._replace(fragment="").geturl()
        if url.rstrip("/") != page_url.rstrip("/"):
            out.setdefault(url)
        if len(out) >= limit:
            break
    return tuple(out)


_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.I)


def sitemap_urls(xml: str) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index; tolerant regex read
    (no XML parser on attacker text, so no entity expansion)."""
    locs = [u.replace("&amp;", "&") for u in _LOC.findall(xml)]
    if re.search(r"<sitemapindex", xml, re.I):
        return [], locs
    return locs, []
