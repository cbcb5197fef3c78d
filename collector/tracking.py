"""``/tracking``: Matomo Tracking-API hits parsed into :class:`Hit`, or refused with a reason.

Accepted forms (what ``_govaq`` snippets and Matomo trackers send):

- ``GET /tracking?idsite=47&rec=1&url=…`` (answered with a 1×1 GIF unless ``send_image=0``);
- ``POST`` with a form-encoded or ``text/plain`` body of the same parameters
  (``navigator.sendBeacon``; no CORS preflight), answered ``204``;
- bulk ``POST {"requests": ["?idsite=…&rec=1…", …]}`` (JSON), answered with counts.

Parameters understood: ``idsite rec url urlref action_name _id rand res h m s pv_id
e_c e_a e_n e_v link download ua lang ping send_image`` and ``wd`` (the snippet's
``navigator.webdriver`` flag). ``_id``, ``rand``, ``h``, ``m``, ``s`` are accepted and
ignored: giamsat keeps no client-side identifiers and times every hit with the server's
clock.

DVC encoding — on top of Matomo's event fields, so any Matomo-compatible tracker can send it:

    trackDVC(serviceCode, state, extra) → e_c=dvc  e_a=step    e_n=serviceCode  e_v=state
                                          dvc_extra=extra
    rating (trackEvent)                 → e_c=dvc  e_a=rating  e_n=serviceCode  e_v=1..5

``state`` is an integer from -1 to 9 (-1 procedure page viewed, 0 other, 1 dossier
submitted). ``dvc_extra`` never reaches storage: only a keyed hash of its first field (the
dossier id) is kept.

Every refusal is an :class:`InvalidHit` carrying an HTTP status and a one-line reason;
the reason goes into the ``X-Giamsat-Error`` header and the ``dropped`` counters. A refusal
is counted for the site when the site id is known (also for ``rec`` missing), else site 0.
Text that no database can store is refused as ``malformed encoding``: invalid UTF-8 (raw or
%-escaped), NUL characters, lone surrogates (possible in bulk JSON). Letting one through
would fail the whole group-commit batch it lands in, refusing other senders' good hits.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_to_bytes, urlsplit

from collector.registry import normalize_host

MAX_URL = 2048
MAX_TITLE = 1024
MAX_UA = 512
MAX_FIELD = 256
MAX_FIELDS = 100
TZ_OFFSET_MS = 7 * 3600 * 1000  # Vietnam: UTC+7, no DST

_SERVICE_CODE = re.compile(r"^[\w.\-/]{1,64}$")
_SCREEN = re.compile(r"^\d{2,5}x\d{2,5}$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")


class InvalidHit(Exception):
    """A hit refused at the edge: ``status`` (4xx) and a one-line ``reason``."""

    def __init__(self, reason: str, status: int = 400, site_id: int = 0, host: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.site_id = site_id
        self.host = host


@dataclass(slots=True)
class Hit:
    site_id: int
    ts: int
    day: str
    kind: str
    url: str
    host: str
    path: str
    pv_id: str = ""
    title: str = ""
    referrer: str = ""
    ref_host: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    screen: str = ""
    lang: str = ""
    e_c: str = ""
    e_a: str = ""
    e_n: str = ""
    e_v: float | None = None
    target: str = ""
    dvc_service: str = ""
    dvc_state: int | None = None
    dvc_extra: str = ""
    ua: str = ""
    webdriver: bool = False


@lru_cache(maxsize=64)
def _day_of(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat()


def local_day(ts_ms: int) -> str:
    """The Vietnamese calendar day of a UTC timestamp in milliseconds."""
    return _day_of((ts_ms + TZ_OFFSET_MS) // 86_400_000)


@lru_cache(maxsize=1024)  # a few hundred screen sizes and language headers in all
def _screen(res: str) -> str:
    return res if _SCREEN.match(res) else ""


@lru_cache(maxsize=1024)
def _lang(raw: str) -> str:
    lang = _LANG.match(raw)
    return lang.group(0).lower() if lang else ""


def _unquote(s: str, errors: str = "strict") -> str:
    """%-decode (``+`` is a space) into UTF-8 text; invalid escapes are kept as they are.

    ``codecs.escape_decode`` does the decoding in C once every ``%`` is turned into ``\\x``
    (backslashes doubled first, so nothing else is an escape): ~1 µs for a Vietnamese title
    instead of ~7 µs for ``unquote_to_bytes``. It refuses an invalid escape (``%zz``, a
    ``%`` at the end); then the stdlib decoding, which keeps those as they are, is used.
    """
    if "+" in s:
        s = s.replace("+", " ")
    if "%" not in s:
        return s
    try:
        if "\\" in s:
            s = s.replace("\\", "\\\\")
        raw = codecs.escape_decode(s.replace("%", "\\x"))[0]
    except ValueError:
        raw = unquote_to_bytes(s)
    return raw.decode("utf-8", errors)


_NOT_SEP = bytes(b for b in range(256) if b not in b"=&")


def parse_query(raw: bytes | str) -> dict[str, str]:
    """Decode a query string or form body strictly; the last value of a repeated key wins.

    The same result as ``dict(parse_qsl(text, keep_blank_values=True, errors="strict"))``
    (a test holds it to that), at a fraction of the cost. The common body — every field
    ``key=value`` with one ``=``, no escapes in the keys — is split by C string methods
    alone; then only values holding ``%`` or ``+`` are decoded.
    """
    try:
        # a str (bulk JSON) may hold lone surrogates, which no database can store
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        text = data.decode("utf-8")
        if "\x00" in text or "%00" in text:
            raise InvalidHit("malformed encoding: NUL character")
        text = text.lstrip("?")
        fields = text.count("&") + 1
        if fields > MAX_FIELDS:
            raise InvalidHit(f"too many parameters (more than {MAX_FIELDS})")
        escaped = "%" in text or "+" in text
        # one "=" in every field: the separators, in order, alternate "=&=&…=" ('==&' has
        # as many "=" as fields, but not one in each); bytes.translate keeps them in C
        separators = data.translate(None, _NOT_SEP)
        if len(separators) == 2 * fields - 1 and separators == b"=&" * (fields - 1) + b"=":
            words = text.replace("&", "=").split("=")
            keys = words[::2]
            params = dict(zip(keys, words[1::2], strict=True))
            # a repeated key: every value it had must decode too (the general loop below)
            if len(params) == fields and (not escaped or (
                    "%" not in (joined := "&".join(keys)) and "+" not in joined)):
                if escaped:
                    for key, value in params.items():
                        if "%" in value or "+" in value:
                            params[key] = _unquote(value)
                return params
        params = {}
        for part in text.split("&"):
            if part:
                key, _, value = part.partition("=")
                params[_unquote(key) if escaped else key] = _unquote(value) if escaped else value
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise InvalidHit("malformed encoding: not UTF-8") from None
    return params


def split_url(url: str) -> tuple[str, str, str, str]:
    """``(scheme, host, path, query)`` of a URL; ``host`` normalised (lower case, no port, no
    ``www.``). Raises ``ValueError`` for a URL ``urlsplit`` cannot read.

    The common URL — ``http(s)://`` then an ASCII host without user info or brackets, all
    printable ASCII — is split with string methods (a regex or ``urlsplit`` costs several
    times more); its parts are exactly those of ``urlsplit`` (a test holds it to that).
    Anything else goes through ``urlsplit``.
    """
    if url.startswith("https://"):
        scheme, rest = "https", url[8:]
    elif url.startswith("http://"):
        scheme, rest = "http", url[7:]
    else:
        scheme = rest = ""
    if scheme and url.isascii() and url.isprintable():
        netloc, slash, tail = rest.partition("/")
        if "?" not in netloc and "#" not in netloc and "@" not in netloc \
                and "[" not in netloc and "]" not in netloc:
            tail = slash + tail.partition("#")[0]
            path, _, query = tail.partition("?")
            host = netloc.partition(":")[0].lower().rstrip(".")
            return scheme, host[4:] if host.startswith("www.") else host, path, query
    parts = urlsplit(url)
    return parts.scheme, normalize_host(parts.hostname or ""), parts.path, parts.query


@lru_cache(maxsize=4096)  # referrers repeat: search engines, social networks, portals
def _referrer(raw: str) -> tuple[str, str]:
    """``(referrer, its host)``; an unreadable or non-web referrer is none."""
    ref = raw.strip()[:MAX_URL]
    try:
        scheme, host, _, _ = split_url(ref)
    except ValueError:
        return "", ""
    return (ref, host) if scheme in ("http", "https", "android-app") and host else ("", "")


def ascii_int(raw: str) -> int | None:
    """``raw`` as a non-negative integer if it is 1–18 ASCII digits, else ``None``:
    ``str.isdigit`` is true for '²' (``int()`` fails) and '٤٧' (``int()`` reads 47)."""
    if not raw or len(raw) > 18 or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def _site_id(params: Mapping[str, str]) -> int:
    raw = params.get("idsite", "").strip()
    if not raw:
        raise InvalidHit("idsite missing")
    site_id = ascii_int(raw) if len(raw) <= 9 else None
    if site_id is None:
        raise InvalidHit("idsite invalid: expected a number")
    return site_id


_CAMPAIGN = re.compile(r"(?:^|&)([um])tm_(source|medium|campaign)=([^&]*)")


@lru_cache(maxsize=4096)  # campaign links are shared: the same query string again and again
def _utm(query: str) -> tuple[str, str, str]:
    """``utm_*`` (or Matomo's ``mtm_*``) source, medium and campaign of a page's query."""
    found = {(u, name): value for u, name, value in _CAMPAIGN.findall(query)}

    def pick(name: str) -> str:
        value = found.get(("u", name)) or found.get(("m", name)) or ""
        return _unquote(value, "replace")[:MAX_FIELD] if value else ""

    return pick("source"), pick("medium"), pick("campaign")


def _float(params: Mapping[str, str], key: str, site_id: int) -> float | None:
    raw = params.get(key, "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidHit(f"{key} invalid: expected a number", site_id=site_id) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidHit(f"{key} invalid: expected a number", site_id=site_id)
    return value


def parse_hit(
    params: Mapping[str, str],
    sites: Mapping[int, frozenset[str]],
    now_ms: int,
    ua_header: str = "",
    lang_header: str = "",
) -> Hit:
    """One Matomo-style hit → :class:`Hit`, or :class:`InvalidHit` with the reason."""
    if params.get("rec") != "1":
        raw = params.get("idsite", "")
        known = (ascii_int(raw) or 0) if len(raw) <= 9 else 0
        raise InvalidHit("rec missing: expected rec=1", site_id=known if known in sites else 0)
    site_id = _site_id(params)
    hosts = sites.get(site_id)
    if hosts is None:
        raise InvalidHit("unknown site", 404)

    url = params.get("url", "").strip()
    if not url:
        raise InvalidHit("url missing", site_id=site_id)
    if len(url) > MAX_URL:
        raise InvalidHit(f"url too long (over {MAX_URL} characters)", 413, site_id)
    try:
        scheme, host, path, query = split_url(url)
    except ValueError:
        raise InvalidHit("url invalid", site_id=site_id) from None
    if scheme not in ("http", "https") or not host:
        raise InvalidHit("url invalid: expected http(s)://host/...", site_id=site_id)
    if host not in hosts:
        raise InvalidHit("host not registered to this site", 403, site_id, host[:253])

    get = params.get
    ref = get("urlref", "")
    referrer, ref_host = _referrer(ref) if ref else ("", "")
    source, medium, campaign = _utm(query) if "tm_" in query else ("", "", "")
    hit = Hit(
        site_id, now_ms, local_day(now_ms), "pageview", url, host, path or "/",
        get("pv_id", "")[:16], get("action_name", "")[:MAX_TITLE], referrer, ref_host,
        source, medium, campaign, _screen(get("res", "")), _lang(get("lang") or lang_header),
        "", "", "", None, "", "", None, "", (get("ua") or ua_header)[:MAX_UA], get("wd") == "1",
    )
    e_c = get("e_c", "")
    if get("ping") == "1":
        hit.kind = "ping"
    elif get("link"):
        hit.kind, hit.target = "outlink", params["link"][:MAX_URL]
    elif get("download"):
        hit.kind, hit.target = "download", params["download"][:MAX_URL]
    elif e_c:
        hit.kind = "event"
        hit.e_c = e_c[:MAX_FIELD]
        hit.e_a = get("e_a", "")[:MAX_FIELD]
        hit.e_n = get("e_n", "")[:MAX_FIELD]
        hit.e_v = _float(params, "e_v", site_id)
        if not hit.e_a:
            raise InvalidHit("e_a missing: an event needs an action", site_id=site_id)
        if e_c.lower() == "dvc":
            _dvc(hit, params)
    return hit


def _dvc(hit: Hit, params: Mapping[str, str]) -> None:
    action = hit.e_a.lower()
    if action not in ("step", "rating"):
        return  # other dvc events stay plain events
    code = hit.e_n.strip()
    if not _SERVICE_CODE.match(code):
        raise InvalidHit("dvc service code invalid", site_id=hit.site_id)
    value = hit.e_v
    if action == "step":
        if value is None or value != int(value) or not -1 <= value <= 9:
            raise InvalidHit(
                "dvc state invalid: expected an integer from -1 to 9", site_id=hit.site_id
            )
        hit.kind, hit.dvc_state = "dvc", int(value)
        hit.dvc_extra = params.get("dvc_extra", "")[:MAX_URL]
    else:
        if value is None or value != int(value) or not 1 <= value <= 5:
            raise InvalidHit("dvc rating invalid: expected 1 to 5", site_id=hit.site_id)
        hit.kind = "rating"
    hit.e_c, hit.e_a, hit.dvc_service = "dvc", action, code
