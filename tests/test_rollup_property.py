"""Property: for any event stream, rolling up in one run or in many small runs (hits
arriving between runs, late hits included) gives identical tables."""

from __future__ import annotations

from typing import Any

from hitrows import dvc, hit, rating, ts_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.rollup import rollup
from collector.store import Database

BASE = ts_of("2026-03-31 22:30")  # streams straddle local midnight and a month end
MIN = 60_000
TABLES = {
    "rollup_site_day": "site_id, day",
    "rollup_dimensions": "site_id, dimension, day, value",
    "rollup_dimensions_month": "site_id, dimension, month, value",
    "rollup_dvc": "site_id, day, service",
    "visits": "site_id, day, visitor, start_ts",
}
RAW = ("hits", "visits", "rollup_site_day", "rollup_dimensions", "rollup_dimensions_month",
       "rollup_dvc", "rollup_dossiers")

event = st.tuples(
    st.sampled_from([47, 48]),                                   # site
    st.integers(0, 180),                                         # minute: gaps of 30/31 occur
    st.integers(0, 2),                                           # seconds step
    st.integers(1, 4),                                           # visitor
    st.sampled_from(["pageview", "pageview", "ping", "dvc", "rating", "outlink", "event"]),
    st.sampled_from(["/", "/a", "/b"]),
    st.sampled_from(["", "google.com", "facebook.com", "dichvucong.gov.vn", "hanoi.gov.vn"]),
    st.sampled_from(["", "tet"]),
    st.sampled_from([-1, 0, 1, 2]),
)


def to_row(e: tuple) -> tuple[Any, ...]:
    site, minute, sec, visitor, kind, path, ref, campaign, state = e
    ts = BASE + minute * MIN + sec * 30_000
    if kind == "dvc":
        return dvc(site, ts, visitor, f"S{state + 2}", state, path)
    if kind == "rating":
        return rating(site, ts, visitor, "S1", state + 3, path)
    return hit(site, ts, visitor, kind, path, ref_host=ref, utm_campaign=campaign,
               device="mobile" if visitor % 2 else "desktop")


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY {k}") for t, k in TABLES.items()}


async def reset(db: Database) -> None:
    async with db.transaction() as q:
        for table in RAW:
            await q.execute(f"DELETE FROM {table}")
        await q.execute("UPDATE rollup_watermarks SET last_id = 0")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=40),
       cuts=st.lists(st.integers(1, 8), min_size=1, max_size=10),
       batch=st.integers(1, 7))
async def test_one_run_equals_many_runs(db: Database, events: list, cuts: list[int],
                                        batch: int) -> None:
    rows = [to_row(e) for e in events]  # arrival order ≠ time order: many late hits

    await reset(db)
    await db.write_batch(rows, [])
    await rollup(db)
    once = await snapshot(db)

    await reset(db)
    i = 0
    for n in cuts * (len(rows) // sum(cuts) + 1):
        if i >= len(rows):
            break
        await db.write_batch(rows[i:i + n], [])
        i += n
        await rollup(db, batch=batch)
    assert await rollup(db) is not None
    assert await snapshot(db) == once
    # the site totals agree with the visits kept
    for s in once["rollup_site_day"]:
        visits = [v for v in once["visits"] if (v["site_id"], v["day"]) == (s["site_id"], s["day"])]
        assert s["visits"] == len(visits)
        assert s["visitors"] == len({v["visitor"] for v in visits})
        assert s["pageviews"] == sum(v["pageviews"] for v in visits)
    # the monthly table is the daily one summed by month
    monthly: dict[tuple, list[int]] = {}
    for r in once["rollup_dimensions"]:
        key = (r["site_id"], r["dimension"], r["day"][:7], r["value"])
        acc = monthly.setdefault(key, [0, 0, 0, 0])
        for i, c in enumerate(("visits", "pageviews", "bounces", "duration_ms")):
            acc[i] += r[c]
    assert {k: v for k, v in monthly.items() if any(v)} == {
        (r["site_id"], r["dimension"], r["month"], r["value"]):
        [r["visits"], r["pageviews"], r["bounces"], r["duration_ms"]]
        for r in once["rollup_dimensions_month"]}
