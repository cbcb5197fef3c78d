"""Reconciliation (đối soát): dossier feed vs browser ``trackDVC`` vs agency-reported totals.

For a period and per site and service code (procedure code, CodeTTHC) three counts of
online dossiers may exist:

- ``feed``: dossiers received online in the one-stop feed (``rollup_dossiers.received_online``);
- ``browser``: ``trackDVC`` submissions, state 1 (``rollup_dvc.submissions``);
- ``reported``: what the agency reports itself (``reported_totals``, monthly, by CSV
  ``giamsat reconcile import FILE.csv`` or the API), for months inside the period.

Decisions:

- Counts are paired on the same site id: a one-stop system is expected to post its feed
  with the site id of the DVC system whose pages send ``trackDVC``. A feed on one site and
  ``trackDVC`` on another site of the same agency are not paired (reported totals still are).
- feed vs browser is compared only when the site has both in the period (a missing part is
  "incomplete", not "not reconciled"); reported is compared with the feed where the site
  has a feed, else with the browser count.
- Tolerance: two counts agree when ``|a − b| ≤ max(abs_tol, rel_tol × max(a, b))``
  (defaults 2 and 5 %, ``GIAMSAT_RECONCILE_ABS`` / ``GIAMSAT_RECONCILE_REL``); exactly at the
  tolerance agrees.

Reported-totals CSV: header ``site,service,period,count`` (``site_id``/``service_code``
accepted), period ``YYYY-MM`` (2000-01 to 2100-12), count a whole number ≥ 0 (ASCII digits,
at most 10⁹); re-importing a row replaces it. A line the csv module cannot read (a field
over the module's size limit) is reported as an error and ends the import; rows before it
are kept. A NUL is refused by the field that holds it.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from collector.store import Database

SERVICE = re.compile(r"^[\w.\-/]{1,64}$")
# ASCII digits only: str.isdigit() and int() also take '٢٠٢٦', '２' and '²'
SITE = re.compile(r"[0-9]{1,9}")
PERIOD = re.compile(r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$")
COUNT = re.compile(r"[0-9]{1,10}")
MAX_COUNT = 10**9


class ReportedError(ValueError):
    """A reported-total row is invalid; the message names the field."""


@dataclass
class ImportReport:
    saved: int
    errors: list[tuple[int, str]]


@dataclass
class Comparison:
    site_id: int
    service: str
    feed: int | None
    browser: int | None
    reported: int | None
    against: str          # 'feed-browser' | 'reported-feed' | 'reported-browser'
    a: int
    b: int
    tolerance: float
    ok: bool

    @property
    def difference(self) -> int:
        return self.a - self.b


def within(a: int, b: int, abs_tol: int, rel_tol: float) -> tuple[bool, float]:
    tol = max(float(abs_tol), rel_tol * max(a, b))
    return abs(a - b) <= tol + 1e-9, tol


def validate_row(row: Mapping[str, object], registered: set[int]) -> dict[str, object]:
    site = str(row.get("site") if row.get("site") is not None else row.get("site_id", "")).strip()
    service = str(row.get("service") or row.get("service_code") or "").strip()
    period = str(row.get("period") or "").strip()
    count = str(row.get("count") if row.get("count") is not None else "").strip()
    if not SITE.fullmatch(site) or int(site) not in registered:
        raise ReportedError(f"site: not a registered site id: {site[:20]!r}")
    if not SERVICE.match(service):
        raise ReportedError(f"service: expected a procedure code, got {service[:70]!r}")
    if not PERIOD.match(period):
        raise ReportedError(f"period: expected YYYY-MM (2000-01 to 2100-12), got {period[:20]!r}")
    if not COUNT.fullmatch(count) or int(count) > MAX_COUNT:
        raise ReportedError(f"count: expected a whole number >= 0, got {count[:20]!r}")
    return {"site_id": int(site), "service": service, "period": period, "count": int(count)}


async def _registered(db: Database) -> set[int]:
    return {r["id"] for r in await db.fetch_all("SELECT id FROM sites")}


async def save_reported(db: Database, rows: Iterable[dict[str, object]], source: str) -> int:
    now = int(time.time() * 1000)
    batch = [{**r, "source": source[:100], "ts": now} for r in rows]
    if batch:
        await db.execute_many(
            "INSERT INTO reported_totals (site_id, service, period, count, source, uploaded_ts) "
            "VALUES (:site_id, :service, :period, :count, :source, :ts) "
            "ON CONFLICT (site_id, service, period) DO UPDATE SET count = excluded.count, "
            "source = excluded.source, uploaded_ts = excluded.uploaded_ts", batch)
    return len(batch)


async def import_reported(
    db: Database, text: str, source: str, allowed_sites: set[int] | None = None,
) -> ImportReport:
    """Import a CSV; bad rows are reported with their line and good rows kept.
    ``allowed_sites`` limits the sites (an agency token may only report its own)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if not ({"site", "site_id"} & fields and {"service", "service_code"} & fields
            and {"period", "count"} <= fields):
        return ImportReport(0, [(1, "header: expected site,service,period,count")])
    registered = await _registered(db)
    if allowed_sites is not None:
        registered &= allowed_sites
    good, errors = [], []
    try:
        for row in reader:
            row = {(k or "").strip().lower(): v for k, v in row.items()}
            try:
                good.append(validate_row(row, registered))
            except ReportedError as e:
                errors.append((reader.line_num, str(e)))
    except csv.Error as e:  # a field over the csv module's size limit: stop there
        errors.append((reader.line_num, f"csv: {e}; rows after it not read"))
    return ImportReport(await save_reported(db, good, source), errors)


