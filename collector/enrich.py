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

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
import math
import re
import secrets
import time
from functools import lru_cache
from typing import Any, NamedTuple

import maxminddb
from ua_parser import parse as parse_ua

from collector.privacy import clean_url, dvc_reference, redact_all
from collector.registry import fold_name, province_codes
from collector.store import Database
from collector.tracking import MAX_URL, Hit, InvalidHit

log = logging.getLogger("giamsat.enrich")

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


def warm_up() -> None:
    """ua-parser compiles its regexes on first use (~250 ms): pay that at start-up, not
    on the first visitor's request. The lru cache is left empty."""
    parse_ua("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")


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
    """Daily rotating salts, shared by all collectors through the ``salts`` table.

    A day's salt is created a day ahead: whenever a day's salt is loaded, the next day's
    is created (or read, if another collector made it) and kept too, so at local midnight
    the collector already holds the new day's salt and needs no database for it. An
    outage across midnight therefore does not stop ingest (PostgreSQL spools the hits).

    ``cached(day)`` (the hot path, a dictionary look-up) answers only for days whose next
    day is held as well. For a day held ahead but not yet so (the first hits after
    midnight, or an outage), :meth:`for_day` answers from memory at once and prepares the
    next day in the background — one attempt at a time, at most every ``RETRY`` seconds
    while the database is away. Only a day never loaded nor prepared needs the database
    there and then (e.g. the first hit after a start).

    Salts of days more than two days before the day in use are deleted (``salts`` table
    and memory) whenever a day is prepared.
    """

    RETRY = 30.0  # s between background attempts while the database is unreachable

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, bytes] = {}  # days in use whose next day is held too
        self._held: dict[str, bytes] = {}  # every salt in memory (in use or ahead)
        self._task: asyncio.Task[None] | None = None
        self._tried = -math.inf  # monotonic time of the last background attempt

    def cached(self, day: str) -> bytes | None:
        return self._cache.get(day)

    def clear(self) -> None:
        """Forget every salt held in memory (they are read again from the database)."""
        self._cache.clear()
        self._held.clear()

    async def for_day(self, day: str) -> bytes:
        salt = self._cache.get(day)
        if salt is not None:
            return salt
        salt = self._held.get(day)
        if salt is None:  # never loaded: the database must answer now
            salt = await self._fetch(day)
            self._held[day] = salt
            try:
                await self._prepare_next(day)
            except Exception as e:  # the next day's salt is retried in the background
                log.warning("salt of the day after %s not created yet: %s", day, e)
            return salt
        self._prepare_soon(day)
        return salt

    async def _fetch(self, day: str) -> bytes:
        await self._db.execute(
            "INSERT INTO salts (day, salt) VALUES (:day, :salt) ON CONFLICT (day) DO NOTHING",
            {"day": day, "salt": secrets.token_hex(32)},
        )
        row = await self._db.fetch_one("SELECT salt FROM salts WHERE day = :day", {"day": day})
        assert row is not None
        return bytes.fromhex(row["salt"])

    async def _prepare_next(self, day: str) -> None:
        """Hold the salt of the day after ``day``, then serve ``day`` from the cache."""
        following = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        if following not in self._held:
            self._held[following] = await self._fetch(following)
        oldest = (dt.date.fromisoformat(day) - dt.timedelta(days=2)).isoformat()
        await self._db.execute("DELETE FROM salts WHERE day < :d", {"d": oldest})
        self._held = {d: s for d, s in self._held.items() if d >= oldest}
        self._cache = {d: s for d, s in self._cache.items() if d >= oldest}
        self._cache[day] = self._held[day]

    def _prepare_soon(self, day: str) -> None:
        now = time.monotonic()
        if (self._task is not None and not self._task.done()) or now - self._tried < self.RETRY:
            return
        self._tried = now
        self._task = asyncio.create_task(self._prepare_quietly(day), name="giamsat-salt")

    async def _prepare_quietly(self, day: str) -> None:
        try:
            await self._prepare_next(day)
        except Exception as e:  # tried again by a later hit of this day
            log.warning("salt of the day after %s not created yet: %s", day, e)
        else:
            self._tried = -math.inf


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
