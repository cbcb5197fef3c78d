"""Monthly totals per site (``rollup_site_month``, ``rollup_dossiers_month``) and national
totals per month and per day (``rollup_nation_month``, ``rollup_nation_day``: every site
summed), derived from the daily rollup tables for the months a rollup touched, so a
year-long national overview sums ~12 rows per site (its totals: ~12 rows, its 30-day
totals and chart: 30 rows) instead of ~365 (30) per site.

    await rollup(db)
    await refresh_site_months(db)          # after every rollup (app.run_rollup, cli rollup)
    await refresh_site_months(db, since="2026-03-01")   # after a rebuild from that day

Which months: the distinct months of the raw hits and dossier events above the watermarks
recorded at the last refresh (``rollup_month_state``) and at or below the current
watermarks — a rolled-up event changes only its own day's rows. No state row (a fresh
migration, or :func:`invalidate_site_months`): every month is recomputed. Each month is
recomputed whole from the daily tables (DELETE + INSERT … SELECT … GROUP BY), so a refresh
is idempotent; one transaction under an advisory lock, so refreshers queue.

Readers (``collector.metrics``) use the monthly tables only while the recorded watermarks
equal ``rollup_watermarks``; a rollup run without a refresh makes long ranges slower to
read (the daily tables answer), never wrong.
"""

from __future__ import annotations

from collector.store import Database, Queries

# The daily rollup tables' counters (written by collector.rollup) and their monthly sums;
# collector.metrics reads both with these names.
SITE_COLUMNS = ("visits", "visitors", "pageviews", "bounces", "duration_ms", "hits",
                "events", "outlinks", "downloads")
DVC_COLUMNS = ("views", "submissions", "other_steps", "ratings", "rating_sum", "ratings_good")
DOSSIER_COLUMNS = ("events", "received", "received_online", "received_in_person",
                   "full_online", "paid_online", "paid_in_person", "results")
DAY_GROUPS = (  # daily table, its columns, their names in totals / rollup_site_month
    ("rollup_site_day", SITE_COLUMNS, {}),
    ("rollup_dvc", DVC_COLUMNS, {}),
    ("rollup_dossiers", DOSSIER_COLUMNS, {"events": "dossier_events"}),
)
MONTH_COLUMNS = (*SITE_COLUMNS, *DVC_COLUMNS, "dossier_events", *DOSSIER_COLUMNS[1:])

SOURCES = {"hits": "hits", "dossiers": "dossiers"}  # watermark name -> raw table
TABLES = ("rollup_site_month", "rollup_nation_month", "rollup_dossiers_month",
          "rollup_nation_day")


def _select(table: str, own: dict[str, str], where: str) -> str:
    """This table's columns (``own``: monthly name -> daily column) as ``c0…cN`` in
    ``MONTH_COLUMNS`` order, zeros for the other tables' columns."""
    cols = ", ".join(f"{own.get(c, '0')} AS c{i}" for i, c in enumerate(MONTH_COLUMNS))
    return (f"SELECT site_id, day, substr(day, 1, 7) AS month, {cols} FROM {table} "
            f"WHERE {where}")


def _union(where: str) -> str:
    """Every daily counter of the three daily tables as rows of ``site_id, day, month,
    c0…cN``."""
    return " UNION ALL ".join(_select(table, {names.get(c, c): c for c in columns}, where)
                              for table, columns, names in DAY_GROUPS)


def _site_month_sql(where: str) -> str:
    sums = ", ".join(f"SUM(c{i})" for i in range(len(MONTH_COLUMNS)))
    return (f"INSERT INTO rollup_site_month (site_id, month, {', '.join(MONTH_COLUMNS)}) "
            f"SELECT site_id, month, {sums} FROM ({_union(where)}) u GROUP BY site_id, month")


def _nation_day_sql(where: str) -> str:
    sums = ", ".join(f"SUM(c{i})" for i in range(len(MONTH_COLUMNS)))
    return (f"INSERT INTO rollup_nation_day (day, {', '.join(MONTH_COLUMNS)}) "
            f"SELECT day, {sums} FROM ({_union(where)}) u GROUP BY day")


