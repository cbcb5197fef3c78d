"""Compliance states from fixed stored facts, including the boundaries."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from collector.compliance import compute, longest_gap, month_period
from collector.config import Config
from collector.reconcile import import_reported
from collector.store import Database
from tests.compliance_helpers import (
    add_days,
    add_dropped,
    add_dvc,
    add_feed,
    days,
    ensure_rollups,
    register,
)

MARCH = month_period("2026-03")
LATER = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
CFG = Config(gap_days=3, reconcile_abs=2, reconcile_rel=0.05, foreign_host_min=20)


@pytest.fixture
async def facts(db: Database) -> Database:
    await ensure_rollups(db)
    await db.execute("DELETE FROM sites")  # the conftest sites 47/48 are not part of these
    return db


async def states(db: Database, config: Config = CFG, period: tuple[str, str] = MARCH,
                 as_of: int = LATER) -> dict[int, object]:
    result = await compute(db, config, period[0], period[1], as_of)
    return {s.site_id: s for s in result.sites}


def codes(site: object) -> list[str]:
    return [f.code for f in site.findings]  # type: ignore[attr-defined]


def test_month_period_and_gap_arithmetic() -> None:
    assert month_period("2026-02") == ("2026-02-01", "2026-02-28")
    assert month_period("2026-12") == ("2026-12-01", "2026-12-31")
    all_days = days("2026-03-01", "2026-03-31", skip=("2026-03-10", "2026-03-11"))
    assert longest_gap(all_days, "2026-03-01", "2026-03-31") == (2, "2026-03-10", "2026-03-11", 2)
    assert longest_gap([], "2026-03-01", "2026-03-31")[0] == 31
    assert longest_gap(["2026-03-01"], "2026-03-01", "2026-03-31")[:3] == (
        30, "2026-03-02", "2026-03-31")


async def test_never_hit_is_not_connected(facts: Database) -> None:
    await register(facts, 1)
    s = (await states(facts))[1]
    assert s.state == "not_connected"
    assert codes(s) == ["never_hit"]
    assert s.last_hit_day is None


async def test_every_day_is_compliant(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2026-02-20", "2026-03-31"))
    s = (await states(facts))[1]
    assert (s.state, s.findings, s.gap_days, s.hit_days) == ("compliant", [], 0, 31)
    assert s.last_hit_day == "2026-03-31"


@pytest.mark.parametrize(("missing", "state"), [(2, "compliant"), (3, "interrupted"),
                                                 (4, "interrupted")])
async def test_gap_boundary(facts: Database, missing: int, state: str) -> None:
    await register(facts, 1)
    skip = tuple(f"2026-03-{10 + i:02d}" for i in range(missing))
    await add_days(facts, 1, days("2026-02-01", "2026-03-31", skip=skip))
    s = (await states(facts))[1]
    assert s.state == state
    assert s.gap_days == missing
    assert s.counts["days_without_hits"] == missing
    if state == "interrupted":
        f = s.findings[0]
        assert f.code == "interrupted"
        assert f.evidence["gap_from"] == "2026-03-10"
        assert f"gián đoạn {missing} ngày" in f.message_vi


async def test_trailing_gap_and_hits_only_before_the_period(facts: Database) -> None:
    await register(facts, 1)
    await register(facts, 2)
    await add_days(facts, 1, days("2026-02-01", "2026-03-28"))   # silent 29, 30, 31
    await add_days(facts, 2, days("2026-01-01", "2026-02-15"))   # silent all March
    st = await states(facts)
    assert (st[1].state, st[1].gap_days) == ("interrupted", 3)
    # silent since 16 February: 13 days of February + 31 of March, counted in full
    assert (st[2].state, st[2].gap_days, st[2].last_hit_day) == ("interrupted", 44, "2026-02-15")
    f = st[2].findings[0]
    assert (f.evidence["gap_from"], f.evidence["gap_to"]) == ("2026-02-16", "2026-03-31")
    assert st[2].counts["days_without_hits"] == 31  # the period's own days


# (last hit before March, first hit in March) → (state, gap, gap_from, March days without)
STRADDLE = [
    (("2026-02-27", "2026-03-02"), ("compliant", 2, "", 1)),             # 28, 1: below
    (("2026-02-27", "2026-03-03"), ("interrupted", 3, "2026-02-28", 2)),  # 28, 1, 2: exactly
    (("2026-02-28", "2026-03-04"), ("interrupted", 3, "2026-03-01", 3)),  # inside March
    (("2026-02-25", "2026-03-01"), ("compliant", 0, "", 0)),  # 26-28 ended before March
]


@pytest.mark.parametrize(("hits", "expected"), STRADDLE)
async def test_gap_straddling_the_month_start(facts: Database, hits: tuple[str, str],
                                              expected: tuple[str, int, str, int]) -> None:
    last_before, first_in = hits
    await register(facts, 1)
    await add_days(facts, 1, days("2026-01-01", last_before) + days(first_in, "2026-03-31"))
    s = (await states(facts))[1]
    state, gap, gap_from, missing = expected
    assert (s.state, s.gap_days, s.counts["days_without_hits"]) == (state, gap, missing)
    assert s.last_hit_day == "2026-03-31"
    if state == "interrupted":
        assert s.findings[0].evidence["gap_from"] == gap_from
        assert f"gián đoạn {gap} ngày" in s.findings[0].message_vi


async def test_the_february_side_of_a_straddling_gap(facts: Database) -> None:
    await register(facts, 1)
    await register(facts, 2)
    await add_days(facts, 1, days("2026-01-01", "2026-02-27") + days("2026-03-03", "2026-03-31"))
    await add_days(facts, 2, days("2026-01-01", "2026-02-25") + days("2026-03-01", "2026-03-31"))
    st = await states(facts, period=month_period("2026-02"))
    assert (st[1].state, st[1].gap_days) == ("compliant", 1)      # only the 28th is February's
    assert (st[2].state, st[2].gap_days) == ("interrupted", 3)    # 26, 27, 28


def local_ms(day: str, hh: int, mm: int = 0) -> int:
    d = dt.date.fromisoformat(day)
    return int(dt.datetime(d.year, d.month, d.day, hh, mm,
                           tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp() * 1000)


async def test_first_day_of_the_month(facts: Database) -> None:
    """On the 1st no day of the period is over: only runs that began before count."""
    last = {1: "2025-12-31", 2: "2026-02-28", 3: "2026-02-27", 4: "2026-02-26",
            5: "2026-02-25", 6: "2026-01-15"}
    for sid, day in last.items():
        await register(facts, sid)
        await add_days(facts, sid, days("2025-12-01", day))
    await add_days(facts, 6, ["2026-03-01"])  # back this morning after six weeks
    await register(facts, 7)                  # never heard of
    expected = {1: ("interrupted", 59), 2: ("compliant", 0), 3: ("compliant", 1),
                4: ("compliant", 2), 5: ("interrupted", 3), 6: ("compliant", 0),
                7: ("not_connected", 0)}
    for as_of in (local_ms("2026-03-01", 0, 30), local_ms("2026-03-01", 23, 59)):
        st = await states(facts, as_of=as_of)
        assert {sid: (s.state, s.gap_days) for sid, s in st.items()} == expected
        assert st[1].findings[0].evidence == {"gap": 59, "gap_from": "2026-01-01",
                                              "gap_to": "2026-02-28"}
        assert st[1].counts["days_without_hits"] == 0
        assert st[6].hit_days == 1
    # one day later the 1st is over
    st = await states(facts, as_of=local_ms("2026-03-02", 0, 30))
    assert {sid: (s.state, s.gap_days) for sid, s in st.items()} == {
        1: ("interrupted", 60), 2: ("compliant", 1), 3: ("compliant", 2),
        4: ("interrupted", 3), 5: ("interrupted", 4), 6: ("compliant", 0),
        7: ("not_connected", 0)}


async def test_silent_for_eleven_months(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2025-12-01", "2025-12-31"))
    st = await states(facts, period=month_period("2026-12"), as_of=local_ms("2026-12-01", 9))
    s = st[1]
    assert (s.state, s.gap_days, s.last_hit_day) == ("interrupted", 334, "2025-12-31")
    assert s.findings[0].message_vi == ("gián đoạn 334 ngày liên tiếp không có dữ liệu "
                                        "(từ 2026-01-01 đến 2026-11-30)")


async def test_a_period_not_yet_begun_has_no_gap(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2026-02-01", "2026-03-10"))
    st = await states(facts, period=month_period("2026-04"), as_of=local_ms("2026-03-20", 9))
    assert (st[1].state, st[1].gap_days, st[1].last_hit_day) == ("compliant", 0, "2026-03-10")


async def test_connected_mid_period_is_not_a_gap(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2026-03-15", "2026-03-31"))
    s = (await states(facts))[1]
    assert (s.state, s.gap_days, s.hit_days) == ("compliant", 0, 17)


async def test_current_day_is_not_counted_until_over(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2026-02-01", "2026-03-17"))  # nothing yet on the 18th
    noon_18 = int(dt.datetime(2026, 3, 18, 5, tzinfo=dt.UTC).timestamp() * 1000)
    assert (await states(facts, as_of=noon_18))[1].state == "compliant"
    await facts.execute("DELETE FROM rollup_site_day WHERE day >= '2026-03-15'")
    s = (await states(facts, as_of=noon_18))[1]  # 15, 16, 17 silent: exactly the threshold
    assert (s.state, s.gap_days) == ("interrupted", 3)


async def test_dvc_without_trackdvc_and_onestop_without_feed(facts: Database) -> None:
    await register(facts, 1, kind="dvc")
    await register(facts, 2, kind="dvc")
    await register(facts, 3, kind="onestop")
    await register(facts, 4, kind="onestop")
    for sid in (1, 2, 3, 4):
        await add_days(facts, sid, days("2026-02-01", "2026-03-31"))
    await add_dvc(facts, 2, "2026-03-05", "1.00309", views=5, submissions=1)
    await add_feed(facts, 4, "2026-03-05", "1.00309", online=1)
    st = await states(facts)
    assert (st[1].state, codes(st[1])) == ("incomplete", ["dvc_no_trackdvc"])
    assert "không gửi trackDVC" in st[1].findings[0].message_vi
    assert st[2].state == "compliant"
    assert (st[3].state, codes(st[3])) == ("incomplete", ["onestop_no_feed"])
    assert st[4].state == "compliant"


async def test_unregistered_hosts_and_copied_code(facts: Database) -> None:
    for sid in (1, 2, 3):
        await register(facts, sid)
        await add_days(facts, sid, days("2026-02-01", "2026-03-31"))
    # site 1's code on a host nobody registered, 20 hits: at the threshold
    await add_dropped(facts, 1, "2026-03-03", "copy.example.com", 12)
    await add_dropped(facts, 1, "2026-03-04", "copy.example.com", 8)
    # site 2's code on site 3's host, 19 hits: below the threshold for site 2 and site 3
    await add_dropped(facts, 2, "2026-03-03", "s3.example.gov.vn", 19)
    st = await states(facts)
    assert (st[1].state, codes(st[1])) == ("incomplete", ["foreign_hosts"])
    assert st[1].findings[0].evidence == {"n": 20, "hosts": "copy.example.com"}
    assert st[2].state == st[3].state == "compliant"
    await add_dropped(facts, 2, "2026-03-09", "s3.example.gov.vn", 1)
    st = await states(facts)
    assert codes(st[2]) == ["foreign_hosts"]
    assert codes(st[3]) == ["code_of_other_site"]
    assert "site 2" in st[3].findings[0].message_vi


@pytest.mark.parametrize(("browser", "state"), [(95, "compliant"), (94, "not_reconciled")])
async def test_reconciliation_tolerance_boundary(facts: Database, browser: int,
                                                 state: str) -> None:
    # tolerance = max(2, 5 % of 100) = 5: a difference of exactly 5 reconciles
    await register(facts, 1, kind="dvc")
    await add_days(facts, 1, days("2026-02-01", "2026-03-31"))
    await add_feed(facts, 1, "2026-03-02", "2.001", online=60)
    await add_feed(facts, 1, "2026-03-20", "2.001", online=40)
    await add_dvc(facts, 1, "2026-03-02", "2.001", views=500, submissions=browser)
    result = await compute(facts, CFG, *MARCH, LATER)
    s = result.sites[0]
    assert s.state == state
    [c] = result.comparisons
    assert (c.against, c.a, c.b, c.difference, c.tolerance) == (
        "feed-browser", 100, browser, 100 - browser, 5.0)
    if state == "not_reconciled":
        assert "2.001: 100 so với 94" in s.findings[0].message_vi


@pytest.mark.parametrize(("browser", "state"), [(95, "compliant"), (94, "not_reconciled")])
async def test_feed_of_the_one_stop_site_pairs_with_trackdvc_of_the_dvc_site(
        facts: Database, browser: int, state: str) -> None:
    """The feed comes from the agency's one-stop site, trackDVC from its DVC portal: paired
    across the agency's sites per service code; tolerance max(2, 5 % of 100) = 5."""
    await register(facts, 1, kind="dvc", agency="H26")
    await register(facts, 2, kind="onestop", agency="H26")
    await register(facts, 3, kind="dvc", agency="H01")      # same procedure, other agency
    for sid in (1, 2, 3):
        await add_days(facts, sid, days("2026-02-01", "2026-03-31"))
    await add_feed(facts, 2, "2026-03-02", "2.001", online=60)
    await add_feed(facts, 2, "2026-03-20", "2.001", online=40)
    await add_dvc(facts, 1, "2026-03-02", "2.001", views=500, submissions=browser)
    await add_dvc(facts, 3, "2026-03-02", "2.001", views=50, submissions=7)
    result = await compute(facts, CFG, *MARCH, LATER)
    st = {s.site_id: s for s in result.sites}
    [c] = result.comparisons   # H01 has no feed: nothing to pair its trackDVC with
    assert (c.agency_code, c.against, c.a, c.b, c.difference, c.tolerance, c.ok) == (
        "H26", "feed-browser", 100, browser, 100 - browser, 5.0, state == "compliant")
    assert (c.feed_sites, c.browser_sites, c.sites) == ((2,), (1,), (1, 2))
    assert st[1].state == st[2].state == state
    assert st[3].state == "compliant"
    if state == "not_reconciled":
        assert codes(st[1]) == codes(st[2]) == ["not_reconciled"]
        assert "2.001: 100 so với 94" in st[2].findings[0].message_vi


