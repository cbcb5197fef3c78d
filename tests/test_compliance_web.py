"""/compliance pages, exports, open data, the reported-totals API; escaping of scanned text."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from collector.app import create_app
from collector.config import Config
from collector.registry import make_site, save_site
from collector.store import Database
from collector.tracking import local_day
from reports.auth import add_token, add_user
from tests.compliance_helpers import REGISTERED_ON, add_days, add_dvc, days

EVIL_NAME = '=HYPERLINK("http://evil.example","x")<script>alert(1)</script>'
EVIL_ID = '"><img src=x onerror=alert(1)>'


# the pages' "now": 09:00 local on the 1st of a month, the day no day of the month is over
NOW = int(dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()
          * 1000)


@pytest.fixture
async def web(db: Database, config: Config) -> AsyncIterator[httpx.AsyncClient]:
    today = local_day(NOW)
    assert today == "2026-12-01"
    first = today[:8] + "01"
    await save_site(db, make_site(60, "BCA", "portal", EVIL_NAME, ["bocongan.gov.vn"],
                                  REGISTERED_ON))
    await save_site(db, make_site(61, "BCA", "dvc", "DVC Bộ Công an",
                                  ["dichvucong.bocongan.gov.vn"], REGISTERED_ON))
    for sid in (47, 60, 61):
        await add_days(db, sid, days("2025-12-01", today))
    await add_days(db, 48, days("2025-12-01", "2025-12-31"))  # stopped: interrupted now
    await add_dvc(db, 61, today, "1.000046", views=3, submissions=1)
    await db.execute(
        "INSERT INTO scans (site_id, ts, base_url, duration_ms, home_status, snippet, "
        "site_id_found, site_id_state, tracker_url, pages, pages_ok, pages_snippet, findings) "
        "VALUES (60, :ts, 'https://bocongan.gov.vn/', 10, 'ok', 'present', :found, 'wrong', "
        ":tracker, 1, 1, 1, :f)",
        {"ts": NOW - 1000, "found": EVIL_ID,
         "tracker": "javascript:alert('x')</td>",
         "f": json.dumps(["site_id_wrong", "tracker_not_ours"])})
    app = create_app(config)  # the reports routes, /compliance included
    async with app.router.lifespan_context(app):
        app.state.giamsat.clock = lambda: NOW
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            c.first = first  # type: ignore[attr-defined]
            yield c


async def test_list_page_groups_states_and_escapes(web: httpx.AsyncClient) -> None:
    r = await web.get("/compliance")
    assert r.status_code == 200
    html = r.text
    assert "Bộ, cơ quan ngang bộ" in html and "Tỉnh, thành phố" in html
    assert "<script>alert(1)</script>" not in html and EVIL_ID not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # 47 compliant, 48 interrupted (no hits this month), 60 incomplete, 61 compliant
    for name, state, n in (("Gián đoạn", "interrupted", 1), ("Chưa kết nối", "not_connected", 0),
                           ("Kết nối chưa đầy đủ", "incomplete", 1), ("Đạt", "compliant", 2)):
        assert f'<div class="label">{name}</div><div class="value state {state}">{n}</div>' \
            in html
    assert "DVC Hà Nội" in html and "/compliance/sites/48?" in html
    assert "/compliance/sites/47?" not in html  # compliant sites are not listed
    r = await web.get("/compliance?kind=province&lang=en")
    assert "<h2>Ministries</h2>" not in r.text and "<h2>Provinces</h2>" in r.text
    assert "DVC Hà Nội" in r.text and "Interrupted" in r.text and "sites/60?" not in r.text
    r = await web.get("/compliance?state=incomplete")
    assert "/compliance/sites/60?" in r.text and "/compliance/sites/48?" not in r.text
    assert "<tbody><tr><td>20" in r.text  # history rows, one per month


async def test_exports_are_neutralised(web: httpx.AsyncClient) -> None:
    r = await web.get("/compliance?format=csv&state=incomplete")
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[1][0] == "60" and rows[1][1] == "'" + EVIL_NAME
    r = await web.get("/compliance?format=json&state=incomplete")
    assert "<" not in r.text
    assert r.json()["rows"][0]["site"] == EVIL_NAME
    r = await web.get("/compliance/latest.json")
    doc = r.json()
    states = {row["site_id"]: row["state"] for row in doc["rows"]}
    assert states == {47: "compliant", 48: "interrupted", 60: "incomplete", 61: "compliant"}
    assert r.headers["access-control-allow-origin"] == "*"
    r = await web.get("/compliance/latest.csv")
    assert r.content.startswith("\ufeff".encode()) and "site_id_wrong" in r.text
    assert (await web.get("/compliance/latest.xml")).status_code == 404


async def test_site_page_says_what_to_fix(web: httpx.AsyncClient) -> None:
    r = await web.get("/compliance/sites/60")
    assert r.status_code == 200
    assert "setSiteId sai" in r.text and "trackerUrl trỏ sai máy chủ" in r.text
    assert EVIL_ID not in r.text and "</td>'" not in r.text
    r = await web.get("/compliance/sites/48?lang=en")
    # silent since 31 December 2025: every day over since then, the 1st not yet
    assert "no hits for 334 consecutive days (2026-01-01 to 2026-11-30)" in r.text
    assert "Interrupted" in r.text
    r = await web.get("/compliance/sites/48?month=2026-11&format=json")
    assert (r.json()["state"], r.json()["gap_days"]) == ("interrupted", 334)
    assert r.json()["counts"]["days_without_hits"] == 30
    r = await web.get("/compliance/sites/48?month=2025-12&format=json")  # hits every day
    assert (r.json()["state"], r.json()["gap_days"]) == ("incomplete", 0)
    assert [f["code"] for f in r.json()["findings"]] == ["dvc_no_trackdvc"]
    r = await web.get("/compliance/sites/60?format=json")
    assert r.json()["state"] == "incomplete" and "<" not in r.text
    assert (await web.get("/compliance/sites/999")).status_code == 404
    assert (await web.get("/compliance/sites/abc")).status_code == 404


async def test_reported_totals_api(web: httpx.AsyncClient, db: Database) -> None:
    month = web.first[:7]  # type: ignore[attr-defined]
    body = f"site,service,period,count\n47,1.1,{month},10\n60,1.1,{month},3\n"
    r = await web.post("/api/v1/compliance/reported", content=body)
    assert r.status_code == 401
    await add_user(db, "hanoi", "correct horse battery", "agency", "H26")
    token = await add_token(db, "hanoi")
    auth = {"authorization": f"Bearer {token}"}
    r = await web.post("/api/v1/compliance/reported", content=body, headers=auth)
    assert r.status_code == 200
    assert r.json()["saved"] == 1 and r.json()["errors"][0]["line"] == 3  # 60 is not H26's
    r = await web.post("/api/v1/compliance/reported", headers=auth, json={"rows": [
        {"site": 48, "service": "2.2", "period": month, "count": 5},
        {"site": 48, "service": "2.2", "period": "2026-13", "count": 5}]})
    assert r.json() == {"saved": 1, "refused": 1,
                        "errors": [{"index": 1, "reason": "period: expected YYYY-MM, got "
                                                          "'2026-13'"}]}
    r = await web.post("/api/v1/compliance/reported", headers={**auth, "content-type":
                       "application/json"}, content=b"{nope")
    assert r.status_code == 400
    saved = await db.fetch_all("SELECT site_id, service, count, source FROM reported_totals "
                               "ORDER BY site_id")
    assert saved == [{"site_id": 47, "service": "1.1", "count": 10, "source": "api:hanoi"},
                     {"site_id": 48, "service": "2.2", "count": 5, "source": "api:hanoi"}]
