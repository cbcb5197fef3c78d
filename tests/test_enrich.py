"""Enrichment: user agents, bots, GeoIP on a real .mmdb, visitor ids and salts, client IP."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from conftest import FORM, GOOD, all_text, form
from geodata import write_city_mmdb

from collector.config import Config
from collector.enrich import GeoIP, Salts, client_ip, parse_agent, visitor_id
from collector.store import Database

CLIENT_IP = "203.0.113.7"  # the conftest client's address


@pytest.fixture
def mmdb(tmp_path: Path) -> str:
    return write_city_mmdb(tmp_path / "city.mmdb")


@pytest.fixture
def config(config: Config, mmdb: str) -> Config:
    return dataclasses.replace(config, geoip_path=mmdb)


@pytest.mark.parametrize("ip, expected", [
    ("203.0.113.7", ("VN", "H26")),
    ("198.51.100.1", ("VN", "H05")),
    ("192.0.2.9", ("VN", "H29")),
    ("100.64.0.3", ("VN", "H57")),
    ("100.64.1.3", ("VN", "")),
    ("8.8.8.8", ("US", "")),
    ("2001:db8::1", ("VN", "H26")),
    ("10.0.0.1", ("", "")),
    ("not an ip", ("", "")),
    ("", ("", "")),
])
def test_geoip_lookup(mmdb: str, ip: str, expected: tuple[str, str]) -> None:
    geo = GeoIP(mmdb)
    try:
        assert tuple(geo.lookup(ip)) == expected
    finally:
        geo.close()


def test_no_geoip_database_is_unknown() -> None:
    assert tuple(GeoIP("").lookup("203.0.113.7")) == ("", "")


CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130.0.0.0 Safari/537.36")


@pytest.mark.parametrize("ua, expected", [
    (CHROME_WIN, ("Chrome", "Windows", "desktop")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iOS", "mobile")),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iOS", "tablet")),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Mobile Safari/537.36", ("Chrome Mobile", "Android", "mobile")),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", ("Chrome", "Android", "tablet")),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
     ("Firefox", "Ubuntu", "desktop")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Safari/605.1.15", ("Safari", "Mac OS X", "desktop")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "coc_coc_browser/136.0.202 Chrome/130.0.0.0 Safari/537.36", ("Coc Coc", "Windows",
                                                                   "desktop")),
])
def test_user_agent(ua: str, expected: tuple[str, str, str]) -> None:
    agent = parse_agent(ua)
    assert (agent.browser, agent.os, agent.device) == expected
    assert not agent.bot


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/130.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "",
    "x",
])
def test_bots(ua: str) -> None:
    assert parse_agent(ua).bot


async def test_bot_dropped_through_app(client: httpx.AsyncClient, db: Database, flush) -> None:
    r = await client.post("/tracking", content=form(GOOD), headers={
        **FORM, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) HeadlessChrome/130.0.0.0 Safari/537.36"})
    assert r.status_code == 403 and r.headers["x-giamsat-error"] == "bot"
    await flush()
    assert await db.fetch_all("SELECT site_id, reason, n FROM dropped") == [
        {"site_id": 47, "reason": "bot", "n": 1}]


async def test_salts_rotate_and_old_ones_are_deleted(db: Database) -> None:
    for day in ("2025-12-28", "2025-12-29", "2025-12-30"):
        await db.execute("INSERT INTO salts (day, salt) VALUES (:d, :s)",
                         {"d": day, "s": "ab" * 32})
    salts = Salts(db)
    s1 = await salts.for_day("2026-01-01")
    assert s1 == await salts.for_day("2026-01-01") == await Salts(db).for_day("2026-01-01")
    kept = [r["day"] for r in await db.fetch_all("SELECT day FROM salts ORDER BY day")]
    # two days back kept, older deleted; the next day's salt is made ahead (tests/test_salts.py)
    assert kept == ["2025-12-30", "2026-01-01", "2026-01-02"]
    s2 = await salts.for_day("2026-01-02")
    assert s2 != s1
    ua = CHROME_WIN
    assert visitor_id(s1, 47, "203.0.113.7", ua) == visitor_id(s1, 47, "203.0.113.7", ua)
    assert visitor_id(s1, 47, "203.0.113.7", ua) != visitor_id(s2, 47, "203.0.113.7", ua)
    assert visitor_id(s1, 47, "203.0.113.7", ua) != visitor_id(s1, 48, "203.0.113.7", ua)
    assert visitor_id(s1, 47, "203.0.113.7", ua) != visitor_id(s1, 47, "203.0.113.8", ua)
    assert visitor_id(s1, 47, "203.0.113.7", ua) != visitor_id(s1, 47, "203.0.113.7", ua + "x")


async def test_visitor_geo_and_no_ip_stored(client: httpx.AsyncClient, db: Database) -> None:
    firefox = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
    for ua in (None, None, firefox):
        headers = {**FORM, **({"user-agent": ua} if ua else {})}
        r = await client.post("/tracking", content=form(GOOD), headers=headers)
        assert r.status_code == 204
    rows = await db.fetch_all("SELECT visitor, country, province, browser FROM hits ORDER BY id")
    assert [(r["country"], r["province"], r["browser"]) for r in rows] == [
        ("VN", "H26", "Chrome"), ("VN", "H26", "Chrome"), ("VN", "H26", "Firefox")]
    assert rows[0]["visitor"] == rows[1]["visitor"] != rows[2]["visitor"]
    text = await all_text(db)
    assert CLIENT_IP not in text
    assert "203.0.113" not in text


def test_client_ip_trusts_only_configured_proxies() -> None:
    trusted = frozenset({"10.0.0.1"})
    assert client_ip("198.51.100.1", "1.2.3.4", trusted) == "198.51.100.1"
    assert client_ip("10.0.0.1", "1.2.3.4, 10.0.0.1", trusted) == "1.2.3.4"
    assert client_ip("10.0.0.1", "5.6.7.8, 1.2.3.4", trusted) == "1.2.3.4"
    assert client_ip("10.0.0.1", "garbage", trusted) == "10.0.0.1"
    assert client_ip("10.0.0.1", "", trusted) == "10.0.0.1"