async def test_agency_pairing_sums_sites_and_blames_the_silent_part(facts: Database) -> None:
    """Two DVC portals of one agency are summed; a service the DVC pages report but the
    one-stop feed lacks makes the one-stop site not reconciled too; reported totals of a
    site are held against the agency's feed."""
    await register(facts, 1, kind="dvc")
    await register(facts, 2, kind="dvc")
    await register(facts, 3, kind="onestop")
    for sid in (1, 2, 3):
        await add_days(facts, sid, days("2026-02-01", "2026-03-31"))
    await add_feed(facts, 3, "2026-03-05", "A", online=50)
    await add_dvc(facts, 1, "2026-03-05", "A", views=90, submissions=30)
    await add_dvc(facts, 2, "2026-03-06", "A", views=70, submissions=18)   # 48 vs 50: agrees
    await add_dvc(facts, 2, "2026-03-06", "B", views=9, submissions=3)     # no feed for B: 0
    await import_reported(facts, "site,service,period,count\n3,A,2026-03,52\n", "csv:t")
    result = await compute(facts, CFG, *MARCH, LATER)
    got = {(c.service, c.against): (c.a, c.b, c.ok, c.sites) for c in result.comparisons}
    assert got == {("A", "feed-browser"): (50, 48, True, (1, 2, 3)),
                   ("A", "reported-feed"): (52, 50, True, (3,)),
                   ("B", "feed-browser"): (0, 3, False, (2, 3))}
    st = {s.site_id: s.state for s in result.sites}
    assert st == {1: "compliant", 2: "not_reconciled", 3: "not_reconciled"}


