"""The metrics API over rollups: scopes, ranges, zero-filled series, top-N, comparison,
KPIs, rankings, the per-service listing — hand-computed on a small fixed data set."""

from __future__ import annotations

import pytest
from hitrows import dvc, hit, rating, ts_of

from collector import metrics as m
from collector.registry import make_site, save_site
from collector.rollup import rollup
from collector.store import Database
from collector.tracking import local_day

START, END = "2026-03-01", "2026-03-03"
MIN = 60_000


async def dossier(db: Database, site_id: int, local: str, n: int, service: str,
                  reception: int, level: int, status: int = 1) -> None:
    ts = ts_of(local)
    await db.execute_many(
        "INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, status, reception,"
        " payment, level, from_dvcqg, dvcbc) VALUES (:site, :ts, :day, :dossier, 'p', "
        ":service, :status, :reception, 0, :level, 0, 0)",
        [{"site": site_id, "ts": ts, "day": local_day(ts),
          "dossier": f"{site_id}-{local}-{reception}-{level}-{i}",
          "service": service, "status": status, "reception": reception, "level": level}
         for i in range(n)])


@pytest.fixture
async def data(db: Database) -> Database:
    await save_site(db, make_site(49, "H29", "portal", "Cổng HCM", ["hochiminhcity.gov.vn"]))
    await save_site(db, make_site(50, "BQP", "portal", "Cổng BQP", ["mod.gov.vn"]))
    rows = [
        # site 47: one visit of 2 page views lasting 10 min from a campaign, on a phone…
        hit(47, "2026-03-01 09:00", 1, path="/", utm_campaign="tet", utm_source="zalo",
            device="mobile", province="H26"),
        hit(47, "2026-03-01 09:10", 1, path="/tin-tuc", device="mobile", province="H26"),
        # …and a bounce from Facebook; one visit in the previous period
        hit(47, "2026-03-03 20:00", 2, path="/tin-tuc", ref_host="facebook.com"),
        hit(47, "2026-02-27 08:00", 3, path="/"),
        # site 48 (DVC): 5 visitors on 03-02
        dvc(48, "2026-03-02 09:00", 11, "S1", -1), dvc(48, "2026-03-02 09:05", 11, "S1", 1),
        rating(48, "2026-03-02 09:06", 11, "S1", 5),
        dvc(48, "2026-03-02 10:00", 12, "S1", -1), rating(48, "2026-03-02 10:01", 12, "S1", 3),
        dvc(48, "2026-03-02 11:00", 13, "S1", -1), dvc(48, "2026-03-02 12:00", 14, "S1", -1),
        dvc(48, "2026-03-02 13:00", 15, "S2", -1), dvc(48, "2026-03-02 13:02", 15, "S2", 1),
        # site 49 (H29): three bounces; site 50 (BQP): one
        *[hit(49, f"2026-03-01 1{i}:00", 20 + i, host="hochiminhcity.gov.vn")
          for i in range(3)],
        hit(50, "2026-03-02 08:00", 30, host="mod.gov.vn"),
    ]
    await db.write_batch(rows, [(47, "2026-03-02", "bot", "", 5),
                                (0, "2026-03-02", "unknown site", "", 2)])
    await dossier(db, 48, "2026-03-02 09:00", 2, "S1", reception=1, level=4)
    await dossier(db, 48, "2026-03-02 09:00", 2, "S1", reception=2, level=1)
    await dossier(db, 49, "2026-03-01 09:00", 1, "S1", reception=1, level=4)
    await rollup(db, batch=4)
    return db


async def test_site_totals(data: Database) -> None:
    t = await m.totals(data, m.Scope.site(47), START, END)
    assert (t["visits"], t["visitors"], t["pageviews"], t["bounces"], t["duration_ms"]) == (
        2, 2, 3, 1, 10 * MIN)
    assert (t["bounce_rate"], t["avg_duration_s"], t["pageviews_per_visit"]) == (0.5, 300.0, 1.5)
    assert t["dropped"] == 5
    assert t["visitors_basis"] == "sum_of_daily_uniques"
    assert t["received"] == 0 and t["online_rate"] is None


