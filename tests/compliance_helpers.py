"""Helpers for compliance tests: register sites, write rollup facts the way the rollup does."""

from __future__ import annotations

import datetime as dt

from collector.registry import make_site, save_site
from collector.store import Database

# Until the metrics branch (migration 0002) is merged, the rollup tables the compliance
# code reads are created here with the same names and columns; IF NOT EXISTS makes this a
# no-op once 0002 provides them.
_STUB = [
    """CREATE TABLE IF NOT EXISTS rollup_site_day (site_id INTEGER NOT NULL, day TEXT NOT NULL,
    visits INTEGER NOT NULL DEFAULT 0, visitors INTEGER NOT NULL DEFAULT 0,
    pageviews INTEGER NOT NULL DEFAULT 0, bounces INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0, hits INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0, outlinks INTEGER NOT NULL DEFAULT 0,
    downloads INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site_id, day))""",
    """CREATE TABLE IF NOT EXISTS rollup_dvc (site_id INTEGER NOT NULL, day TEXT NOT NULL,
    service TEXT NOT NULL, views INTEGER NOT NULL DEFAULT 0,
    submissions INTEGER NOT NULL DEFAULT 0, other_steps INTEGER NOT NULL DEFAULT 0,
    ratings INTEGER NOT NULL DEFAULT 0, rating_sum INTEGER NOT NULL DEFAULT 0,
    ratings_good INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site_id, day, service))""",
    """CREATE TABLE IF NOT EXISTS rollup_dossiers (site_id INTEGER NOT NULL, day TEXT NOT NULL,
    service TEXT NOT NULL, events INTEGER NOT NULL DEFAULT 0,
    received INTEGER NOT NULL DEFAULT 0, received_online INTEGER NOT NULL DEFAULT 0,
    received_in_person INTEGER NOT NULL DEFAULT 0, full_online INTEGER NOT NULL DEFAULT 0,
    paid_online INTEGER NOT NULL DEFAULT 0, paid_in_person INTEGER NOT NULL DEFAULT 0,
    results INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site_id, day, service))""",
]


async def ensure_rollups(db: Database) -> None:
    for sql in _STUB:
        await db.execute(sql)


async def register(db: Database, site_id: int, kind: str = "portal", agency: str = "H26",
                   required: bool = True, registered_on: str = "2024-01-01") -> None:
    await save_site(db, make_site(site_id, agency, kind, f"Site {site_id}",
                                  [f"s{site_id}.example.gov.vn"], registered_on, required))


def days(first: str, last: str, skip: tuple[str, ...] = ()) -> list[str]:
    d, e = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    out = []
    while d <= e:
        if d.isoformat() not in skip:
            out.append(d.isoformat())
        d += dt.timedelta(days=1)
    return out


async def add_days(db: Database, site_id: int, day_list: list[str], pageviews: int = 10) -> None:
    await db.execute_many(
        "INSERT INTO rollup_site_day (site_id, day, visits, pageviews, hits) "
        "VALUES (:s, :d, :v, :p, :h)",
        [{"s": site_id, "d": d, "v": 1, "p": pageviews, "h": pageviews} for d in day_list])


async def add_dvc(db: Database, site_id: int, day: str, service: str, views: int = 0,
                  submissions: int = 0) -> None:
    await db.execute(
        "INSERT INTO rollup_dvc (site_id, day, service, views, submissions) "
        "VALUES (:s, :d, :c, :v, :n)",
        {"s": site_id, "d": day, "c": service, "v": views, "n": submissions})


async def add_feed(db: Database, site_id: int, day: str, service: str, online: int) -> None:
    await db.execute(
        "INSERT INTO rollup_dossiers (site_id, day, service, events, received, received_online) "
        "VALUES (:s, :d, :c, :n, :n, :n)", {"s": site_id, "d": day, "c": service, "n": online})


async def add_dropped(db: Database, site_id: int, day: str, host: str, n: int) -> None:
    await db.execute(
        "INSERT INTO dropped (site_id, day, reason, host, n) VALUES (:s, :d, :r, :h, :n)",
        {"s": site_id, "d": day, "r": "host not registered to this site", "h": host, "n": n})