async def test_small_counts_use_the_absolute_tolerance(facts: Database) -> None:
    await register(facts, 1, kind="dvc")
    await add_days(facts, 1, days("2026-02-01", "2026-03-31"))
    await add_feed(facts, 1, "2026-03-02", "A", online=3)
    await add_dvc(facts, 1, "2026-03-02", "A", views=9, submissions=1)   # |3-1| = 2 = abs tol
    await add_feed(facts, 1, "2026-03-02", "B", online=3)
    await add_dvc(facts, 1, "2026-03-02", "B", views=9, submissions=0)   # |3-0| = 3 > 2
    result = await compute(facts, CFG, *MARCH, LATER)
    assert [(c.service, c.ok) for c in result.comparisons] == [("A", True), ("B", False)]
    assert result.sites[0].state == "not_reconciled"


async def test_reported_totals_from_csv(facts: Database) -> None:
    await register(facts, 1, kind="onestop")
    await add_days(facts, 1, days("2026-02-01", "2026-03-31"))
    await add_feed(facts, 1, "2026-03-02", "1.1", online=100)
    csv_text = ("\ufeffsite,service,period,count\n1,1.1,2026-03,120\n1,1.2,2026-04,5\n"
                "99,1.1,2026-03,1\n1,x y,2026-03,1\n1,1.1,2026-13,1\n1,1.1,2026-03,-4\n")
    report = await import_reported(facts, csv_text, "csv:test.csv")
    assert report.saved == 2
    assert [line for line, _ in report.errors] == [4, 5, 6, 7]
    assert "site" in report.errors[0][1] and "count" in report.errors[3][1]
    result = await compute(facts, CFG, *MARCH, LATER)
    [c] = result.comparisons
    assert (c.against, c.a, c.b, c.ok) == ("reported-feed", 120, 100, False)
    assert result.sites[0].state == "not_reconciled"
    # re-import replaces: 104 vs 100 is within 5 %
    await import_reported(facts, "site,service,period,count\n1,1.1,2026-03,104\n", "csv:b")
    assert (await states(facts))[1].state == "compliant"


