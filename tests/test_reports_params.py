"""Hostile query and path parameters against the real app (pages, /api/v1, the badge,
the compliance pages): a clear 400 (or a clamp, or a 404 for a path that names nothing),
never a 5xx. ``str.isdigit`` is true for '²' and '٤٧', and ``int()`` reads '２０' and
'٤٧': numbers are ASCII digits only."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reporthelp import login

PAGES = ("/", "/sites/47", "/sites/48/install", "/agencies/H26", "/dvc",
         "/compliance", "/compliance/sites/47")
API = ("/api/v1/national/totals", "/api/v1/national/rankings_provinces",
       "/api/v1/sites/47/top_page", "/api/v1/agencies/H26/sites", "/api/v1/sites/48/dvc")
BAD_DATES = ("0000-01-01", "0001-01-01", "99999-01-01", "9999-12-31", "2026-02-30",
             "2026-13-01", "２０２６-０１-０１", "٢٠٢٦-٠١-٠١", "20260101", "2026-W01-1",
             "2026-1-1", "", " 2026-01-01", "2026-01-01\x00", "1999-12-31")


async def admin(c: httpx.AsyncClient) -> httpx.AsyncClient:
    r = await login(c, "bo", "ministry-password")
    assert r.status_code == 303
    return c


@pytest.mark.parametrize("bad", BAD_DATES)
async def test_bad_custom_dates_are_400(report_client: httpx.AsyncClient, bad: str) -> None:
    c = await admin(report_client)
    for path in ("/", "/sites/47", "/agencies/H26", "/dvc", *API):
        for q in ({"period": "custom", "from": bad, "to": "2026-03-01"},
                  {"period": "custom", "from": "2026-03-01", "to": bad},
                  *([{"from": bad}] if bad else [])):  # an empty from= alone is no range
            r = await c.get(path, params=q)
            assert r.status_code == 400, (path, q, r.status_code)
            if path.startswith("/api/"):
                assert "from" in r.json()["error"] or "to" in r.json()["error"]


async def test_unknown_period_and_bad_numbers(report_client: httpx.AsyncClient) -> None:
    c = await admin(report_client)
    for path in ("/", "/sites/47", "/agencies/H26", "/dvc", *API):
        r = await c.get(path, params={"period": "forever"})
        assert r.status_code == 400, path
    for value in ("-1", "0", "1001", "1" * 40, "１０", "٣", "²", "1e3", "0x10", " 5", "5_0"):
        r = await c.get("/api/v1/sites/47/top_page", params={"limit": value})
        assert r.status_code == 400, value
        r = await c.get("/api/v1/sites/47/top_page", params={"page": value})
        assert r.status_code == 400, value  # 1001 pages of 100: over 100,000 rows
    r = await c.get("/api/v1/national/rankings_provinces", params={"by": "nonsense"})
    assert r.status_code == 400
    # pages clamp numbers in range and refuse what is not a number
    assert (await c.get("/dvc", params={"limit": "9" * 40, "page": "0"})).status_code == 200
    for value in ("-1", "１０", "٣", "²"):
        assert (await c.get("/dvc", params={"limit": value})).status_code == 400, value
    # a good custom range, reversed and far too long, is swapped and clamped
    r = await c.get("/api/v1/sites/47/totals",
                    params={"period": "custom", "from": "2100-12-31", "to": "2000-01-01"})
    assert r.status_code == 200
    assert r.json()["end"] == "2100-12-31" and r.json()["start"] == "2090-12-24"


async def test_hostile_path_ids(report_client: httpx.AsyncClient) -> None:
    c = await admin(report_client)
    for raw in ("²", "٤٧", "４７", "47²", "9" * 40, "-1", "%00", "47%00"):
        for path in (f"/sites/{raw}", f"/sites/{raw}/install", f"/compliance/sites/{raw}",
                     f"/badge/{raw}.svg", f"/api/v1/sites/{raw}/totals", f"/agencies/{raw}",
                     f"/api/v1/agencies/{raw}/totals"):
            r = await c.get(path)
            assert r.status_code == 404, (path, r.status_code)
    assert (await c.get("/badge/47.svg")).status_code == 200
    assert (await c.get("/dvc", params={"service": "1.0\x00"})).status_code == 400


_digits = "0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩²³¹۴"
_value = st.one_of(
    st.sampled_from(BAD_DATES + ("today", "7d", "30d", "90d", "month", "year", "custom",
                                 "csv", "json", "vi", "en", "H26", "-1", "1" * 30)),
    st.text(alphabet=_digits + "-+_ .eE/:x\x00<>\"'", max_size=14),
    st.text(max_size=20),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
)
_keys = st.sampled_from(("period", "from", "to", "limit", "page", "service", "table",
                         "format", "lang", "by", "month", "state", "kind", "next"))
_paths = st.one_of(st.sampled_from(PAGES + API + ("/badge/47.svg", "/api/v1/reports")),
                   st.text(alphabet=_digits + "%a", min_size=1, max_size=6).map(
                       lambda s: f"/sites/{quote(s, safe='')}"))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=_paths, params=st.dictionaries(_keys, _value, max_size=5),
       signed_in=st.booleans())
async def test_fuzzed_parameters_never_5xx(report_client: httpx.AsyncClient, path: str,
                                           params: dict[str, str], signed_in: bool) -> None:
    c = report_client
    if signed_in and "gs_session" not in c.cookies:
        await admin(c)
    if not signed_in:
        c.cookies.clear()
    r = await c.get(path, params=params)
    assert r.status_code < 500, (path, params, r.status_code, r.text[:300])


async def test_refused_requests_are_counted(report_client: httpx.AsyncClient) -> None:
    """Bad input to the pages and the API is counted (per status and first path segment),
    shown by /healthz; hits and dossier events count in `dropped` instead."""
    c = await admin(report_client)
    before = (await c.get("/healthz")).json()["refused_requests"]
    assert (await c.get("/compliance", params={"month": "2026-13"})).status_code == 400
    assert (await c.get("/api/v1/national/totals", params={"period": "x"})).status_code == 400
    assert (await c.get("/dvc", params={"limit": "²"})).status_code == 400
    assert (await c.get("/dvc")).status_code == 200
    assert (await c.post("/tracking", content=b"rec=1")).status_code == 400
    after = (await c.get("/healthz")).json()["refused_requests"]
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert {k: n for k, n in grown.items() if n} == {
        "400 /compliance": 1, "400 /api": 1, "400 /dvc": 1}
