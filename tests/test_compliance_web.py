"""/compliance pages, exports, open data, the reported-totals API; escaping of scanned text."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
                        "errors": [{"index": 1, "reason": "period: expected YYYY-MM (2000-01 to "
                                                          "2100-12), got '2026-13'"}]}
    r = await web.post("/api/v1/compliance/reported", headers={**auth, "content-type":
                       "application/json"}, content=b"{nope")
    assert r.status_code == 400
    saved = await db.fetch_all("SELECT site_id, service, count, source FROM reported_totals "
                               "ORDER BY site_id")
    assert saved == [{"site_id": 47, "service": "1.1", "count": 10, "source": "api:hanoi"},
                     {"site_id": 48, "service": "2.2", "count": 5, "source": "api:hanoi"}]


# non-ASCII digits (int() and str.isdigit() accept them), out-of-range and malformed months
BAD_MONTHS = ["２０２６-１１", "٢٠٢٦-١١", "2026-1²", "2026-١١", "9999-12", "0001-01", "1999-12",
              "2101-01", "2026-13", "2026-00", "2026-1", "202611", "2026-11-01", " 2026-11",
              "2026-11\x00"]


@pytest.mark.parametrize("month", BAD_MONTHS)
@pytest.mark.parametrize("path", ["/compliance", "/compliance?format=csv",
                                  "/compliance/sites/48", "/compliance/sites/48?format=json"])
async def test_bad_month_is_400_naming_it(web: httpx.AsyncClient, path: str, month: str) -> None:
    r = await web.get(path, params={"month": month} | dict(
        httpx.QueryParams(path.partition("?")[2])))
    assert r.status_code == 400, (path, month)
    assert r.headers["x-giamsat-error"] == (
        "month invalid: expected YYYY-MM from 2000-01 to 2100-12")
    if "format" in path:
        assert r.text.startswith("month invalid")


@pytest.mark.parametrize(("query", "reason"), [
    ({"state": "bogus"}, "state invalid: expected one of not_connected, incomplete, "
                         "interrupted, not_reconciled, compliant"),
    ({"kind": "city"}, "kind invalid: expected one of ministry, province"),
    ({"format": "xml"}, "format invalid: expected one of csv, json, html"),
])
async def test_bad_filters_are_400(web: httpx.AsyncClient, query: dict, reason: str) -> None:
    r = await web.get("/compliance", params=query)
    assert (r.status_code, r.headers["x-giamsat-error"]) == (400, reason)


async def test_edge_months_and_site_ids(web: httpx.AsyncClient) -> None:
    for month in ("", "2000-01", "2100-12"):
        r = await web.get("/compliance", params={"month": month})
        assert r.status_code == 200, month
    r = await web.get("/compliance/sites/48", params={"month": "2100-12", "format": "json"})
    assert r.status_code == 200 and r.json()["month"] == "2100-12"
    for raw in ("²", "٤٨", "４８", "9" * 5000, "-48", "48.0"):
        assert (await web.get(f"/compliance/sites/{raw}")).status_code == 404, raw


async def test_reported_body_is_limited_while_streaming(web: httpx.AsyncClient,
                                                        db: Database) -> None:
    from reports.compliance_web import MAX_REPORTED_BODY

    await add_user(db, "bo", "correct horse battery", "admin")
    auth = {"authorization": f"Bearer {await add_token(db, 'bo')}"}
    sent = []

    async def chunks():  # no content-length: chunked, 20 MB if read whole
        header = b"site,service,period,count\n"
        sent.append(len(header))
        yield header
        for _ in range(20):
            sent.append(1_000_000)
            yield b"47,1.1,2026-11,1\n" * 58_823 + b"\n" * 9

    r = await web.post("/api/v1/compliance/reported", content=chunks(), headers=auth)
    assert r.status_code == 413 and "body too large" in r.json()["error"]
    assert sum(sent) <= MAX_REPORTED_BODY + 1_000_000 + 100  # stopped at the first chunk past
    r = await web.post("/api/v1/compliance/reported", content=b"x",
                       headers={**auth, "content-length": str(MAX_REPORTED_BODY + 1)})
    assert r.status_code == 413
    r = await web.post("/api/v1/compliance/reported", content=b"x",
                       headers={**auth, "content-length": b"\xb2"})
    assert (r.status_code, r.json()) == (400, {"error": "content-length invalid: expected a "
                                                        "number"})
    assert await db.fetch_all("SELECT site_id FROM reported_totals") == []


async def test_reported_rows_with_odd_digits_and_bytes(web: httpx.AsyncClient,
                                                       db: Database) -> None:
    await add_user(db, "bo", "correct horse battery", "admin")
    auth = {"authorization": f"Bearer {await add_token(db, 'bo')}"}
    month = web.first[:7]  # type: ignore[attr-defined]
    rows = [{"site": "٤٧", "service": "1.1", "period": month, "count": 1},
            {"site": 47, "service": "1.1", "period": month, "count": "²"},
            {"site": 47, "service": "1.1", "period": month, "count": "9" * 5000},
            {"site": 47, "service": "1.1", "period": "٢٠٢٦-11", "count": 1},
            {"site": 47, "service": "\ud800", "period": month, "count": 1},
            {"site": 47, "service": "1.1", "period": "9999-12", "count": 1},
            {"site": 47, "service": "1.1", "period": month, "count": 7}]
    r = await web.post("/api/v1/compliance/reported", content=json.dumps({"rows": rows}),
                       headers={**auth, "content-type": "application/json"})
    assert r.status_code == 200
    assert (r.json()["saved"], [e["index"] for e in r.json()["errors"]]) == (
        1, [0, 1, 2, 3, 4, 5])
    assert [e["reason"].split(":")[0] for e in r.json()["errors"]] == [
        "site", "count", "count", "period", "service", "period"]
    r = await web.post("/api/v1/compliance/reported", headers={
        **auth, "content-type": "application/json"}, content=b"[" * 100_000)
    assert (r.status_code, r.json()) == (400, {"error": "malformed JSON"})
    # a NUL is refused by its field; a field over the csv module's limit ends the import
    r = await web.post("/api/v1/compliance/reported", headers=auth,
                       content=f"site,service,period,count\n47,1.2,{month},3\n47,1.\x003,{month},"
                               f"1\n47,{'x' * 200_000},{month},1\n47,1.4,{month},1\n".encode())
    assert r.status_code == 200 and r.json()["saved"] == 1
    assert [e["reason"][:8] for e in r.json()["errors"]] == ["service:", "csv: fie"]
    r = await web.post("/api/v1/compliance/reported", headers=auth,
                       content=b"site,service,period,count\n47,1.1," + b"\xff\n")
    assert (r.status_code, r.json()) == (400, {"error": "body is not UTF-8"})
    saved = await db.fetch_all("SELECT service, count FROM reported_totals ORDER BY service")
    assert saved == [{"service": "1.1", "count": 7}, {"service": "1.2", "count": 3}]


_odd = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["２０２６-１１", "٢٠٢٦-١١", "2026-1²", "9999-12", "0000-00", "2026-11",
                     "compliant", "province", "csv", "json", "en", "\x00", "%ff", "48"]),
)
# YYYY-MM shapes whose digits may be fullwidth, Arabic-Indic, superscript or out of range
_digits = st.sampled_from("0123456789" * 3 + "２０٢٠²¹١")
_month_like = st.builds(lambda y, m: y + "-" + m, st.text(_digits, min_size=4, max_size=4),
                        st.text(_digits, min_size=1, max_size=3))
_query = st.fixed_dictionaries({"month": st.one_of(_month_like, _odd)}, optional={
    k: _odd for k in ("state", "kind", "format", "lang", "x")})


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(["/compliance", "/compliance/sites/48", "/compliance/sites/60",
                             "/compliance/latest.csv", "/compliance/latest.json"]),
       query=_query, raw=st.binary(max_size=30))
async def test_random_queries_never_5xx(web: httpx.AsyncClient, path: str, query: dict,
                                        raw: bytes) -> None:
    # a raw percent-encoded query too: bytes that are not UTF-8 after unquoting
    params = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}"
                      for k, v in query.items())
    params += "&month=" + quote(raw) if raw else ""
    r = await web.get(f"{path}?{params}")
    assert r.status_code < 500, (r.status_code, path, params)
    if r.status_code == 400:
        assert r.headers["x-giamsat-error"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(st.one_of(_odd, _month_like, st.text(_digits, max_size=4)),
                      min_size=0, max_size=5), max_size=4).map(
        lambda rows: ("site,service,period,count\n" + "\n".join(",".join(r) for r in rows))
        .encode("utf-8", "surrogatepass")),
    st.lists(st.dictionaries(st.sampled_from(["site", "service", "period", "count", "x"]),
                             st.one_of(_odd, _month_like, st.text(_digits, max_size=4),
                                       st.integers(), st.none(), st.floats(),
                                       st.lists(st.integers(), max_size=2)), max_size=5),
             max_size=4).map(lambda rows: json.dumps({"rows": rows}).encode())),
       content_type=st.sampled_from(["application/json", "text/csv", ""]))
async def test_random_reported_bodies_never_5xx(web: httpx.AsyncClient, db: Database,
                                                body: bytes, content_type: str) -> None:
    if not await db.fetch_one("SELECT username FROM users WHERE username = 'bo'"):
        await add_user(db, "bo", "correct horse battery", "admin")
    token = web.token = getattr(web, "token", None) or await add_token(db, "bo")  # type: ignore[attr-defined]
    headers = {"authorization": f"Bearer {token}"}
    if content_type:
        headers["content-type"] = content_type
    r = await web.post("/api/v1/compliance/reported", content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text, body[:200])


async def test_site_page_shows_the_sites_compared(web: httpx.AsyncClient, db: Database) -> None:
    from tests.compliance_helpers import add_feed

    today = local_day(NOW)
    await save_site(db, make_site(62, "BCA", "onestop", "Một cửa Bộ Công an",
                                  ["motcua.bocongan.gov.vn"], REGISTERED_ON))
    await add_days(db, 62, days("2025-12-01", today))
    await add_feed(db, 62, today, "1.000046", online=9)  # the DVC pages of site 61 saw 1
    r = await web.get("/compliance/sites/62")
    assert r.status_code == 200
    assert "Chưa đối soát" in r.text
    assert "dữ liệu hồ sơ: #62 trackDVC: #61" in r.text
    r = await web.get("/compliance/sites/61?format=json")
    assert r.json()["state"] == "not_reconciled"


async def test_open_data_snapshot_matches_the_page(web: httpx.AsyncClient, db: Database) -> None:
    """/compliance/latest.{csv,json} and /compliance (no month: the current one) show the
    same period and the same state for every required site."""
    await save_site(db, make_site(63, "BYT", "portal", "Optional", ["opt.moh.gov.vn"],
                                  REGISTERED_ON, False))
    page = await web.get("/compliance")
    listed = await web.get("/compliance?format=json")
    snap = await web.get("/compliance/latest.json")
    snap_csv = await web.get("/compliance/latest.csv")
    period = "2026-12-01/2026-12-31"
    assert listed.headers["x-giamsat-period"] == snap.headers["x-giamsat-period"] == period
    assert snap_csv.headers["x-giamsat-period"] == period
    rows = snap.json()["rows"]
    assert {r["month"] for r in rows} == {"2026-12"}
    states = {r["site_id"]: r["state"] for r in rows}
    assert 63 not in states  # optional sites are in neither
    assert {r["site_id"]: r["state"] for r in listed.json()["rows"]} == {
        sid: st for sid, st in states.items() if st != "compliant"}
    for state in ("not_connected", "incomplete", "interrupted", "not_reconciled", "compliant"):
        n = sum(1 for st in states.values() if st == state)
        assert f'<div class="value state {state}">{n}</div>' in page.text, state
    csv_rows = list(csv.DictReader(io.StringIO(snap_csv.content.decode("utf-8-sig"))))
    assert {int(r["site_id"]): r["state"] for r in csv_rows} == states
    assert snap.headers["cache-control"] == "public, max-age=60"