async def test_precedence_lists_all_findings_and_takes_the_most_severe(facts: Database) -> None:
    await register(facts, 1, kind="onestop")
    ts = int(dt.datetime(2026, 3, 20, tzinfo=dt.UTC).timestamp() * 1000)
    await facts.execute(
        "INSERT INTO scans (site_id, ts, base_url, duration_ms, home_status, snippet, "
        "pages, pages_ok, findings) VALUES (1, :ts, 'https://s1/', 5, 'ok', 'commented', "
        "1, 1, :f)", {"ts": ts, "f": json.dumps(["snippet_commented", "badge_missing"])})
    await facts.execute(
        "INSERT INTO scan_pages (site_id, ts, n, url, status, snippet) "
        "VALUES (1, :ts, 0, 'https://s1/', 'ok', 'commented')", {"ts": ts})
    s = (await states(facts))[1]
    assert s.state == "not_connected"
    assert codes(s) == ["never_hit", "snippet_commented", "onestop_no_feed", "badge_missing"]
    assert "mã giám sát bị chú thích (comment) trên trang chủ" in s.findings[1].message_vi
    assert s.findings[-1].severity == "warning"
    # a scan after the period is not evidence for it
    s = (await states(facts, period=month_period("2026-02")))[1]
    assert codes(s) == ["never_hit", "onestop_no_feed"]


