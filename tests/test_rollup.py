"""Sessions and rollups on a small fixed day of hits, with hand-computed figures."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

import pytest
from hitrows import dvc, hit, rating, ts_of

from collector import rollup as rollup_module
from collector.rollup import classify_source, rebuild, rollup
from collector.rollup_sql import ID_SPAN
from collector.store import Database, open_database

# Hand-computed day (site 47, local time):
#   visitor 1: 10:00 / (from google.com), 10:30 /a (gap 30:00: same visit),
#              11:01 /b (gap 31:00: new visit), 11:01:30 ping      → 2 visits
#   visitor 2: 23:50 /, 23:55 /c; next day 00:05 /c (same id, new day) → 1 + 1 visits
#   visitor 4: two pings only                                       → no visit
#   visitor 5: DVC 1.001 view 14:00, submit 14:10, rating 5 at 14:11 → 1 visit, 0 page views
DAY = [
    hit(47, "2026-03-01 10:00", 1, path="/", ref_host="google.com",
        referrer="https://google.com/"),
    hit(47, "2026-03-01 10:30", 1, path="/a", ref_host="hanoi.gov.vn"),
    hit(47, "2026-03-01 11:01", 1, path="/b"),
    hit(47, "2026-03-01 11:01:30", 1, "ping", path="/b"),
    hit(47, "2026-03-01 23:50", 2, path="/"),
    hit(47, "2026-03-01 23:55", 2, path="/c"),
    hit(47, "2026-03-02 00:05", 2, path="/c"),
    hit(47, "2026-03-01 12:00", 4, "ping", path="/"),
    hit(47, "2026-03-01 12:01", 4, "ping", path="/"),
    dvc(47, "2026-03-01 14:00", 5, "1.001", -1),
    dvc(47, "2026-03-01 14:10", 5, "1.001", 1),
    rating(47, "2026-03-01 14:11", 5, "1.001", 5),
]
MIN = 60_000


async def site_days(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT day, visits, visitors, pageviews, bounces, duration_ms, hits, events "
        "FROM rollup_site_day WHERE site_id = 47 ORDER BY day")


async def dim(db: Database, dimension: str, day: str = "2026-03-01") -> dict[str, tuple]:
    rows = await db.fetch_all(
        "SELECT value, visits, pageviews, bounces FROM rollup_dimensions "
        "WHERE site_id = 47 AND dimension = :d AND day = :day", {"d": dimension, "day": day})
    return {r["value"]: (r["visits"], r["pageviews"], r["bounces"]) for r in rows}


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, key in (("rollup_site_day", "site_id, day"),
                       ("rollup_dimensions", "site_id, dimension, day, value"),
                       ("rollup_dimensions_month", "site_id, dimension, month, value"),
                       ("rollup_dvc", "site_id, day, service"),
                       ("rollup_dossiers", "site_id, day, service"),
                       ("visits", "site_id, day, visitor, start_ts")):
        out[table] = await db.fetch_all(f"SELECT * FROM {table} ORDER BY {key}")
    return out


async def test_sessions_gaps_midnight_pings(db: Database) -> None:
    await db.write_batch(DAY, [])
    report = await rollup(db)
    assert report.hits == 12
    assert await site_days(db) == [
        # visits: 1a, 1b, 2, 5; visitors 1, 2, 5; pv 2+1+2+0; bounce: 1b;
        # duration 30:00 + 0:30 + 5:00 + 11:00; hits 4 + 2 + 2 pings + 3
        {"day": "2026-03-01", "visits": 4, "visitors": 3, "pageviews": 5, "bounces": 1,
         "duration_ms": 46 * MIN + 30_000, "hits": 11, "events": 3},
        {"day": "2026-03-02", "visits": 1, "visitors": 1, "pageviews": 1, "bounces": 1,
         "duration_ms": 0, "hits": 1, "events": 0},
    ]
    assert await dim(db, "entry") == {"/": (2, 4, 0), "/b": (1, 1, 1), "/dvc": (1, 0, 0)}
    assert await dim(db, "exit") == {"/a": (1, 2, 0), "/b": (1, 1, 1), "/c": (1, 2, 0),
                                     "/dvc": (1, 0, 0)}
    assert await dim(db, "source") == {"search": (1, 2, 0), "direct": (3, 3, 1)}
    assert await dim(db, "referrer") == {"google.com": (1, 2, 0), "": (3, 3, 1)}
    assert await dim(db, "page") == {"/": (0, 2, 0), "/a": (0, 1, 0), "/b": (0, 1, 0),
                                     "/c": (0, 1, 0)}
    assert await dim(db, "hour") == {"10": (1, 2, 0), "11": (1, 1, 1), "23": (1, 2, 0),
                                     "14": (1, 0, 0)}
    assert await dim(db, "page", "2026-03-02") == {"/c": (0, 1, 0)}
    assert await dim(db, "hour", "2026-03-02") == {"00": (1, 1, 1)}
    assert await db.fetch_all("SELECT service, views, submissions, other_steps, ratings, "
                              "rating_sum, ratings_good FROM rollup_dvc") == [
        {"service": "1.001", "views": 1, "submissions": 1, "other_steps": 0, "ratings": 1,
         "rating_sum": 5, "ratings_good": 1}]


async def test_rerun_is_a_noop(db: Database) -> None:
    await db.write_batch(DAY, [])
    await rollup(db, batch=5)
    before = await snapshot(db)
    again = await rollup(db)
    assert (again.hits, again.batches) == (0, 0)
    assert await snapshot(db) == before


async def test_late_event_merges_two_visits(db: Database) -> None:
    await db.write_batch(DAY, [])
    await rollup(db)
    # 10:45 arrives after 03-01 was rolled up: 10:30 → 10:45 → 11:01 are gaps of 15 and 16
    # minutes, so visitor 1's two visits become one of 4 page views lasting 61:30.
    await db.write_batch([hit(47, "2026-03-01 10:45", 1, path="/d")], [])
    report = await rollup(db)
    assert (report.hits, report.visitor_days) == (1, 1)
    assert (await site_days(db))[0] == {
        "day": "2026-03-01", "visits": 3, "visitors": 3, "pageviews": 6, "bounces": 0,
        "duration_ms": (61 * MIN + 30_000) + 5 * MIN + 11 * MIN, "hits": 12, "events": 3}
    assert await dim(db, "entry") == {"/": (2, 6, 0), "/dvc": (1, 0, 0)}  # '/b' row gone
    assert await dim(db, "exit") == {"/b": (1, 4, 0), "/c": (1, 2, 0), "/dvc": (1, 0, 0)}
    # identical to counting everything from scratch
    late = await snapshot(db)
    await rebuild(db, "2026-01-01")
    assert await snapshot(db) == late


async def test_gap_of_exactly_thirty_minutes_continues_the_visit(db: Database) -> None:
    await db.write_batch([
        hit(47, "2026-03-01 08:00", 9), hit(47, "2026-03-01 08:30", 9),  # 30:00 → same
        hit(47, "2026-03-01 09:01", 9), hit(47, "2026-03-01 09:31:01", 9),  # 30:01 → new
    ], [])
    await rollup(db, batch=1)
    rows = await db.fetch_all(
        "SELECT start_ts, end_ts, pageviews, first_visit FROM visits ORDER BY start_ts")
    assert [(r["end_ts"] - r["start_ts"], r["pageviews"], r["first_visit"]) for r in rows] == [
        (30 * MIN, 2, 1), (0, 1, 0), (0, 1, 0)]
    day = (await site_days(db))[0]
    assert (day["visits"], day["visitors"], day["bounces"]) == (3, 1, 2)


async def test_ping_only_run_then_page_view_counts_the_visitor_once(db: Database) -> None:
    # a tab kept open over midnight: pings, a 40-minute gap, then a page view
    await db.write_batch([
        hit(47, "2026-03-01 00:00:10", 3, "ping"), hit(47, "2026-03-01 00:00:40", 3, "ping"),
        hit(47, "2026-03-01 00:41", 3, path="/x"),
    ], [])
    await rollup(db)
    day = (await site_days(db))[0]
    assert (day["visits"], day["visitors"], day["pageviews"], day["bounces"]) == (1, 1, 1, 1)


async def test_rebuild_since_recounts_whole_months_from_since(db: Database) -> None:
    await db.write_batch([*DAY, hit(47, "2026-04-02 09:00", 8)], [])
    await rollup(db)
    before = await snapshot(db)
    report = await rebuild(db, "2026-04-10")  # from 2026-04-01: only April is read again
    assert report.hits == 1
    assert await snapshot(db) == before
    assert (await rebuild(db, "2026-03-31")).hits == 13


def test_source_classes() -> None:
    assert classify_source("", "hanoi.gov.vn") == "direct"
    assert classify_source("hanoi.gov.vn", "hanoi.gov.vn") == "direct"
    assert classify_source("google.com.vn", "a.gov.vn") == "search"
    assert classify_source("coccoc.com", "a.gov.vn") == "search"
    assert classify_source("facebook.com", "a.gov.vn") == "social"
    assert classify_source("zalo.me", "a.gov.vn") == "social"
    assert classify_source("dichvucong.gov.vn", "a.gov.vn") == "gov"
    assert classify_source("vnexpress.net", "a.gov.vn") == "other"
    assert classify_source("facebook.com", "a.gov.vn", utm_campaign="tet") == "campaign"


async def test_sql_and_python_source_classes_agree(db: Database) -> None:
    cases = ["", "hanoi.gov.vn", "google.com", "google.com.vn", "bing.com", "facebook.com",
             "t.co", "dichvucong.gov.vn", "gov.vn", "example.com", "notgoogle.com"]
    rows = [hit(47, 1_772_000_000_000 + i * 3_600_000, 100 + i, ref_host=h)
            for i, h in enumerate(cases)]
    rows.append(hit(47, 1_772_100_000_000, 999, ref_host="google.com", utm_source="zalo"))
    await db.write_batch(rows, [])
    await rollup(db)
    rows_ = await db.fetch_all("SELECT visitor, source FROM visits")
    got = {r["visitor"]: r["source"] for r in rows_}
    expected = {100 + i: classify_source(h, "hanoi.gov.vn") for i, h in enumerate(cases)}
    expected[999] = "campaign"
    assert got == expected


async def test_ids_beyond_the_order_key_take_the_exact_path(db: Database) -> None:
    # ORDER_KEY packs an id into 36 bits: above that every visitor-day is cut in Python
    await db.write_batch(DAY, [])
    await rollup(db, batch=5)
    expected = await snapshot(db)
    async with db.transaction() as q:
        for table in ("visits", "rollup_site_day", "rollup_dimensions",
                      "rollup_dimensions_month", "rollup_dvc"):
            await q.execute(f"DELETE FROM {table}")
        await q.execute("UPDATE rollup_watermarks SET last_id = 0")
        await q.execute("UPDATE rollup_parts SET last_id = 0")
        await q.execute("UPDATE hits SET id = id + :shift", {"shift": ID_SPAN})
        if db.dialect == "postgres":  # the horizon reads the id sequence
            await q.execute("SELECT setval('hits_id_seq', (SELECT max(id) FROM hits))")
    report = await rollup(db, batch=5)
    assert report.hits == len(DAY)
    assert await snapshot(db) == expected


async def test_store_bulk_helpers_the_rollup_uses(db: Database) -> None:
    await db.execute_all([
        ("CREATE TABLE bulk_t (a INTEGER NOT NULL, b TEXT NOT NULL)", None),
        ("INSERT INTO bulk_t (a, b) VALUES (:a, 'x')", {"a": 1}),
    ])
    await db.insert_rows("bulk_t", ("a", "b"), [(2, "y"), (3, "z")])
    await db.insert_rows("bulk_t", ("a", "b"), [])
    assert await db.fetch_rows("SELECT a, b FROM bulk_t ORDER BY a") == [
        (1, "x"), (2, "y"), (3, "z")]


async def test_two_parts_survive_a_killed_child(db: Database) -> None:
    """The child process of the rollup's second stream killed between runs: the next run
    starts a new one, and the tables are those one connection computes."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL never streams")
    late = hit(47, "2026-03-01 10:15", 1, path="/late")  # merges visitor 1's visits
    with patch.object(rollup_module, "SPLIT_MIN", 1):
        await db.write_batch(DAY + [hit(48, "2026-03-01 09:00", 7, path="/x")], [])
        await rollup(db)
        child = db._child  # type: ignore[attr-defined]
        assert child is not None and not child.dead()
        child._proc.kill()
        child._proc.wait()
        await db.write_batch([late], [])
        report = await rollup(db)
        assert report.hits == 1 and db._child is not child  # type: ignore[attr-defined]
    split = {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")
             for t in ("rollup_site_day", "rollup_dimensions", "rollup_dvc", "visits")}
    await rebuild(db, "2026-03-01")  # one part (below SPLIT_MIN): recounts those days
    assert {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")
            for t in split} == split


