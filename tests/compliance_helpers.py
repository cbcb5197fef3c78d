"""Helpers for compliance tests: register sites, write rollup facts the way the rollup does."""

from __future__ import annotations

import datetime as dt

from collector.registry import make_site, save_site
from collector.store import Database

# a fixed registration day before every period tests look at (the default is today)
REGISTERED_ON = "2024-01-01"


async def ensure_rollups(db: Database) -> None:
    """The rollup tables come with migration 0002 (metrics); check they are there."""
    await db.fetch_all("SELECT site_id FROM rollup_site_day LIMIT 1")


async def register(db: Database, site_id: int, kind: str = "portal", agency: str = "H26",
                   required: bool = True, registered_on: str = REGISTERED_ON) -> None:
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