async def test_agency_roll_up_and_registration_date(facts: Database) -> None:
    await register(facts, 1, agency="H26")
    await register(facts, 2, agency="H26", required=False)
    await register(facts, 3, agency="H01")
    await register(facts, 4, agency="H01")
    await register(facts, 5, agency="H01", registered_on="2026-04-02")
    for sid in (1, 3):
        await add_days(facts, sid, days("2026-02-01", "2026-03-31"))
    result = await compute(facts, CFG, *MARCH, LATER)
    assert 5 not in {s.site_id for s in result.sites}
    agencies = {a.code: a for a in result.agencies}
    assert (agencies["H26"].state, agencies["H26"].sites, agencies["H26"].compliant) == (
        "compliant", 1, 1)   # the optional site 2 (not connected) does not count
    assert (agencies["H01"].state, agencies["H01"].sites, agencies["H01"].compliant) == (
        "not_connected", 2, 1)
    assert result.counts() == {"not_connected": 1, "incomplete": 0, "interrupted": 0,
                               "not_reconciled": 0, "compliant": 2}


async def test_monthly_history_is_stored_and_refreshed(facts: Database) -> None:
    from collector.compliance import monthly_counts

    await register(facts, 1)
    await register(facts, 2)
    await add_days(facts, 1, days("2026-01-01", "2026-03-31"))
    await add_days(facts, 2, days("2026-03-10", "2026-03-31"))
    counts = await monthly_counts(facts, CFG, ["2026-02", "2026-03"], LATER)
    assert counts["2026-02"]["compliant"] == 1 and counts["2026-02"]["not_connected"] == 1
    assert counts["2026-03"]["compliant"] == 2
    # a closed month is read back while its row is fresh, recomputed once stale
    await add_days(facts, 2, days("2026-02-01", "2026-02-28"))
    again = await monthly_counts(facts, CFG, ["2026-02"], LATER + 3600_000)
    assert again["2026-02"]["compliant"] == 1
    later = await monthly_counts(facts, CFG, ["2026-02"], LATER + 2 * 86_400_000)
    assert later["2026-02"]["compliant"] == 2
    rows = await facts.fetch_all("SELECT month, compliant FROM compliance_months ORDER BY month")
    assert rows == [{"month": "2026-02", "compliant": 2}, {"month": "2026-03", "compliant": 2}]