async def test_two_parts_on_one_connection_while_the_child_is_busy(db: Database) -> None:
    """A big backlog while another caller holds the two streams' connections: one pooled
    connection counts it, and the tables are those of a one-part rebuild."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL never streams")
    hits = DAY + [hit(48, "2026-03-01 09:00", 7, path="/x")]  # sites 47 and 48: both parts
    await db.write_batch(hits, [])
    with patch.object(rollup_module, "SPLIT_MIN", 1):
        async with db.streams() as pair:
            assert pair is not None
            report = await rollup(db)
    assert report.hits == len(hits)
    split = {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")
             for t in ("rollup_site_day", "rollup_dimensions", "rollup_dvc", "visits")}
    assert {r["site_id"] for r in split["rollup_site_day"]} == {47, 48}
    await rebuild(db, "2026-03-01")  # one part (below SPLIT_MIN): recounts those days
    assert {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")
            for t in split} == split


def _mixed(n: int) -> list[tuple[Any, ...]]:
    """n hits over sites of both parts (48, 49 in part 0; 47, 56 in part 1), visits with
    gaps of 10 and 31 minutes, arriving out of time order (late hits)."""
    rows = []
    for i in range(n):
        minute = (i * 37) % 600 if i % 5 else (i * 10) % 600
        rows.append(hit((47, 48, 49, 56)[i % 4], ts_of("2026-03-01 08:00") + minute * MIN,
                        i % 11, "ping" if i % 9 == 0 else "pageview", path=f"/{i % 6}"))
    return rows


async def _tables(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {t: await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")
            for t in ("rollup_site_day", "rollup_dimensions", "rollup_dimensions_month",
                      "visits")}


async def test_a_stream_left_behind_is_caught_up(db: Database) -> None:
    """A run that stopped after part 0's stream had counted its hits and part 1's had not
    (a crash): 'hits' stays at part 1's watermark, and the next run counts part 1's hits
    and only those, giving the tables of one connection."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL never streams")
    rows = _mixed(300)
    await db.write_batch(rows[:200], [])
    await rollup(db)
    await db.write_batch(rows[200:], [])
    top = await db.horizon("hits")
    report = rollup_module.RollupReport()
    async with db.streams() as pair:
        assert pair is not None
        await rollup_module._stream(pair[0], 0, top, (15, 30), 0, report, lambda part, hi: None)
    assert report.hits == sum(1 for r in rows[200:] if r[0] in (48, 49))
    assert [r["last_id"] for r in await db.fetch_all(
        "SELECT last_id FROM rollup_parts ORDER BY part")] == [top, 200]
    assert (await db.fetch_one(
        "SELECT last_id FROM rollup_watermarks WHERE name = 'hits'"))["last_id"] == 200
    caught_up = await rollup(db, batch=40)  # one connection: both parts from their own
    assert caught_up.hits == 100 - report.hits
    assert (await db.fetch_one(
        "SELECT last_id FROM rollup_watermarks WHERE name = 'hits'"))["last_id"] == top
    tables = await _tables(db)
    await rebuild(db, "2026-03-01")
    assert await _tables(db) == tables


