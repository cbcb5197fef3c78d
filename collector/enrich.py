"""What a hit learns about its visitor before storage, without keeping who they are.

- user agent → browser, OS, device type, through ``ua-parser`` (Rust accelerator) behind an
  LRU cache: a repeated user agent costs a dictionary look-up;
- bots: known crawler and tool user agents, headless browsers, and the snippet's
  ``webdriver`` flag; a bot hit is dropped with reason ``bot``, never counted as a visit;
- GeoIP: a MaxMind/DB-IP City ``.mmdb`` (``GIAMSAT_GEOIP_PATH``) gives the country and the
  old province, mapped to today's provincial unit; no database → unknown;
- visitor: ``blake2b(daily salt, site, ip, user agent)`` as a signed 64-bit number. Salts
  are random, shared through the database by every collector, rotate at local midnight,
  and are deleted after two days, so a visitor id cannot be linked across days or back
  to an IP. The IP itself is never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import secrets
from functools import lru_cache
from typing import Any, NamedTuple

import maxminddb
from ua_parser import parse as parse_ua

from collector.privacy import clean_url, dvc_reference, redact_all
from collector.registry import fold_name, province_codes
from collector.store import Database
from collector.tracking import MAX_URL, Hit, InvalidHit

_BOT = re.compile(
    r"bot|crawl|spider|slurp|headless|phantomjs|selenium|webdriver|puppeteer|playwright|"
    r"lighthouse|pagespeed|pingdom|uptime|monitor|curl|wget|python|httpx|aiohttp|java/|"
    r"go-http|okhttp|libwww|scrapy|axios|node-fetch|facebookexternalhit|preview|check",
    re.I,
)


class Agent(NamedTuple):
    browser: str
    os: str
    device: str
    bot: bool


@lru_cache(maxsize=8192)
def parse_agent(ua: str) -> Agent:
    if not ua or len(ua) < 8 or _BOT.search(ua):
        return Agent("", "", "other", True)
    r = parse_ua(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    os_name = r.os.family if r.os else "Other"
    device_family = r.device.family if r.device else ""
    if device_family == "Spider":
        return Agent(browser, os_name, "other", True)
    low = ua.lower()
    if "ipad" in low or "tablet" in low or (os_name == "Android" and "mobile" not in low):
        device = "tablet"
    elif "mobi" in low or os_name in ("iOS", "Android"):
        device = "mobile"
    else:
        device = "desktop"
    return Agent(browser, os_name, device, False)


class Geo(NamedTuple):
    country: str
    province: str


NO_GEO = Geo("", "")


class GeoIP:
    """Country and today's provincial unit for an IP; unknown without a database."""

    def __init__(self, path: str = "") -> None:
        self._reader = maxminddb.open_database(path) if path else None
        self._provinces = province_codes()

    def lookup(self, ip: str) -> Geo:
        if self._reader is None or not ip:
            return NO_GEO
        try:
            rec = self._reader.get(ip)
        except ValueError:
            return NO_GEO
        if not isinstance(rec, dict):
            return NO_GEO
        country = (rec.get("country") or {}).get("iso_code") or ""
        province = ""
        if country == "VN":
            for sub in rec.get("subdivisions") or []:
                key = sub.get("iso_code") or ""
                province = self._provinces.get(key) or self._provinces.get(f"VN-{key}", "")
                if not province:
                    name = (sub.get("names") or {}).get("en") or ""
                    province = self._provinces.get(fold_name(name), "")
                if province:
                    break
        return Geo(country, province)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class Salts:
    """Daily rotating salts, shared by all collectors through the ``salts`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, bytes] = {}

    def cached(self, day: str) -> bytes | None:
        return self._cache.get(day)

    async def for_day(self, day: str) -> bytes:
        salt = self._cache.get(day)
        if salt is None:
            await self._db.execute(
                "INSERT INTO salts (day, salt) VALUES (:day, :salt) ON CONFLICT (day) DO NOTHING",
                {"day": day, "salt": secrets.token_hex(32)},
            )
            row = await self._db.fetch_one("SELECT salt FROM salts WHERE day = :day", {"day": day})
            assert row is not None
            salt = bytes.fromhex(row["salt"])
            oldest = (dt.date.fromisoformat(day) - dt.timedelta(days=2)).isoformat()
            await self._db.execute("DELETE FROM salts WHERE day < :d", {"d": oldest})
            self._cache = {d: s for d, s in self._cache.items() if d >= oldest}
            self._cache[day] = salt
        return salt


def visitor_id(salt: bytes, site_id: int, ip: str, ua: str) -> int:
    return _visitor(_keyed(salt), site_id, ip, ua)


@lru_cache(maxsize=4)
def _keyed(salt: bytes) -> Any:
    """blake2b keyed with the salt: copying it is cheaper than keying a new one per hit."""
    return hashlib.blake2b(key=salt[:64], digest_size=8)


def _visitor(keyed: Any, site_id: int, ip: str, ua: str) -> int:
    h = keyed.copy()
    h.update(f"{site_id}|{ip}|{ua}".encode())
    return int.from_bytes(h.digest(), "big", signed=True)


def client_ip(peer: str, forwarded_for: str, trusted: frozenset[str]) -> str:
    """The visitor's IP: the peer, or the last untrusted hop of X-Forwarded-For."""
    if peer in trusted and forwarded_for:
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            if hop and hop not in trusted:
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
    return peer


async def installation_secret(db: Database, configured: str = "") -> bytes:
    """The key for keyed hashes: ``GIAMSAT_SECRET``, or one generated once and kept in the db."""
    if configured:
        return configured.encode()
    await db.execute(
        "INSERT INTO settings (key, value) VALUES ('secret', :v) ON CONFLICT (key) DO NOTHING",
        {"v": secrets.token_hex(32)},
    )
    row = await db.fetch_one("SELECT value FROM settings WHERE key = 'secret'")
    assert row is not None
    return row["value"].encode()


class Enricher:
    """Hit + client IP + the day's salt → a storage row (``HIT_COLUMNS`` order), personal
    data removed. Synchronous: the caller fetches the salt (``salts.cached(day)``, or
    ``await salts.for_day(day)`` once a day), so a hit costs no extra await."""

    def __init__(self, geo: GeoIP, salts: Salts, secret: bytes) -> None:
        self.geo = geo
        self.salts = salts
        self.secret = secret

    def row(self, hit: Hit, ip: str, salt: bytes) -> tuple[Any, ...]:
        agent = parse_agent(hit.ua)
        if agent.bot or hit.webdriver:
            raise InvalidHit("bot", 403, hit.site_id)
        country, province = self.geo.lookup(ip)
        pv_id, path, title, source, medium, campaign, e_c, e_a, e_n = redact_all((
            hit.pv_id, hit.path, hit.title, hit.utm_source, hit.utm_medium, hit.utm_campaign,
            hit.e_c, hit.e_a, hit.e_n))
        return (
            hit.site_id, hit.ts, hit.day, hit.kind, _visitor(_keyed(salt), hit.site_id, ip, hit.ua),
            pv_id, hit.host, path, clean_url(hit.url)[:MAX_URL], title,
            clean_url(hit.referrer) if hit.referrer else "", hit.ref_host,
            source, medium, campaign, agent.browser, agent.os, agent.device, country,
            province, hit.screen, hit.lang, e_c, e_a, e_n, hit.e_v,
            clean_url(hit.target) if hit.target else "", hit.dvc_service, hit.dvc_state,
            dvc_reference(self.secret, hit.dvc_extra) if hit.dvc_extra else "",
        )