async def test_agency_and_nation_aggregate_sites(data: Database) -> None:
    h26 = await m.totals(data, m.Scope.agency("H26"), START, END)
    nation = await m.totals(data, m.Scope.nation(), START, END)
    assert (h26["visits"], h26["visitors"], h26["pageviews"]) == (7, 7, 3)
    assert (nation["visits"], nation["pageviews"]) == (11, 7)
    assert (h26["views"], h26["submissions"], h26["dvc_conversion"]) == (5, 2, 0.4)
    assert (h26["ratings"], h26["satisfaction"]) == (2, 0.5)
    assert (nation["received"], nation["full_online"], nation["full_online_rate"]) == (5, 3, 0.6)
    assert nation["dropped"] == 7


async def test_timeseries_is_zero_filled(data: Database) -> None:
    series = await m.timeseries(data, m.Scope.site(47), "2026-02-28", END,
                                ("visits", "pageviews", "views", "received", "dossier_events"))
    assert [(d["day"], d["visits"], d["pageviews"]) for d in series] == [
        ("2026-02-28", 0, 0), ("2026-03-01", 1, 2), ("2026-03-02", 0, 0), ("2026-03-03", 1, 1)]
    dvc_series = await m.timeseries(data, m.Scope.site(48), START, END,
                                    ("views", "received", "dossier_events"))
    assert [(d["views"], d["received"], d["dossier_events"]) for d in dvc_series] == [
        (0, 0, 0), (5, 4, 4), (0, 0, 0)]
    with pytest.raises(ValueError):
        await m.timeseries(data, m.Scope.site(47), START, END, ("nonsense",))


async def test_top_dimensions(data: Database) -> None:
    site = m.Scope.site(47)
    assert [(r["value"], r["visits"]) for r in await m.top(data, site, START, END, "source")] \
        == [("campaign", 1), ("social", 1)]
    assert [(r["value"], r["visits"]) for r in await m.top(data, site, START, END, "campaign")] \
        == [("", 1), ("tet", 1)]
    assert [(r["value"], r["pageviews"]) for r in await m.top(data, site, START, END, "page")] \
        == [("/tin-tuc", 2), ("/", 1)]
    assert [(r["value"], r["visits"], r["bounce_rate"])
            for r in await m.top(data, site, START, END, "entry")] == [
        ("/", 1, 0.0), ("/tin-tuc", 1, 1.0)]
    assert await m.top(data, site, START, END, "page", limit=1) == [
        {"value": "/tin-tuc", "visits": 0, "pageviews": 2, "bounces": 0, "duration_ms": 0,
         "bounce_rate": None}]
    assert [r["value"] for r in await m.top(data, site, START, END, "hour")] == ["09", "20"]
    with pytest.raises(ValueError):
        await m.top(data, site, START, END, "path; DROP TABLE hits")


async def test_top_over_whole_months_and_edges(data: Database) -> None:
    site = m.Scope.site(47)

    async def pages(a: str, b: str) -> list[tuple[str, int]]:
        return [(r["value"], r["pageviews"]) for r in await m.top(data, site, a, b, "page")]

    # Feb + Mar as whole months (monthly table), with a Feb edge, with a Mar edge
    assert await pages("2026-02-01", "2026-03-31") == [("/", 2), ("/tin-tuc", 2)]
    assert await pages("2026-02-27", "2026-03-31") == [("/", 2), ("/tin-tuc", 2)]
    assert await pages("2026-02-28", "2026-03-31") == [("/tin-tuc", 2), ("/", 1)]
    assert await pages("2026-01-01", "2026-03-02") == [("/", 2), ("/tin-tuc", 1)]
    assert await pages("2026-04-01", "2026-12-31") == []
    entry = await m.top(data, site, "2026-01-01", "2026-12-31", "entry")
    assert [(r["value"], r["visits"], r["bounces"]) for r in entry] == [
        ("/", 2, 1), ("/tin-tuc", 1, 1)]


