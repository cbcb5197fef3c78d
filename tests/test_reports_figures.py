"""Figures a site page shows beyond the fixture: deltas against the previous period, visit
durations (m:ss and h:mm:ss), and provinces located by a real .mmdb written here (old
provinces counted for today's merged units)."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import httpx
import pytest
from geodata import write_city_mmdb
from hitrows import hit
from reportdata import hit as send
from reporthelp import kpi, login, make_users, table_rows

from collector.config import Config
from collector.rollup import rollup
from collector.rollup_month import refresh_site_months
from collector.store import Database

CURRENT = {"period": "custom", "from": "2026-03-08", "to": "2026-03-14"}


@pytest.fixture
def mmdb(tmp_path: Path) -> str:
    return write_city_mmdb(tmp_path / "city.mmdb")


@pytest.fixture
def config(config: Config, mmdb: str) -> Config:
    return dataclasses.replace(config, geoip_path=mmdb)


async def signed_in(client: httpx.AsyncClient, db: Database) -> httpx.AsyncClient:
    await make_users(db)
    assert (await login(client, "bo", "ministry-password")).status_code == 303
    return client


async def test_deltas_against_the_previous_period_and_durations(
        client: httpx.AsyncClient, db: Database) -> None:
    await db.write_batch([
        # previous period (03-01…03-07) on site 47: a bounce, and 2 page views over 5:00
        hit(47, "2026-03-03 09:00", 1), hit(47, "2026-03-03 10:00", 2),
        hit(47, "2026-03-03 10:05", 2, path="/b"),
        # current period (03-08…03-14): 2 page views over 10:00, 2 over 4:05, a bounce
        hit(47, "2026-03-10 09:00", 3), hit(47, "2026-03-10 09:10", 3, path="/b"),
        hit(47, "2026-03-10 11:00:00", 4), hit(47, "2026-03-10 11:04:05", 4, path="/b"),
        hit(47, "2026-03-10 12:00", 5),
        # site 48: one visit of 1:02:05 (hits less than 30 min apart), nothing before
        *[hit(48, f"2026-03-11 {t}", 6, host="dichvucong.hanoi.gov.vn")
          for t in ("10:00:00", "10:25:00", "10:50:00", "11:02:05")],
    ], [])
    await rollup(db)
    await refresh_site_months(db)
    c = await signed_in(client, db)
    page = (await c.get("/sites/47", params=CURRENT)).text
    assert kpi(page, "visits") == "3"
    assert kpi(page, "pageviews") == "5"
    assert kpi(page, "bounce_rate") == "33,3\u00a0%"
    assert kpi(page, "avg_duration_s") == "4:42"  # (600 + 245 + 0) / 3 = 281.7 s
    deltas = dict(_deltas(page))
    assert deltas["visits"] == ("+50,0\u00a0%", "up")  # 3 vs 2
    assert deltas["visitors"] == ("+50,0\u00a0%", "up")
    assert deltas["pageviews"] == ("+66,7\u00a0%", "up")  # 5 vs 3
    assert deltas["bounce_rate"] == ("\u221233,3\u00a0%", "up")  # 1/3 vs 1/2: lower is better
    assert deltas["avg_duration_s"] == ("+87,8\u00a0%", "up")  # 281.7 s vs 150 s
    en = (await c.get("/sites/47", params={**CURRENT, "lang": "en"})).text
    assert dict(_deltas(en))["pageviews"] == ("+66.7%", "up")
    # the previous period of site 48 is empty: no relative change, a dash
    page = (await c.get("/sites/48", params=CURRENT)).text
    assert kpi(page, "avg_duration_s") == "1:02:05"
    assert dict(_deltas(page))["visits"] == ("–", "")
    api = (await c.get("/api/v1/sites/47/totals", params=CURRENT)).json()["data"]
    assert api["previous_start"] == "2026-03-01" and api["previous_end"] == "2026-03-07"
    assert api["deltas"]["visits"] == {"current": 3, "previous": 2, "change": 1, "pct": 0.5}
    assert api["current"]["avg_duration_s"] == pytest.approx(845 / 3)
    assert api["previous"]["avg_duration_s"] == 150


def _deltas(page: str) -> list[tuple[str, tuple[str, str]]]:
    out = []
    for key, cls, text in re.findall(
            r'data-kpi="(\w+)">.*?<div class="delta ?(\w*)">([^<]*)</div>', page, re.S):
        out.append((key, (html.unescape(text).strip(), cls)))
    return out


async def test_provinces_from_a_real_mmdb(client: httpx.AsyncClient, db: Database) -> None:
    app = client.app  # type: ignore[attr-defined]
    for ip in ("203.0.113.2", "203.0.113.3", "198.51.100.4", "8.8.8.8"):
        await send(app, ip, idsite=47, url="https://hanoi.gov.vn/")
    await rollup(db)
    day = (await db.fetch_one("SELECT max(day) AS d FROM hits"))["d"]
    c = await signed_in(client, db)
    page = (await c.get("/sites/47", params={"period": "custom", "from": day,
                                              "to": day})).text
    assert table_rows(page, "provinces") == [
        ["Thành phố Hà Nội", "2", "50,0\u00a0%"],
        ["không xác định", "1", "25,0\u00a0%"],  # abroad (ties: by code, '' first)
        ["Bắc Ninh", "1", "25,0\u00a0%"],  # GeoIP says Bắc Giang (VN-54), merged into it
    ]
    r = await c.get("/sites/47", params={"period": "custom", "from": day, "to": day,
                                         "table": "provinces", "format": "json"})
    rows = r.json()["rows"]
    assert [(x["label"], x["visits"], x["share"]) for x in rows] == [
        ("Thành phố Hà Nội", 2, 0.5), ("không xác định", 1, 0.25), ("Bắc Ninh", 1, 0.25)]


async def _scan(db: Database, site_id: int, ts: int, findings: list[str],
                tracker: str = "") -> None:
    await db.execute(
        "INSERT INTO scans (site_id, ts, base_url, duration_ms, home_status, snippet, "
        "site_id_found, site_id_state, tracker_url, loader, badge, pages, pages_ok, "
        "pages_snippet, findings) VALUES (:s, :ts, 'https://hanoi.gov.vn/', 900, 'ok', "
        "'present', '47', 'right', :tracker, 1, 0, 4, 4, 4, :f)",
        {"s": site_id, "ts": ts, "tracker": tracker, "f": json.dumps(findings)})


async def test_install_status_shows_the_latest_scan_and_links_to_compliance(
        client: httpx.AsyncClient, db: Database) -> None:
    c = await signed_in(client, db)
    page = (await c.get("/sites/47")).text
    assert "Chưa quét" in page  # never scanned
    assert 'href="/compliance/sites/47" data-link="compliance"' in page
    old, new = 1_772_000_000_000, 1_772_100_000_000
    await _scan(db, 47, old, ["snippet_commented"])
    await _scan(db, 47, new, ["tracker_http", "badge_missing"], "http://evil<b>.example/")
    page = (await c.get("/sites/47")).text
    section = page.split('id="install"', 1)[1].split("</section>", 1)[0]
    assert f'data-scan-ts="{new}"' in section
    assert re.findall(r'data-finding="(\w+)"', section) == ["tracker_http", "badge_missing"]
    assert "trackerUrl dùng http (phải là https)" in section  # compliance's own message
    assert 'class="violation"' in section and 'class="warning"' in section
    assert "snippet_commented" not in section  # an older scan's finding
    en = (await c.get("/sites/47?lang=en")).text.split('id="install"', 1)[1]
    assert "trackerUrl uses http (must be https)" in en
    assert 'href="/compliance/sites/47?lang=en"' in en
    # the linked page exists and is public by default
    c.cookies.clear()
    assert (await c.get("/compliance/sites/47")).status_code == 200
    await _scan(db, 47, new + 1, [])
    await signed_in(c, db)
    section = (await c.get("/sites/47")).text.split('id="install"', 1)[1]
    assert "Không có phát hiện" in section.split("</section>", 1)[0]


async def test_overview_year_reads_the_same_figures_fresh_or_not(report_client) -> None:
    """A year-long overview: per month charted; the same figures whether the monthly
    tables were refreshed after the fixture's rollup (read monthly) or not (daily)."""
    c = report_client
    app = c.app
    stale = (await c.get("/?period=year")).text
    assert "Lượt truy cập theo tháng" in stale
    await refresh_site_months(app.state.giamsat.db)
    app.state.reports_cache.clear()
    fresh = (await c.get("/?period=year")).text
    for key in ("visits", "visitors", "pageviews", "bounce_rate", "avg_duration_s"):
        assert kpi(fresh, key) == kpi(stale, key), key
    assert kpi(fresh, "visits") == "6" and kpi(fresh, "pageviews") == "7"
    for table in ("province_visits", "ministry_visits", "province_full_online"):
        assert table_rows(fresh, table) == table_rows(stale, table), table
    month = (await c.get("/?period=month")).text  # ≤ 92 days: per day
    assert "Lượt truy cập theo ngày" in month and kpi(month, "visits") == "6"