async def test_long_periods_from_month_summaries_match_the_daily_rollup(
        facts: Database) -> None:
    """Closed months inside a long period come from compliance_site_months: the states,
    gaps and counts must be those computed from the daily rows, for aligned and unaligned
    periods, on the first computation (summaries written) and the next (read back)."""
    import random

    from collector.compliance import period_facts

    rng = random.Random(6)
    all_days = days("2025-10-15", "2026-05-20")
    for sid in range(1, 41):
        await register(facts, sid, kind=("portal", "dvc", "onestop")[sid % 3])
        pattern = sid % 5
        if pattern == 0:
            chosen = all_days                                     # every day
        elif pattern == 1:
            chosen = [d for d in all_days if rng.random() > 0.2]  # scattered holes
        elif pattern == 2:                                        # one long outage
            a = rng.randrange(len(all_days) - 40)
            chosen = all_days[:a] + all_days[a + rng.randrange(3, 40):]
        elif pattern == 3:                                        # stops, or starts late
            cut = rng.randrange(len(all_days))
            chosen = all_days[:cut] if sid % 2 else all_days[cut:]
        else:                                                     # a few days only
            chosen = sorted(rng.sample(all_days, rng.randrange(0, 6)))
        await add_days(facts, sid, chosen)
    as_of = local_ms("2026-05-10", 9)
    periods = [("2025-11-01", "2026-04-30"), ("2025-10-20", "2026-05-31"),
               ("2025-12-01", "2026-01-31"), ("2025-11-17", "2026-03-03")]
    for start, end in periods:
        expected = await compute(facts, CFG, start, end, as_of, summaries=False)
        for _ in range(2):  # written, then read back
            got = await compute(facts, CFG, start, end, as_of)
            assert [s.as_dict() for s in got.sites] == [s.as_dict() for s in expected.sites], \
                (start, end)
            assert [[f.evidence for f in s.findings] for s in got.sites] == \
                [[f.evidence for f in s.findings] for s in expected.sites]
    assert {r["month"] for r in await facts.fetch_all(
        "SELECT month FROM compliance_summary_months")} == {
        "2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04"}
    assert sum(s.state == "interrupted" for s in expected.sites) > 5  # the data has gaps
    # a late hit in a closed month shows once its summary is a day old
    direct = await period_facts(facts, "2025-11-01", "2026-04-30", "2026-04-30", "2026-05-10",
                                summaries=False)
    silent = next(sid for sid in range(1, 41) if sid not in direct)
    await add_days(facts, silent, ["2026-02-10"])
    stored = await period_facts(facts, "2025-11-01", "2026-04-30", "2026-04-30", "2026-05-10")
    assert silent not in stored
    await facts.execute("UPDATE compliance_summary_months SET computed_ts = 0")
    fresh = await period_facts(facts, "2025-11-01", "2026-04-30", "2026-04-30", "2026-05-10")
    assert (fresh[silent].days, fresh[silent].first) == (1, "2026-02-10")


