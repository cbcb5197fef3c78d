"""Reconciliation (đối soát): dossier feed vs browser ``trackDVC`` vs agency-reported totals.

For a period and per agency and service code (procedure code, CodeTTHC) three counts of
online dossiers may exist, each summed over the agency's sites:

- ``feed``: dossiers received online in the one-stop feed (``rollup_dossiers.received_online``);
- ``browser``: ``trackDVC`` submissions, state 1 (``rollup_dvc.submissions``);
- ``reported``: what the agency reports itself (``reported_totals``, monthly, by CSV
  ``giamsat reconcile import FILE.csv`` or the API), for months inside the period.

Decisions:

- Counts are paired across the sites of one agency for the same service code: the feed
  comes from the agency's one-stop (một cửa) system, posted with the one-stop site's id,
  while ``trackDVC`` comes from the pages of its DVC portal, another site id. A feed on
  site A and ``trackDVC`` on site B pair when A and B belong to the same agency (all its
  feeds and all its DVC pages are summed per service); sites of different agencies never
  pair, even for the same procedure code.
- feed vs browser is compared only when the agency has both in the period (some dossier
  event on one of its sites, some ``trackDVC`` step on one of its sites; a missing part is
  "incomplete" on the site that lacks it, not "not reconciled"); reported is compared with
  the feed where the agency has a feed, else with the browser count.
- A comparison outside the tolerance makes every site whose counts took part in it "not
  reconciled": the sites with feed / ``trackDVC`` / reported rows for that service, or,
  where a part counts 0 for it, the agency's sites that send that part at all (the one-stop
  site that never sent the dossiers the DVC pages saw is at fault too).
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
    agency_code: str
    service: str
    feed: int | None
    browser: int | None
    reported: int | None
    against: str          # 'feed-browser' | 'reported-feed' | 'reported-browser'
    a: int
    b: int
    tolerance: float
    ok: bool
    feed_sites: tuple[int, ...] = ()
    browser_sites: tuple[int, ...] = ()
    reported_sites: tuple[int, ...] = ()

    @property
    def difference(self) -> int:
        return self.a - self.b

    @property
    def sites(self) -> tuple[int, ...]:
        """Every site whose counts took part (see the module docstring)."""
        return tuple(sorted({*self.feed_sites, *self.browser_sites, *self.reported_sites}))


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


Key = tuple[str, str]  # (agency code, service code)


def _by_agency(rows: list[dict], value: str) -> tuple[dict[Key, int], dict[Key, set[int]]]:
    """Per-site rows → (sum of ``value`` per agency and service, sites per agency and
    service)."""
    total: dict[Key, int] = {}
    sites: dict[Key, set[int]] = {}
    for r in rows:
        key = (r["agency_code"], r["service"])
        total[key] = total.get(key, 0) + int(r[value] or 0)
        sites.setdefault(key, set()).add(r["site_id"])
    return total, sites


async def compare(
    db: Database, start: str, end: str, abs_tol: int, rel_tol: float,
    site_sums: dict[str, dict[int, int]] | None = None,
) -> list[Comparison]:
    """Every comparison made for the period, agreeing or not, by agency and service.
    ``site_sums``, when given, receives per registered site the period's ``trackDVC`` steps
    (``"dvc"``) and dossier events (``"feed"``) read on the way (the compliance states need
    them: one read of the year's DVC rollup instead of two)."""
    p = {"s": start, "e": end}
    feed_rows = await db.fetch_all(
        "SELECT x.agency_code, d.site_id, d.service, SUM(d.received_online) AS online, "
        "SUM(d.events) AS events FROM rollup_dossiers d JOIN sites x ON x.id = d.site_id "
        "WHERE d.day >= :s AND d.day <= :e GROUP BY x.agency_code, d.site_id, d.service", p)
    browser_rows = await db.fetch_all(
        "SELECT x.agency_code, d.site_id, d.service, SUM(d.submissions) AS subs, "
        "SUM(d.views + d.submissions + d.other_steps) AS steps FROM rollup_dvc d "
        "JOIN sites x ON x.id = d.site_id WHERE d.day >= :s AND d.day <= :e "
        "GROUP BY x.agency_code, d.site_id, d.service", p)
    months = months_in(start, end)
    reported_rows: list[dict] = []
    if months:
        marks = ", ".join(f":m{i}" for i in range(len(months)))
        reported_rows = await db.fetch_all(
            "SELECT x.agency_code, r.site_id, r.service, SUM(r.count) AS n "
            "FROM reported_totals r JOIN sites x ON x.id = r.site_id "
            f"WHERE r.period IN ({marks}) GROUP BY x.agency_code, r.site_id, r.service",
            {f"m{i}": m for i, m in enumerate(months)})
    if site_sums is not None:
        for name, rows, col in (("dvc", browser_rows, "steps"), ("feed", feed_rows, "events")):
            sums = site_sums.setdefault(name, {})
            for r in rows:
                sums[r["site_id"]] = sums.get(r["site_id"], 0) + int(r[col] or 0)
    feed, feed_at = _by_agency(feed_rows, "online")
    browser, browser_at = _by_agency(browser_rows, "subs")
    reported, reported_at = _by_agency(reported_rows, "n")
    # the agencies that send a part at all in the period, and from which sites
    feeding: dict[str, set[int]] = {}
    for r in feed_rows:
        if r["events"]:
            feeding.setdefault(r["agency_code"], set()).add(r["site_id"])
    tracking: dict[str, set[int]] = {}
    for r in browser_rows:
        if r["steps"]:
            tracking.setdefault(r["agency_code"], set()).add(r["site_id"])
    out: list[Comparison] = []
    for key in sorted(set(feed) | set(browser) | set(reported)):
        agency, service = key
        f = feed.get(key, 0) if agency in feeding else None
        b = browser.get(key, 0) if agency in tracking else None
        rep = reported.get(key)
        fs = tuple(sorted(feed_at.get(key) or feeding.get(agency, ()))) if f is not None else ()
        bs = tuple(sorted(browser_at.get(key) or tracking.get(agency, ()))) \
            if b is not None else ()
        rs = tuple(sorted(reported_at.get(key, ())))
        pairs = []
        if f is not None and b is not None and (f or b):
            pairs.append(("feed-browser", f, b, fs, bs, ()))
        if rep is not None and f is not None:
            pairs.append(("reported-feed", rep, f, fs, (), rs))
        elif rep is not None and b is not None:
            pairs.append(("reported-browser", rep, b, (), bs, rs))
        for against, a, c, s1, s2, s3 in pairs:
            ok, tol = within(int(a), int(c), abs_tol, rel_tol)
            out.append(Comparison(agency, service, f, b, rep, against, int(a), int(c), tol, ok,
                                  s1, s2, s3))
    return out
