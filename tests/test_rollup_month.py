"""Monthly totals (collector/rollup_month.py): long ranges read whole months from
rollup_site_month / rollup_dossiers_month only while they are fresh, and give exactly the
figures the daily tables give; a refresh recomputes just the months a rollup touched."""

from __future__ import annotations

from hitrows import dvc, hit
from test_metrics import dossier

from collector import metrics as m
from collector.metrics import Scope
from collector.rollup import rollup
from collector.rollup_month import invalidate_site_months, refresh_site_months
from collector.store import Database
from reports import queries

START, END = "2026-01-15", "2026-04-10"  # whole February and March, edges in Jan and Apr


async def fill(db: Database) -> None:
    rows = []
    for month, n in (("01", 2), ("02", 3), ("03", 4), ("04", 1)):
        for i in range(n):
            day = f"2026-{month}-{10 + i:02d}"
            rows.append(hit(47, f"{day} 09:00", 100 + i, path="/a"))
            rows.append(hit(47, f"{day} 09:05", 100 + i, path="/b"))
            rows.append(hit(48, f"{day} 10:00", 200 + i))
            rows.append(dvc(48, f"{day} 10:01", 200 + i, "S1", -1))
    await db.write_batch(rows, [])
    await dossier(db, 48, "2026-01-20 09:00", 2, "S1", reception=1, level=4)
    await dossier(db, 48, "2026-02-20 09:00", 3, "S1", reception=2, level=1)
    await dossier(db, 48, "2026-03-05 09:00", 1, "S2", reception=2, level=1)
    await rollup(db)


async def figures(db: Database) -> dict[str, object]:
    nation, agency = Scope.nation(), Scope.agency("H26")
    return {
        "totals": await m.totals(db, nation, START, END),
        "agency": await m.totals(db, agency, START, END),
        "per_site": await m.per_site(db, nation, START, END),
        "series": await m.month_series(db, nation, START, END, ("visits", "received")),
        "days": await m.timeseries(db, nation, START, END,
                                   ("visits", "pageviews", "views", "received", "events",
                                    "dossier_events")),
        "prev": await m.compare(db, nation, "2026-03-02", "2026-03-20"),
        "share": await queries.procedure_share(db, nation, START, END),
        "share_month": await queries.procedure_share_by_month(db, nation, START, END),
        "rankings": await queries.agency_rankings(db, START, END),
    }


async def test_monthly_tables_give_the_daily_figures(db: Database) -> None:
    await fill(db)
    assert not await m.months_fresh(db)  # rolled up, never refreshed
    daily = await figures(db)
    # hand-checked: days 2026-01-15..04-10 hold Jan 0 (10, 11 are before), Feb 3, Mar 4,
    # Apr 1 days; two sites with one visit each a day
    assert daily["totals"]["visits"] == 2 * (3 + 4 + 1)
    assert daily["totals"]["pageviews"] == 3 * (3 + 4 + 1)
    assert daily["totals"]["received"] == 2 + 3 + 1
    assert [r["visits"] for r in daily["series"]] == [0, 6, 8, 2]
    assert daily["share"] == {"procedures": 2, "procedures_full_online": 1, "share": 0.5}

    assert await refresh_site_months(db) is None  # first refresh: every month
    assert await m.months_fresh(db)
    months = await db.fetch_all("SELECT month, SUM(visits) AS v FROM rollup_site_month "
                                "GROUP BY month ORDER BY month")
    assert [(r["month"], int(r["v"])) for r in months] == [
        ("2026-01", 4), ("2026-02", 6), ("2026-03", 8), ("2026-04", 2)]
    by_day = await db.fetch_all("SELECT day, visits, dossier_events FROM rollup_nation_day "
                                "WHERE day >= '2026-01-20' AND day <= '2026-02-11' ORDER BY day")
    assert [(r["day"], int(r["visits"]), int(r["dossier_events"])) for r in by_day] == [
        ("2026-01-20", 0, 2), ("2026-02-10", 2, 0), ("2026-02-11", 2, 0)]
    nation = await db.fetch_all("SELECT month, visits FROM rollup_nation_month ORDER BY month")
    assert [(r["month"], int(r["visits"])) for r in nation] == [
        ("2026-01", 4), ("2026-02", 6), ("2026-03", 8), ("2026-04", 2)]
    assert await figures(db) == daily


async def test_refresh_recomputes_the_months_a_rollup_touched(db: Database) -> None:
    await fill(db)
    await refresh_site_months(db)
    before = await figures(db)
    # a late hit for February and a dossier for March
    await db.write_batch([hit(47, "2026-02-11 11:00", 999, path="/late")], [])
    await dossier(db, 48, "2026-03-06 09:00", 1, "S3", reception=1, level=4)
    await rollup(db)
    assert not await m.months_fresh(db)  # rolled up, not refreshed: daily tables answer
    stale = await figures(db)
    assert stale["totals"]["visits"] == before["totals"]["visits"] + 1
    assert await refresh_site_months(db) == ["2026-02", "2026-03"]
    assert await m.months_fresh(db)
    assert await figures(db) == stale
    assert await refresh_site_months(db) == []  # nothing new: idempotent and cheap


async def test_rebuild_path_invalidates_then_recomputes(db: Database) -> None:
    await fill(db)
    await refresh_site_months(db)
    right = await figures(db)
    # a month row gone wrong (as a rebuild rewriting daily rows below the watermarks)
    await db.execute("UPDATE rollup_site_month SET visits = visits + 100 WHERE month = '2026-03'")
    assert (await m.totals(db, Scope.agency("H26"), START, END))["visits"] == \
        right["agency"]["visits"] + 200  # read monthly: the wrong rows show
    await invalidate_site_months(db)
    assert await figures(db) == right  # daily tables answer meanwhile
    assert await refresh_site_months(db, since="2026-03-01") is None  # no state: all months
    await db.execute("UPDATE rollup_site_month SET visits = visits + 100 WHERE month = '2026-03'")
    assert await refresh_site_months(db, since="2026-03-01") == ["2026-03", "2026-04"]
    assert await figures(db) == right


async def test_the_app_and_the_cli_refresh_after_their_rollups(client, db: Database,
                                                              config) -> None:
    import asyncio

    from collector.app import run_rollup
    from collector.cli import main

    await db.write_batch([hit(47, "2026-02-10 09:00", 1)], [])
    await run_rollup(client.app.state.giamsat)  # the in-server job
    assert await m.months_fresh(db)
    assert (await m.totals(db, Scope.nation(), "2026-02-01", "2026-02-28"))["visits"] == 1
    await db.write_batch([hit(47, "2026-02-11 09:00", 2)], [])
    url = config.database_url
    assert await asyncio.to_thread(main, ["--database-url", url, "rollup"]) == 0
    assert await m.months_fresh(db)
    assert (await m.totals(db, Scope.nation(), "2026-02-01", "2026-02-28"))["visits"] == 2
    await db.execute("UPDATE rollup_nation_month SET visits = 99")  # as if gone wrong
    assert await asyncio.to_thread(main, ["--database-url", url, "rollup", "--since",
                                          "2026-02-01"]) == 0
    assert await m.months_fresh(db)
    assert (await m.totals(db, Scope.nation(), "2026-02-01", "2026-02-28"))["visits"] == 2