async def test_a_closed_month_computed_whole_stores_its_summary(facts: Database) -> None:
    await register(facts, 1)
    await add_days(facts, 1, days("2026-02-01", "2026-03-31", skip=("2026-03-10",)))
    await states(facts)  # March, closed as of LATER
    rows = await facts.fetch_all("SELECT month, site_id, days, gap, gap_from, gap_to "
                                 "FROM compliance_site_months")
    assert rows == [{"month": "2026-03", "site_id": 1, "days": 30, "gap": 1,
                     "gap_from": "2026-03-10", "gap_to": "2026-03-10"}]
    # not for a month still running, nor for a period that is not one whole month
    await facts.execute("DELETE FROM compliance_summary_months")
    await states(facts, as_of=local_ms("2026-03-20", 9), period=month_period("2026-03"))
    await states(facts, period=("2026-03-02", "2026-03-31"))
    assert await facts.fetch_all("SELECT month FROM compliance_summary_months") == []


async def test_month_summaries_are_refreshed_off_the_read_path(facts: Database) -> None:
    """The server's job stores the last 13 closed months' summaries; a report of a long
    period then only reads them (nothing written), with the same result as the daily
    rollup's; a second refresh the same day writes nothing either."""
    from collector.compliance import closed_months, refresh_month_summaries

    assert closed_months("2026-05-10") == [f"2025-{m:02d}" for m in range(4, 13)] + \
        [f"2026-{m:02d}" for m in range(1, 5)]
    await register(facts, 1)
    await add_days(facts, 1, days("2025-12-01", "2026-04-30", skip=("2026-02-14",)))
    await refresh_month_summaries(facts, "2026-05-10")
    marks = await facts.fetch_all(
        "SELECT month, computed_ts FROM compliance_summary_months ORDER BY month")
    assert [r["month"] for r in marks] == closed_months("2026-05-10")
    rows = await facts.fetch_all("SELECT month, days, gap FROM compliance_site_months "
                                 "ORDER BY month")
    assert rows == [{"month": "2025-12", "days": 31, "gap": 0},
                    {"month": "2026-01", "days": 31, "gap": 0},
                    {"month": "2026-02", "days": 27, "gap": 1},
                    {"month": "2026-03", "days": 31, "gap": 0},
                    {"month": "2026-04", "days": 30, "gap": 0}]
    as_of = local_ms("2026-05-10", 9)
    got = await compute(facts, CFG, "2025-12-01", "2026-04-30", as_of)
    expected = await compute(facts, CFG, "2025-12-01", "2026-04-30", as_of, summaries=False)
    assert [s.as_dict() for s in got.sites] == [s.as_dict() for s in expected.sites]
    await refresh_month_summaries(facts, "2026-05-10")
    assert await facts.fetch_all(
        "SELECT month, computed_ts FROM compliance_summary_months ORDER BY month") == marks