def months_in(start: str, end: str) -> list[str]:
    """The calendar months wholly inside [start, end] (days 'YYYY-MM-DD')."""
    import datetime as dt

    s, e = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    out = []
    y, m = s.year, s.month
    while (y, m) <= (e.year, e.month):
        first = dt.date(y, m, 1)
        last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1))
        if first >= s and last <= e:
            out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


async def compare(
    db: Database, start: str, end: str, abs_tol: int, rel_tol: float,
) -> list[Comparison]:
    """Every comparison made for the period, agreeing or not, by site and service."""
    p = {"s": start, "e": end}
    feed = {(r["site_id"], r["service"]): (r["online"], r["events"]) for r in await db.fetch_all(
        "SELECT site_id, service, SUM(received_online) AS online, SUM(events) AS events "
        "FROM rollup_dossiers WHERE day >= :s AND day <= :e GROUP BY site_id, service", p)}
    browser = {(r["site_id"], r["service"]): (r["subs"], r["steps"]) for r in await db.fetch_all(
        "SELECT site_id, service, SUM(submissions) AS subs, "
        "SUM(views + submissions + other_steps) AS steps "
        "FROM rollup_dvc WHERE day >= :s AND day <= :e GROUP BY site_id, service", p)}
    months = months_in(start, end)
    reported: dict[tuple[int, str], int] = {}
    if months:
        marks = ", ".join(f":m{i}" for i in range(len(months)))
        for r in await db.fetch_all(
            "SELECT site_id, service, SUM(count) AS n FROM reported_totals "
            f"WHERE period IN ({marks}) GROUP BY site_id, service",
            {f"m{i}": m for i, m in enumerate(months)},
        ):
            reported[(r["site_id"], r["service"])] = r["n"]
    feed_sites = {k[0] for k, v in feed.items() if v[1]}
    dvc_sites = {k[0] for k, v in browser.items() if v[1]}
    out: list[Comparison] = []
    for key in sorted(set(feed) | set(browser) | set(reported)):
        site, service = key
        f = feed.get(key, (0, 0))[0] if site in feed_sites else None
        b = browser.get(key, (0, 0))[0] if site in dvc_sites else None
        rep = reported.get(key)
        pairs = []
        if f is not None and b is not None and (f or b):
            pairs.append(("feed-browser", f, b))
        if rep is not None and f is not None:
            pairs.append(("reported-feed", rep, f))
        elif rep is not None and b is not None:
            pairs.append(("reported-browser", rep, b))
        for against, a, c in pairs:
            ok, tol = within(int(a), int(c), abs_tol, rel_tol)
            out.append(Comparison(site, service, f, b, rep, against, int(a), int(c), tol, ok))
    return out