async def test_compare_with_previous_period(data: Database) -> None:
    c = await m.compare(data, m.Scope.site(47), START, END)
    assert (c["previous_start"], c["previous_end"]) == ("2026-02-26", "2026-02-28")
    assert c["deltas"]["visits"] == {"current": 2, "previous": 1, "change": 1, "pct": 1.0}
    assert c["deltas"]["bounce_rate"] == {"current": 0.5, "previous": 1.0, "change": -0.5,
                                          "pct": -0.5}
    assert c["deltas"]["received"]["pct"] is None


async def test_kpis_and_dvc_services(data: Database) -> None:
    k = await m.kpis(data, m.Scope.site(48), START, END)
    assert (k["online_rate"], k["full_online_rate"], k["online_payment_rate"]) == (
        0.5, 0.5, None)
    assert (k["dvc_conversion"], k["satisfaction"]) == (0.4, 0.5)
    services = await m.dvc_services(data, m.Scope.agency("H26"), START, END)
    assert [(s["service"], s["views"], s["submissions"], s["dvc_conversion"],
             s["satisfaction"]) for s in services] == [
        ("S1", 4, 1, 0.25, 0.5), ("S2", 1, 1, 1.0, None)]


async def test_rankings(data: Database) -> None:
    by_visits = await m.rankings(data, START, END, "province", "visits")
    assert [(r["rank"], r["agency_code"], r["visits"]) for r in by_visits[:3]] == [
        (1, "H26", 7), (2, "H29", 3), (3, "H01", 0)]
    assert len(by_visits) == 34
    by_rate = await m.rankings(data, START, END, "province", "full_online_rate")
    assert [(r["agency_code"], r["full_online_rate"]) for r in by_rate[:3]] == [
        ("H29", 1.0), ("H26", 0.5), ("H01", None)]
    ministries = await m.rankings(data, START, END, "ministry")
    assert (ministries[0]["agency_code"], ministries[0]["visits"]) == ("BQP", 1)
    assert {r["kind"] for r in ministries} <= {"ministry", "ministerial_agency"}


async def test_service_listing_and_dropped(data: Database) -> None:
    listing = await m.service_listing(data, "S1", START, END)
    assert [(r["agency_code"], r["views"], r["received"], r["full_online_rate"])
            for r in listing] == [("H26", 4, 4, 0.5), ("H29", 0, 1, 1.0)]
    assert await m.dropped(data, m.Scope.site(47), START, END) == [{"reason": "bot", "n": 5}]
    assert await m.dropped(data, m.Scope.nation(), START, END) == [
        {"reason": "bot", "n": 5}, {"reason": "unknown site", "n": 2}]


async def test_dashboard_has_every_block(data: Database) -> None:
    d = await m.dashboard(data, m.Scope.agency("H26"), START, END, top_n=3)
    assert d["compare"]["current"]["visits"] == 7
    assert len(d["series"]) == 3
    assert set(d["top"]) == set(m.DIMENSIONS)
    assert [s["service"] for s in d["dvc"]] == ["S1", "S2"]
    assert d["dossiers"][0]["received"] == 4


async def test_through_the_tracking_endpoint(client, db: Database) -> None:
    """Real path: /tracking → writer → hits → rollup → metrics."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    for path in ("/", "/tin-tuc"):
        r = await client.post("/tracking", headers=form, content=(
            f"idsite=47&rec=1&url=https://hanoi.gov.vn{path}"
            "&urlref=https://www.google.com.vn/search").encode())
        assert r.status_code == 204
    await rollup(db)
    # the collector stamps hits with the clock: read back the day they were counted on
    [row] = await db.fetch_all("SELECT DISTINCT day FROM hits")
    today = row["day"]
    t = await m.totals(db, m.Scope.site(47), today, today)
    assert (t["visits"], t["visitors"], t["pageviews"], t["bounces"]) == (1, 1, 2, 0)
    assert [r["value"] for r in await m.top(db, m.Scope.site(47), today, today, "source")] == [
        "search"]
    assert [r["value"] for r in await m.top(db, m.Scope.site(47), today, today, "browser")] == [
        "Chrome"]
