"""Each report page on the known fixture (tests/reportdata.py), asserting the figures shown."""

from __future__ import annotations

import csv
import io
import json

from reporthelp import kpi, login, table_rows


async def test_site_dashboard_shows_fixture_figures(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    r = await c.get("/sites/47?period=7d")
    assert r.status_code == 200
    page = r.text
    assert kpi(page, "visits") == "3"
    assert kpi(page, "visitors") == "3"
    assert kpi(page, "pageviews") == "4"
    assert kpi(page, "bounce_rate") == "66,7\u00a0%"
    pages = table_rows(page, "pages")
    assert pages[0] == ["/tin-tuc", "2", "50,0\u00a0%"]
    assert sorted(p[0] for p in pages) == ["/", "/gioi-thieu", "/tin-tuc"]
    sources = {r[0]: r[1] for r in table_rows(page, "sources")}
    assert sources["Công cụ tìm kiếm"] == "1"
    assert ["tet-2026", "1", "33,3\u00a0%"] in table_rows(page, "campaigns")
    assert {r[0] for r in table_rows(page, "browsers")} == {"Chrome", "Firefox Mobile"}
    assert table_rows(page, "dropped") == [["host not registered to this site", "1"]]
    assert "Đã gắn mã: có dữ liệu" in page
    assert "<svg" in page and "Lượt truy cập theo ngày" in page


async def test_dvc_site_funnel_and_dossier_kpis(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    # the fixture's day (the collector stamps hits with the clock), not "today": the page
    # may be read after local midnight
    day = (await c.app.state.giamsat.db.fetch_one(  # type: ignore[attr-defined]
        "SELECT max(day) AS d FROM hits"))["d"]
    page = (await c.get(f"/sites/48?period=custom&from={day}&to={day}")).text
    assert kpi(page, "visits") == "2"
    assert table_rows(page, "dvc") == [["1.001234", "4", "1", "25,0\u00a0%", "2", "50,0\u00a0%"],
                                       ["2.000111", "1", "0", "0,0\u00a0%", "0", "–"]]
    assert table_rows(page, "dossiers") == [
        ["1.001234", "3", "2", "1", "66,7\u00a0%", "33,3\u00a0%", "50,0\u00a0%", "1"]]
    assert kpi(page, "full_online_rate") == "33,3\u00a0%"
    assert kpi(page, "satisfaction") == "50,0\u00a0%"
    assert kpi(page, "dvc_conversion") == "20,0\u00a0%"  # 1 submission / 5 views
    assert 'class="chart funnel"' in page and "Xem thủ tục" in page


async def test_english_page_uses_english_formats(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    page = (await c.get("/sites/47?period=7d&lang=en")).text
    assert '<html lang="en">' in page
    assert kpi(page, "bounce_rate") == "66.7%"
    assert "Top pages" in page
    page = (await c.get("/sites/47", headers={"accept-language": "en-US,en;q=0.9"})).text
    assert "Top pages" in page
    assert "Trang xem nhiều" in (await c.get("/sites/47")).text


async def test_agency_page_sites_side_by_side_and_total(report_client) -> None:
    c = report_client
    await login(c, "hanoi", "hanoi-password")
    page = (await c.get("/agencies/H26?period=30d")).text
    rows = table_rows(page, "sites")
    assert rows[0][:6] == ["47", "Cổng TTĐT Hà Nội", "Cổng thông tin", "3", "3", "4"]
    assert rows[1][:6] == ["48", "DVC Hà Nội", "Cổng dịch vụ công", "2", "2", "2"]
    assert rows[2][1] == "Tổng" and rows[2][3:6] == ["5", "5", "6"]
    assert kpi(page, "visits") == "5"


async def test_overview_rankings_and_targets(report_client) -> None:
    c = report_client  # anonymous: the overview is public by default
    page = (await c.get("/")).text
    assert kpi(page, "visits") == "6"
    assert kpi(page, "pageviews") == "7"
    provinces = table_rows(page, "province_visits")
    assert provinces[0][:4] == ["1", "Thành phố Hà Nội", "5", "6"]
    assert len(provinces) == 34
    ministries = table_rows(page, "ministry_visits")
    assert ministries[0][:3] == ["1", "Bộ Y tế", "1"]
    rate = table_rows(page, "province_full_online")
    assert rate[0][:5] == ["1", "Thành phố Hà Nội", "3", "66,7\u00a0%", "33,3\u00a0%"]
    # targets from configuration, drawn as reference lines
    assert "Chỉ tiêu 50\u00a0%" in page and "Chỉ tiêu 80\u00a0%" in page
    assert "Chỉ tiêu 95\u00a0%" in page
    assert 'class="ref"' in page


async def test_targets_come_from_configuration(db, config) -> None:
    import dataclasses

    import httpx

    from collector.app import create_app

    app = create_app(dataclasses.replace(config, target_satisfaction=0.9))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            page = (await c.get("/")).text
    assert "Chỉ tiêu 90\u00a0%" in page and "Chỉ tiêu 95\u00a0%" not in page


async def test_dvc_page_compares_service_across_agencies(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    page = (await c.get("/dvc?period=7d")).text
    assert table_rows(page, "services")[0][:5] == ["1.001234", "1", "4", "1", "25,0\u00a0%"]
    page = (await c.get("/dvc?period=7d&service=1.001234")).text
    assert table_rows(page, "by_agency")[0][:4] == ["Thành phố Hà Nội", "4", "1", "25,0\u00a0%"]


async def test_csv_and_json_exports(report_client) -> None:
    c = report_client
    await login(c, "bo", "ministry-password")
    r = await c.get("/sites/47?period=7d&table=pages&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Trang", "Lượt xem trang", "Tỷ lệ"]
    assert rows[1] == ["/tin-tuc", "2", "0.5"]
    r = await c.get("/sites/47?period=7d&table=pages&format=json")
    body = json.loads(r.text)
    assert body["columns"] == ["label", "pageviews", "share"]
    assert body["rows"][0] == {"label": "/tin-tuc", "pageviews": 2, "share": 0.5}
    assert (await c.get("/sites/47?table=nope&format=csv")).status_code == 404
    r = await c.get("/?table=province_visits&format=csv")
    assert "Thành phố Hà Nội" in r.content.decode("utf-8-sig")


async def test_stats_api_and_openapi(report_client, db) -> None:
    from reports.auth import add_token

    c = report_client
    token = await add_token(db, "hanoi", "ci")
    h = {"authorization": f"Bearer {token}"}
    r = await c.get("/api/v1/sites/47/totals?period=7d", headers=h)
    assert r.status_code == 200
    cur = r.json()["data"]["current"]
    assert (cur["visits"], cur["pageviews"], cur["bounces"]) == (3, 4, 2)
    r = await c.get("/api/v1/sites/47/top_page?period=7d&limit=2&page=1", headers=h)
    body = r.json()
    assert [x["value"] for x in body["rows"]][0] == "/tin-tuc" and len(body["rows"]) == 2
    assert body["has_more"] is True
    r = await c.get("/api/v1/sites/47/top_page?period=7d&limit=2&page=2", headers=h)
    assert len(r.json()["rows"]) == 1 and r.json()["has_more"] is False
    r = await c.get("/api/v1/agencies/H26/sites?period=7d", headers=h)
    assert [x["visits"] for x in r.json()["rows"]] == [3, 2]
    assert (await c.get("/api/v1/sites/47/top_page?limit=0", headers=h)).status_code == 400
    assert (await c.get("/api/v1/sites/47/nope", headers=h)).status_code == 404
    r = await c.get("/api/v1/national/rankings_provinces?period=7d")  # public: overview
    assert r.json()["rows"][0]["agency_code"] == "H26"
    doc = (await c.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/sites/{site_id}/{report}" in doc["paths"]
    names = {x["name"] for x in (await c.get("/api/v1/reports")).json()["reports"]}
    assert {"totals", "timeseries", "top_page", "dvc", "dossiers"} <= names


async def test_overview_cache_follows_rollups(report_client) -> None:
    import asyncio

    from reportdata import hit

    from collector.rollup import rollup

    c = report_client
    app = c.app
    assert kpi((await c.get("/")).text, "visits") == "6"
    await hit(app, "198.51.100.77", idsite=60, url="https://moh.gov.vn/tin")
    assert kpi((await c.get("/")).text, "visits") == "6"  # not rolled up yet: cache hit
    await rollup(app.state.giamsat.db)  # the watermarks move
    cache = app.state.reports_cache
    stale_before = cache.stale
    assert kpi((await c.get("/")).text, "visits") == "6"  # served stale, refreshing
    assert cache.stale == stale_before + 1
    await asyncio.gather(*cache.tasks)
    assert kpi((await c.get("/")).text, "visits") == "7"
    cache.clear()
    assert kpi((await c.get("/")).text, "visits") == "7"


async def test_install_check_page(report_client) -> None:
    c = report_client
    await login(c, "hanoi", "hanoi-password")
    page = (await c.get("/sites/47/install")).text
    assert "Đã gắn mã: có dữ liệu" in page
    assert "host not registered to this site" in page
    assert "_govaq.push([&#39;setSiteId&#39;, &#39;47&#39;])" in page  # the snippet, escaped
    assert "hanoi.gov.vn" in page
    # an agency user cannot tell unknown sites from other agencies' sites
    assert (await c.get("/sites/999/install")).status_code == 403