def _nation_month_sql(where: str) -> str:
    names = ", ".join(MONTH_COLUMNS)
    sums = ", ".join(f"SUM({c})" for c in MONTH_COLUMNS)
    return (f"INSERT INTO rollup_nation_month (month, {names}) SELECT month, {sums} "
            f"FROM rollup_site_month WHERE {where} GROUP BY month")


def _dossier_month_sql(where: str) -> str:
    names = ", ".join(DOSSIER_COLUMNS)
    sums = ", ".join(f"SUM({c})" for c in DOSSIER_COLUMNS)
    return (f"INSERT INTO rollup_dossiers_month (site_id, month, service, {names}) "
            f"SELECT site_id, substr(day, 1, 7), service, {sums} FROM rollup_dossiers "
            f"WHERE {where} GROUP BY site_id, substr(day, 1, 7), service")


async def _touched(q: Queries, recorded: dict[str, int], current: dict[str, int]) -> set[str]:
    months: set[str] = set()
    for name, table in SOURCES.items():
        lo, hi = recorded[name], current.get(name, 0)
        if hi > lo:
            rows = await q.fetch_all(
                f"SELECT DISTINCT substr(day, 1, 7) AS m FROM {table} "
                "WHERE id > :lo AND id <= :hi", {"lo": lo, "hi": hi})
            months.update(r["m"] for r in rows)
    return months


async def refresh_site_months(db: Database, since: str | None = None) -> list[str] | None:
    """Recompute the monthly rows of the months touched since the last refresh (every
    month at or after ``since``'s month too, when given). Returns the months recomputed,
    or ``None`` when every month was."""
    async with db.transaction() as q:
        await q.advisory_lock("rollup_month")  # refreshers queue (SQLite: already serial)
        current = {r["name"]: int(r["last_id"]) for r in await q.fetch_all(
            "SELECT name, last_id FROM rollup_watermarks")}
        recorded = {r["name"]: int(r["last_id"]) for r in await q.fetch_all(
            "SELECT name, last_id FROM rollup_month_state")}
        if since is None and recorded == {n: current.get(n, 0) for n in SOURCES}:
            return []  # nothing rolled up since the last refresh (the minutely job, idle)
        if set(recorded) >= set(SOURCES):
            months = await _touched(q, recorded, current)
            if since is not None:
                rows = await q.fetch_all(
                    "SELECT DISTINCT month FROM rollup_site_month WHERE month >= :m "
                    "UNION SELECT DISTINCT substr(day, 1, 7) FROM rollup_site_day "
                    "WHERE day >= :d", {"m": since[:7], "d": since[:7] + "-01"})
                months.update(r["month"] for r in rows)
            done: list[str] | None = sorted(months)
            for m in sorted(months):
                p = {"a": m + "-01", "b": m + "-31", "m": m}
                for table in TABLES:
                    key = "day >= :a AND day <= :b" if table.endswith("_day") else "month = :m"
                    await q.execute(f"DELETE FROM {table} WHERE {key}", p)
                where = "day >= :a AND day <= :b"
                await q.execute(_site_month_sql(where), p)
                await q.execute(_nation_month_sql("month = :m"), p)
                await q.execute(_nation_day_sql(where), p)
                await q.execute(_dossier_month_sql(where), p)
        else:
            done = None
            for table in TABLES:
                await q.execute(f"DELETE FROM {table}")
            await q.execute(_site_month_sql("1 = 1"))
            await q.execute(_nation_month_sql("1 = 1"))
            await q.execute(_nation_day_sql("1 = 1"))
            await q.execute(_dossier_month_sql("1 = 1"))
        await q.execute("DELETE FROM rollup_month_state")
        await q.execute_many(
            "INSERT INTO rollup_month_state (name, last_id) VALUES (:n, :i)",
            [{"n": n, "i": current.get(n, 0)} for n in SOURCES])
    return done


async def invalidate_site_months(db: Database) -> None:
    """Make readers use the daily tables until the next refresh (before a rebuild, which
    rewrites daily rows below the watermarks)."""
    await db.execute("DELETE FROM rollup_month_state")