async def test_two_collectors_stream_one_backlog(db: Database) -> None:
    """Two collector processes (two stores on one file, each with its child) rolling the
    same backlog up at once, in small batches: every hit is counted once, by one of them,
    and the tables are those of one connection. Then a rebuild in one while hits arrive
    and the other streams them: the same (its streams' reads go stale, and they see it)."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL never streams")
    rows = _mixed(1600)
    await db.write_batch(rows[:400], [])
    other = await open_database(db.path)  # type: ignore[attr-defined]
    try:
        with patch.object(rollup_module, "SPLIT_MIN", 1):
            reports = await asyncio.gather(rollup(db, batch=25), rollup(other, batch=25))
            assert reports[0].hits + reports[1].hits == 400
            tables = await _tables(db)
            await rebuild(db, "2026-03-01")
            assert await _tables(db) == tables

            async def arrive() -> None:  # the rest comes in chunks, each streamed at once
                for i in range(400, len(rows), 100):
                    await db.write_batch(rows[i:i + 100], [])
                    await rollup(db, batch=20)

            await asyncio.gather(arrive(), rebuild(other, "2026-03-01", batch=40))
    finally:
        await other.close()
    assert (await db.fetch_one(
        "SELECT last_id FROM rollup_watermarks WHERE name = 'hits'"))["last_id"] == 1600
    tables = await _tables(db)
    await rebuild(db, "2026-03-01")
    assert await _tables(db) == tables
