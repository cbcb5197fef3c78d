"""Compliance states per registered site and period, with evidence and what to fix.

``compute(db, config, start, end)`` is the one function that decides, from stored facts
only: daily rollups (``rollup_site_day``, ``rollup_dvc``, ``rollup_dossiers``), refused
hits (``dropped``), install scans (``scans``) and reported totals — never raw hits. The
"last hit" is the last rolled-up day with hits.

States, most severe first (letter 5901/BTTTT-CĐSQG):

``not_connected`` (chưa kết nối)
    no valid hit ever up to the period's end; or the latest scan read the home page and
    found no snippet, and no valid hit arrived in the period.
``incomplete`` (kết nối chưa đầy đủ)
    the latest scan found the snippet broken on the home page or a sampled page
    (commented out, ``setSiteId`` empty / wrong / missing, ``http://`` or foreign tracker
    URL, no ``setTrackerUrl``, no loader), or missing on sampled pages, or absent from the
    home page while hits still arrive; a DVC site with page views but no ``trackDVC`` in the
    period; a one-stop site with no dossier feed in the period; at least
    ``GIAMSAT_FOREIGN_HOST_MIN`` hits refused because they came from hostnames not
    registered to the site (the code copied onto another site), or the site's own host
    sending hits with another site's id.
``interrupted`` (gián đoạn)
    connected (a hit before the period, or a first hit ever inside it), but a run of
    ``GIAMSAT_GAP_DAYS`` or more consecutive days without hits (exactly the threshold
    counts) that lies in the period or runs into it:

    - only days that are over count: the current day (local, UTC+7) is not counted until
      it is over, its hits may still come;
    - days before the site's first hit ever are not a gap (a site first heard of on the
      10th is searched from the 10th);
    - a run that began before the period counts in full when it runs into the period
      (the site connected before the period has no hit on the period's first day): it
      starts the day after the last hit before the period. So a 3-day outage from
      31 January to 2 February is a 3-day gap of February (and a 1-day trailing gap of
      January), and a site silent since 31 December 2025 is, on 1 December 2026,
      "gián đoạn 334 ngày" (1 January – 30 November). In particular a site connected
      before the period and silent since is interrupted on the period's first day already,
      as soon as the run of days over reaches the threshold; before that (the last hit
      the day before yesterday: one day over) it is not yet;
    - a run that ended before the period (a hit on the period's first day) belongs to the
      earlier period; a period that has not begun has no gap.

    The evidence is the longest such run (``gap_days``, its first and last day — the first
    may lie before the period); ``counts["days_without_hits"]`` counts the period's own
    days over without hits.
``not_reconciled`` (chưa đối soát)
    a comparison of :mod:`collector.reconcile` is outside the tolerance; comparisons pair
    the counts of an agency's sites per service code (the one-stop feed and the DVC
    portal's ``trackDVC`` come with different site ids), and every site taking part gets
    the finding.
``compliant``.

Precedence (decision): every finding is reported; the state is that of the most severe
finding. Warnings (home page unreachable at the last scan, no badge, HTTPS not enforced)
are shown but do not change the state. Sites registered after the period are not
evaluated; optional sites (``required = 0``) get a state but do not count for agencies.
An agency is compliant only if all its required sites are; its state is the most severe
of theirs.

Long periods: the days with hits of the closed calendar months inside a period of two
months or more are read from per-site month summaries (``compliance_site_months``: days,
first and last day, sums, longest run without hits), kept fresh by the server after its
rollups (:func:`refresh_month_summaries`: the last 13 closed months, recomputed once a
day old), and otherwise written when first needed or when a closed month is computed
whole; runs across month boundaries are joined from them, and the partial months at
either end come from the daily rollup. ``compute(..., summaries=False)`` reads the daily
rollup only (tests compare them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collector.config import Config
from collector.reconcile import Comparison, compare, months_in
from collector.store import Database
from collector.tracking import local_day

STATES = ("not_connected", "incomplete", "interrupted", "not_reconciled", "compliant")
STATE_NAMES = {
    "not_connected": ("Chưa kết nối", "Not connected"),
    "incomplete": ("Kết nối chưa đầy đủ", "Incomplete"),
    "interrupted": ("Gián đoạn", "Interrupted"),
    "not_reconciled": ("Chưa đối soát", "Not reconciled"),
    "compliant": ("Đạt", "Compliant"),
}
HOST_REASON = "host not registered to this site"
DAY = dt.timedelta(days=1)

# code → (state it implies, or None for a warning; Vietnamese; English)
MESSAGES: dict[str, tuple[str | None, str, str]] = {
    "never_hit": ("not_connected",
                  "chưa nhận được dữ liệu nào từ mã giám sát (chưa kết nối)",
                  "no valid hit ever received"),
    "snippet_absent": ("not_connected", "không tìm thấy mã giám sát trên trang chủ",
                       "no monitoring code on the home page"),
    "snippet_absent_with_hits": (
        "incomplete", "không tìm thấy mã giám sát trên trang chủ (chỉ có ở trang khác)",
        "no monitoring code on the home page (hits come from other pages)"),
    "snippet_commented": ("incomplete", "mã giám sát bị chú thích (comment) trên {pages}",
                          "the monitoring code is commented out on {pages_en}"),
    "site_id_empty": ("incomplete", "setSiteId rỗng", "setSiteId is empty"),
    "site_id_wrong": ("incomplete", "setSiteId sai: '{found}' thay vì '{site_id}'",
                      "setSiteId is wrong: '{found}' instead of '{site_id}'"),
    "site_id_missing": ("incomplete", "thiếu lệnh setSiteId", "setSiteId is missing"),
    "tracker_http": ("incomplete", "trackerUrl dùng http (phải là https)",
                     "trackerUrl uses http (must be https)"),
    "tracker_not_ours": ("incomplete", "trackerUrl trỏ sai máy chủ: {tracker}",
                         "trackerUrl points at the wrong server: {tracker}"),
    "tracker_missing": ("incomplete", "thiếu lệnh setTrackerUrl", "setTrackerUrl is missing"),
    "loader_missing": ("incomplete", "thiếu thẻ nạp gov-tracking.min.js",
                       "the gov-tracking.min.js loader is not referenced"),
    "snippet_missing_on_pages": ("incomplete",
                                 "thiếu mã giám sát trên {missing}/{sampled} trang con đã kiểm tra",
                                 "monitoring code missing on {missing} of {sampled} sampled pages"),
    "dvc_no_trackdvc": ("incomplete",
                        "hệ thống DVC có lượt xem trang nhưng không gửi trackDVC",
                        "DVC system has page views but sends no trackDVC"),
    "onestop_no_feed": ("incomplete", "hệ thống một cửa không gửi dữ liệu hồ sơ (TrackingMCDT)",
                        "one-stop system sends no dossier feed (TrackingMCDT)"),
    "foreign_hosts": ("incomplete",
                      "{n} lượt gửi từ tên miền chưa đăng ký cho trang này: {hosts}",
                      "{n} hits from hostnames not registered to this site: {hosts}"),
    "code_of_other_site": ("incomplete",
                           "trang này đang gắn mã của trang khác (site {others}): {n} lượt",
                           "this site's pages carry another site's code (site {others}): {n} hits"),
    "interrupted": ("interrupted",
                    "gián đoạn {gap} ngày liên tiếp không có dữ liệu (từ {gap_from} đến {gap_to})",
                    "no hits for {gap} consecutive days ({gap_from} to {gap_to})"),
    "not_reconciled": ("not_reconciled",
                       "số liệu lệch quá ngưỡng ở {n} thủ tục (vd. {service}: {a} so với {b})",
                       "counts differ beyond tolerance for {n} procedure(s) "
                       "(e.g. {service}: {a} vs {b})"),
    "home_unreachable": (None, "lần quét gần nhất không mở được trang chủ ({status})",
                         "the last scan could not read the home page ({status})"),
    "tracker_host_unknown": (None, "chưa kiểm tra được máy chủ của trackerUrl ({tracker}): "
                             "hệ thống chưa cấu hình GIAMSAT_PUBLIC_URL / GIAMSAT_PUBLIC_HOSTS",
                             "could not check the trackerUrl host ({tracker}): neither "
                             "GIAMSAT_PUBLIC_URL nor GIAMSAT_PUBLIC_HOSTS is configured"),
    "badge_missing": (None, "chưa hiển thị biểu tượng \"Đã kết nối EMC\"",
                      "the \"EMC connected\" badge is not shown"),
    "https_not_enforced": (None, "trang chủ chưa bắt buộc HTTPS",
                           "the home page does not enforce HTTPS"),
}
SCAN_CODES = ("snippet_commented", "site_id_empty", "site_id_wrong", "site_id_missing",
              "tracker_http", "tracker_not_ours", "tracker_missing", "loader_missing",
              "snippet_missing_on_pages", "tracker_host_unknown", "badge_missing",
              "https_not_enforced")


@dataclass
class Finding:
    code: str
    state: str | None
    message_vi: str
    message_en: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return "warning" if self.state is None else "violation"


def finding(code: str, **evidence: Any) -> Finding:
    state, vi, en = MESSAGES[code]
    return Finding(code, state, vi.format(**evidence), en.format(**evidence), evidence)


@dataclass
class SiteState:
    site_id: int
    name: str
    kind: str
    agency_code: str
    agency_name: str
    agency_kind: str
    required: bool
    state: str
    findings: list[Finding]
    last_hit_day: str | None
    hit_days: int
    gap_days: int
    scan: dict[str, Any] | None
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id, "name": self.name, "kind": self.kind,
            "agency_code": self.agency_code, "agency_name": self.agency_name,
            "agency_kind": self.agency_kind, "required": self.required, "state": self.state,
            "last_hit_day": self.last_hit_day, "hit_days": self.hit_days,
            "gap_days": self.gap_days, "counts": self.counts,
            "scan": self.scan,
            "findings": [{"code": f.code, "state": f.state, "message_vi": f.message_vi,
                          "message_en": f.message_en} for f in self.findings],
        }


@dataclass
class AgencyState:
    code: str
    name: str
    kind: str
    state: str
    sites: int
    compliant: int


@dataclass
class Result:
    start: str
    end: str
    sites: list[SiteState]
    agencies: list[AgencyState]
    comparisons: list[Comparison]

    def counts(self, required_only: bool = True) -> dict[str, int]:
        c = Counter(s.state for s in self.sites if s.required or not required_only)
        return {st: c.get(st, 0) for st in STATES}


_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")  # ASCII digits: int() reads '２' too
MONTH_MIN, MONTH_MAX = "2000-01", "2100-12"


def parse_month(text: str) -> str:
    """A ``YYYY-MM`` month from user input (query string, CLI), or ValueError naming it:
    ASCII digits only (``int()`` and ``str.isdigit()`` accept '２０２６' and '٢٠٢٦'), months
    01–12, years 2000–2100 (no date arithmetic near year 1 or 9999)."""
    if not _MONTH.fullmatch(text) or not MONTH_MIN <= text <= MONTH_MAX:
        raise ValueError(f"month invalid: expected YYYY-MM from {MONTH_MIN} to {MONTH_MAX}")
    return text


def month_period(month: str) -> tuple[str, str]:
    first = dt.date.fromisoformat(month + "-01")
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first.isoformat(), (nxt - DAY).isoformat()


def _end_ms(end: str) -> int:
    """The last millisecond of local day ``end`` (UTC+7) as epoch ms."""
    d = dt.date.fromisoformat(end) + DAY
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() * 1000) \
        - 7 * 3600 * 1000 - 1


def longest_gap(days: list[str], wstart: str, wend: str) -> tuple[int, str, str, int]:
    """(longest run of days without hits in [wstart, wend], its first day, last day, total
    days without hits); ``days`` are the sorted days with hits."""
    s, e = dt.date.fromisoformat(wstart), dt.date.fromisoformat(wend)
    if e < s:
        return 0, "", "", 0
    best, bfrom, bto, total = 0, "", "", 0
    prev = s - DAY
    for d in [dt.date.fromisoformat(x) for x in days if wstart <= x <= wend] + [e + DAY]:
        gap = (d - prev).days - 1
        if gap > 0:
            total += gap
            if gap > best:
                best, bfrom, bto = gap, (prev + DAY).isoformat(), (d - DAY).isoformat()
        prev = d
    return best, bfrom, bto, total


def _window_start(start: str, today: str, last_before: str | None,
                  first_in: str | None) -> str:
    """The first day of the window searched for gaps (see the module docstring).

    ``last_before`` is the site's last day with hits before the period, ``first_in`` its
    first day with hits in the period. A site connected before the period whose silence
    runs into the period (no hit on the period's first day, and that day has begun) has
    that whole run counted, from the day after ``last_before``; a site first heard in the
    period is searched from its first hit; otherwise from the period's start."""
    if last_before is None:
        return first_in if first_in is not None and first_in > start else start
    if today >= start and (first_in is None or first_in > start):
        return (dt.date.fromisoformat(last_before) + DAY).isoformat()
    return start


async def _in_chunks(db: Database, sql: str, ids: list[int], params: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ", ".join(f":i{j}" for j in range(len(chunk)))
        rows += await db.fetch_all(sql.replace(":ids", marks),
                                   {**params, **{f"i{j}": v for j, v in enumerate(chunk)}})
    return rows


async def _latest_scans(db: Database, end_ms: int) -> dict[int, dict[str, Any]]:
    """Each site's last scan at or before ``end_ms``: one index seek per site, so a long
    scan history costs nothing."""
    rows = await db.fetch_all(
        "SELECT s.site_id, s.ts, s.base_url, s.home_status, s.https_enforced, s.snippet, "
        "s.site_id_found, s.site_id_state, s.tracker_url, s.loader, s.badge, s.pages, "
        "s.pages_ok, s.pages_snippet, s.findings FROM sites x JOIN scans s "
        "ON s.site_id = x.id AND s.ts = (SELECT y.ts FROM scans y WHERE y.site_id = x.id "
        "AND y.ts <= :t ORDER BY y.ts DESC LIMIT 1)", {"t": end_ms})
    out = {}
    for r in rows:
        r["findings"] = json.loads(r["findings"] or "[]")
        out[r["site_id"]] = r
    commented = [sid for sid, r in out.items() if "snippet_commented" in r["findings"]]
    for r in await _in_chunks(
        db, "SELECT site_id, ts, n FROM scan_pages WHERE snippet = 'commented' "
            "AND site_id IN (:ids)", commented, {}):
        if out[r["site_id"]]["ts"] == r["ts"]:
            out[r["site_id"]].setdefault("commented_pages", []).append(r["n"])
    return out


def _scan_findings(site_id: int, scan: dict[str, Any], hits_in_period: int) -> list[Finding]:
    out: list[Finding] = []
    codes = scan["findings"]
    if "home_unreachable" in codes:
        out.append(finding("home_unreachable", status=scan["home_status"]))
    if "snippet_absent" in codes:
        out.append(finding("snippet_absent_with_hits" if hits_in_period else "snippet_absent"))
    for code in SCAN_CODES:
        if code not in codes:
            continue
        if code == "snippet_commented":
            pages = scan.get("commented_pages", [])
            home = 0 in pages
            out.append(finding(
                code, pages="trang chủ" if home else f"{len(pages)} trang con",
                pages_en="the home page" if home else f"{len(pages)} sampled page(s)"))
        elif code == "site_id_wrong":
            out.append(finding(code, found=scan["site_id_found"], site_id=site_id))
        elif code in ("tracker_not_ours", "tracker_host_unknown"):
            out.append(finding(code, tracker=scan["tracker_url"]))
        elif code == "snippet_missing_on_pages":
            sampled = max(0, scan["pages_ok"] - 1)
            missing = max(0, scan["pages_ok"] - scan["pages_snippet"])
            out.append(finding(code, missing=missing, sampled=sampled))
        else:
            out.append(finding(code))
    return out


@dataclass
class DayFacts:
    """A site's days with hits over a stretch of days: all of them (``days``, ``first``,
    ``last``, sums), those up to the last day over (``w*``: the gap window's end), and the
    longest run without hits strictly between ``wfirst`` and ``wlast`` (earliest on a tie)."""
    days: int
    first: str
    last: str
    wdays: int
    wfirst: str | None
    wlast: str | None
    pageviews: int
    hits: int
    gap: int = 0
    gap_from: str = ""
    gap_to: str = ""


async def _piece_facts(db: Database, a: str, b: str, w: str) -> dict[int, DayFacts]:
    """Facts of every site over days [a, b], the gap window ending on ``w``: one aggregate,
    then the days of only those sites with a hole between their first and last window day."""
    if w >= b:  # every day is in the window: no CASE per row (3 M rows over a year)
        out = {r[0]: DayFacts(int(r[1]), r[2], r[3], int(r[1]), r[2], r[3], int(r[4] or 0),
                              int(r[5] or 0)) for r in await db.fetch_rows(
            "SELECT site_id, COUNT(*), MIN(day), MAX(day), SUM(pageviews), SUM(hits) "
            "FROM rollup_site_day WHERE day >= :a AND day <= :b AND hits > 0 "
            "GROUP BY site_id", {"a": a, "b": b})}
    else:
        out = {r[0]: DayFacts(int(r[1]), r[2], r[3], int(r[4] or 0), r[5], r[6],
                              int(r[7] or 0), int(r[8] or 0)) for r in await db.fetch_rows(
            "SELECT site_id, COUNT(*), MIN(day), MAX(day), "
            "SUM(CASE WHEN day <= :w THEN 1 ELSE 0 END), "
            "MIN(CASE WHEN day <= :w THEN day END), MAX(CASE WHEN day <= :w THEN day END), "
            "SUM(pageviews), SUM(hits) FROM rollup_site_day "
            "WHERE day >= :a AND day <= :b AND hits > 0 GROUP BY site_id",
            {"a": a, "b": b, "w": w})}
    await _fill_gaps(db, {sid: f for sid, f in out.items() if _holed(f)}, a, min(w, b))
    return out


def _holed(f: DayFacts) -> bool:
    """Days without hits between the first and last window day with hits?"""
    return bool(f.wdays and f.wfirst and f.wlast and f.wdays < (
        dt.date.fromisoformat(f.wlast) - dt.date.fromisoformat(f.wfirst)).days + 1)


async def _fill_gaps(db: Database, holed: dict[int, DayFacts], a: str, w: str) -> None:
    """Set the longest inner run without hits of each of ``holed``'s facts from its days
    in [a, w]."""
    days: dict[int, list[str]] = {}
    for r in await _in_chunks(
        db, "SELECT site_id, day FROM rollup_site_day WHERE day >= :a AND day <= :w "
            "AND hits > 0 AND site_id IN (:ids) ORDER BY site_id, day", list(holed),
            {"a": a, "w": w}):
        days.setdefault(r["site_id"], []).append(r["day"])
    for sid, ds in days.items():
        f = holed[sid]
        f.gap, f.gap_from, f.gap_to, _ = longest_gap(ds, f.wfirst or a, f.wlast or w)


SUMMARY_MAX_AGE_MS = 86_400_000


async def ensure_month_summaries(db: Database, months: list[str]) -> None:
    """Closed months' facts in ``compliance_site_months``, computed and stored where missing
    or older than a day (late hits of a closed month are seen by the next day)."""
    now = int(time.time() * 1000)
    fresh = {r["month"] for r in await db.fetch_all(
        "SELECT month, computed_ts FROM compliance_summary_months")
        if now - int(r["computed_ts"]) < SUMMARY_MAX_AGE_MS}
    stale = [m for m in months if m not in fresh]
    if not stale:
        return
    # every stale month from one grouped read of the daily rollup
    a, b = month_period(stale[0])[0], month_period(stale[-1])[1]
    facts: dict[str, dict[int, DayFacts]] = {m: {} for m in stale}
    for sid, m, d, first, last, pv, h in await db.fetch_rows(
            "SELECT site_id, substr(day, 1, 7) AS month, COUNT(*), MIN(day), MAX(day), "
            "SUM(pageviews), SUM(hits) FROM rollup_site_day WHERE day >= :a AND day <= :b "
            "AND hits > 0 GROUP BY site_id, substr(day, 1, 7)", {"a": a, "b": b}):
        if m in facts:
            d = int(d)
            facts[m][sid] = DayFacts(d, first, last, d, first, last, int(pv or 0), int(h or 0))
    for m in stale:  # a site holed in several months is read once per month: rare
        first, last = month_period(m)
        await _fill_gaps(db, {sid: f for sid, f in facts[m].items() if _holed(f)}, first, last)
    for m in stale:
        await _store_month(db, m, facts[m], now)


def months_back(month: str, count: int) -> list[str]:
    """The ``count`` calendar months ending with ``month`` ('YYYY-MM'), oldest first."""
    y, m = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def closed_months(today: str, count: int = 13) -> list[str]:
    """The ``count`` calendar months before the month of ``today``, oldest first."""
    return months_back(today[:7], count + 1)[:-1]


async def refresh_month_summaries(db: Database, today: str) -> None:
    """Keep the summaries of the last 13 closed months fresh, off the read path: the
    server runs this after each rollup (one small read when they are fresh, the daily
    recomputation otherwise), so a report of a long period only reads them."""
    await ensure_month_summaries(db, closed_months(today))


async def _store_month(db: Database, month: str, facts: dict[int, DayFacts], now: int) -> None:
    async with db.transaction() as tx:
        # collectors sharing one PostgreSQL may store the same month at once: one at a time
        await tx.advisory_lock(f"compliance_site_months {month}")
        await tx.execute("DELETE FROM compliance_site_months WHERE month = :m", {"m": month})
        if facts:
            await tx.execute_many(
                "INSERT INTO compliance_site_months (month, site_id, days, first_day, "
                "last_day, pageviews, hits, gap, gap_from, gap_to) VALUES (:m, :s, :d, :f, "
                ":l, :p, :h, :g, :gf, :gt)",
                [{"m": month, "s": sid, "d": f.days, "f": f.first, "l": f.last,
                  "p": f.pageviews, "h": f.hits, "g": f.gap, "gf": f.gap_from, "gt": f.gap_to}
                 for sid, f in facts.items()])
        await tx.execute(
            "INSERT INTO compliance_summary_months (month, computed_ts) VALUES (:m, :t) "
            "ON CONFLICT (month) DO UPDATE SET computed_ts = excluded.computed_ts",
            {"m": month, "t": now})


async def _months_facts(db: Database, months: list[str]) -> dict[int, DayFacts]:
    """The stored summaries of consecutive closed ``months`` as one stretch per site: sums
    in SQL; the month rows are read (and folded, for runs across month boundaries) only for
    sites with days without hits between their first and last day."""
    await ensure_month_summaries(db, months)
    marks = ", ".join(f":m{i}" for i in range(len(months)))
    p = {f"m{i}": m for i, m in enumerate(months)}
    out: dict[int, DayFacts] = {}
    holed: list[int] = []
    for sid, d, first, last, pv, h in await db.fetch_rows(
            "SELECT site_id, SUM(days), MIN(first_day), MAX(last_day), SUM(pageviews), "
            f"SUM(hits) FROM compliance_site_months WHERE month IN ({marks}) GROUP BY site_id",
            p):
        d = int(d)
        out[sid] = DayFacts(d, first, last, d, first, last, int(pv), int(h))
        if d < (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1:
            holed.append(sid)
    o: DayFacts | None = None
    cur = None
    last_day = ""
    for r in await _in_chunks(
            db, "SELECT site_id, first_day, last_day, gap, gap_from, gap_to "
                f"FROM compliance_site_months WHERE month IN ({marks}) AND site_id IN (:ids) "
                "ORDER BY site_id, month", holed, p):
        if r["site_id"] != cur:
            cur = r["site_id"]
            o = out[cur]
        else:
            assert o is not None
            run = (dt.date.fromisoformat(r["first_day"])
                   - dt.date.fromisoformat(last_day)).days - 1
            if run > o.gap:
                o.gap, o.gap_from, o.gap_to = run, _next_day(last_day), _prev_day(r["first_day"])
        if r["gap"] > o.gap:
            o.gap, o.gap_from, o.gap_to = int(r["gap"]), r["gap_from"], r["gap_to"]
        last_day = r["last_day"]
    return out


def _join(pieces: list[dict[int, DayFacts]]) -> dict[int, DayFacts]:
    """Facts of consecutive pieces (in day order) as one: sums, ends, and the longest run
    without hits among the pieces' own and those across their boundaries."""
    out: dict[int, DayFacts] = {}
    for piece in pieces:
        for sid, f in piece.items():
            o = out.get(sid)
            if o is None:
                out[sid] = DayFacts(**vars(f))
                continue
            if f.wdays and o.wdays and o.wlast and f.wfirst:
                run = (dt.date.fromisoformat(f.wfirst) - dt.date.fromisoformat(o.wlast)).days - 1
                if run > o.gap:
                    o.gap, o.gap_from, o.gap_to = run, _next_day(o.wlast), _prev_day(f.wfirst)
            if f.gap > o.gap:
                o.gap, o.gap_from, o.gap_to = f.gap, f.gap_from, f.gap_to
            o.days += f.days
            o.last = f.last
            o.pageviews += f.pageviews
            o.hits += f.hits
            if f.wdays:
                o.wdays += f.wdays
                o.wfirst = o.wfirst or f.wfirst
                o.wlast = f.wlast
    return out


def _next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + DAY).isoformat()


def _prev_day(day: str) -> str:
    return (dt.date.fromisoformat(day) - DAY).isoformat()


async def period_facts(db: Database, start: str, end: str, wend: str, today: str,
                       summaries: bool = True) -> dict[int, DayFacts]:
    """Facts of every site over [start, end]: the closed calendar months inside it from
    their stored summaries (when there are two or more), the rest from the daily rollup.
    The closed months must be consecutive: they are, being every whole month of one
    stretch of days that ended before today."""
    months = [m for m in months_in(start, end) if month_period(m)[1] < today]
    if not summaries or len(months) < 2:
        facts = await _piece_facts(db, start, end, wend)
        if summaries and months and month_period(months[0]) == (start, end):
            # a closed month computed whole (the /compliance history does every month):
            # its facts are its summary, stored if stale, so a year later reads them
            now = int(time.time() * 1000)
            mark = await db.fetch_one("SELECT computed_ts FROM compliance_summary_months "
                                      "WHERE month = :m", {"m": months[0]})
            if mark is None or now - int(mark["computed_ts"]) >= SUMMARY_MAX_AGE_MS:
                await _store_month(db, months[0], facts, now)
        return facts
    pieces: list[dict[int, DayFacts]] = []
    lo = month_period(months[0])[0]
    if start < lo:
        pieces.append(await _piece_facts(db, start, _prev_day(lo), wend))
    pieces.append(await _months_facts(db, months))
    hi = month_period(months[-1])[1]
    if hi < end:
        pieces.append(await _piece_facts(db, _next_day(hi), end, wend))
    return _join(pieces)


def _gap(f: DayFacts | None, wstart: str, wend: str) -> tuple[int, str, str]:
    """The longest run without hits in [wstart, wend]: before the first window day with
    hits, inside (``f.gap``), or after the last; the earliest on a tie."""
    if wend < wstart:
        return 0, "", ""
    if f is None or not f.wdays or not f.wfirst or not f.wlast:
        return (dt.date.fromisoformat(wend) - dt.date.fromisoformat(wstart)).days + 1, \
            wstart, wend
    best, bfrom, bto = 0, "", ""
    lead = (dt.date.fromisoformat(f.wfirst) - dt.date.fromisoformat(wstart)).days
    if lead > best:
        best, bfrom, bto = lead, wstart, _prev_day(f.wfirst)
    if f.gap > best:
        best, bfrom, bto = f.gap, f.gap_from, f.gap_to
    trail = (dt.date.fromisoformat(wend) - dt.date.fromisoformat(f.wlast)).days
    if trail > best:
        best, bfrom, bto = trail, _next_day(f.wlast), wend
    return best, bfrom, bto


async def compute(
    db: Database, config: Config, start: str, end: str, as_of_ms: int | None = None,
    summaries: bool = True,
) -> Result:
    """States of every registered site for local days [start, end] (inclusive)."""
    as_of_ms = int(time.time() * 1000) if as_of_ms is None else as_of_ms
    today = local_day(as_of_ms)
    wend = min(end, (dt.date.fromisoformat(today) - DAY).isoformat())
    p = {"s": start, "e": end}
    sites = await db.fetch_all(
        "SELECT s.id, s.name, s.kind, s.agency_code, s.required, s.registered_on, "
        "a.name AS agency_name, a.kind AS agency_kind FROM sites s "
        "JOIN agencies a ON a.code = s.agency_code WHERE s.registered_on <= :e ORDER BY s.id", p)
    period = await period_facts(db, start, end, wend, today, summaries)
    # sites without hits on the period's first day: their last day with hits before it
    late = [s["id"] for s in sites if s["id"] not in period or period[s["id"]].first > start]
    before = {r["site_id"]: r["last_day"] for r in await _in_chunks(
        db, "SELECT x.id AS site_id, (SELECT r.day FROM rollup_site_day r "
            "WHERE r.site_id = x.id AND r.day < :s AND r.hits > 0 ORDER BY r.day DESC LIMIT 1"
            ") AS last_day FROM sites x WHERE x.id IN (:ids)",
        late, p) if r["last_day"] is not None}
    host_owner = {r["host"]: r["site_id"] for r in await db.fetch_all(
        "SELECT host, site_id FROM site_hosts")}
    foreign: dict[int, dict[str, int]] = {}
    carried: dict[int, dict[int, int]] = {}  # site whose host carried another site's code
    for r in await db.fetch_all(
        "SELECT site_id, host, SUM(n) AS n FROM dropped WHERE reason = :r "
        "AND day >= :s AND day <= :e GROUP BY site_id, host", {**p, "r": HOST_REASON}):
        n = int(r["n"])
        foreign.setdefault(r["site_id"], {})[r["host"]] = n
        owner = host_owner.get(r["host"])
        if owner is not None and owner != r["site_id"]:
            carried.setdefault(owner, {})[r["site_id"]] = \
                carried.get(owner, {}).get(r["site_id"], 0) + n
    scans = await _latest_scans(db, _end_ms(end))
    sums: dict[str, dict[int, int]] = {}
    comparisons = await compare(db, start, end, config.reconcile_abs, config.reconcile_rel,
                                sums)
    dvc, feed = sums.get("dvc", {}), sums.get("feed", {})
    failed: dict[int, list[Comparison]] = {}
    for c in comparisons:
        if not c.ok:
            for sid in c.sites:
                failed.setdefault(sid, []).append(c)

    out: list[SiteState] = []
    for s in sites:
        sid = s["id"]
        per = period.get(sid)
        hits = per.hits if per else 0
        last_day = per.last if per else before.get(sid)
        f: list[Finding] = []
        if last_day is None:
            f.append(finding("never_hit"))
        scan = scans.get(sid)
        if scan is not None:
            f += _scan_findings(sid, scan, hits)
        if s["kind"] == "dvc" and per and per.pageviews and not dvc.get(sid):
            f.append(finding("dvc_no_trackdvc"))
        if s["kind"] == "onestop" and not feed.get(sid):
            f.append(finding("onestop_no_feed"))
        fh = foreign.get(sid, {})
        if sum(fh.values()) >= config.foreign_host_min:
            top = sorted(fh, key=lambda h: -fh[h])[:5]
            f.append(finding("foreign_hosts", n=sum(fh.values()), hosts=", ".join(top)))
        other = carried.get(sid, {})
        if sum(other.values()) >= config.foreign_host_min:
            f.append(finding("code_of_other_site", n=sum(other.values()),
                             others=", ".join(str(o) for o in sorted(other))))
        gap, gfrom, gto, missing = 0, "", "", 0
        if last_day is not None:
            wstart = _window_start(start, today, before.get(sid), per.first if per else None)
            gap, gfrom, gto = _gap(per, wstart, wend)
            # days_without_hits counts the period's own days only, not the part of a run
            # that began before the period
            own = max(start, wstart)
            missing = max(0, (dt.date.fromisoformat(wend) - dt.date.fromisoformat(own)).days
                          + 1) - (per.wdays if per else 0)
            if gap >= config.gap_days > 0:
                f.append(finding("interrupted", gap=gap, gap_from=gfrom, gap_to=gto))
        bad = failed.get(sid, [])
        if bad:
            worst = max(bad, key=lambda c: abs(c.difference))
            f.append(finding("not_reconciled", n=len({c.service for c in bad}),
                             service=worst.service, a=worst.a, b=worst.b))
        state = min((x.state for x in f if x.state), key=STATES.index, default="compliant")
        out.append(SiteState(
            sid, s["name"], s["kind"], s["agency_code"], s["agency_name"], s["agency_kind"],
            bool(s["required"]), state, sorted(f, key=lambda x: STATES.index(x.state or
                                                                                "compliant")),
            last_day, per.days if per else 0, gap,
            _scan_summary(scan), {"hits": hits, "pageviews": per.pageviews if per else 0,
                                  "dvc_steps": int(dvc.get(sid) or 0),
                                  "feed_events": int(feed.get(sid) or 0),
                                  "days_without_hits": missing,
                                  "foreign_host_hits": sum(fh.values())},
        ))
    return Result(start, end, out, roll_up(out), comparisons)


def _scan_summary(scan: dict[str, Any] | None) -> dict[str, Any] | None:
    if scan is None:
        return None
    keys = ("ts", "base_url", "home_status", "https_enforced", "snippet", "site_id_found",
            "site_id_state", "tracker_url", "loader", "badge", "pages", "pages_ok",
            "pages_snippet", "findings")
    summary = {k: scan[k] for k in keys}
    summary["day"] = local_day(scan["ts"])
    return summary


def roll_up(sites: list[SiteState]) -> list[AgencyState]:
    agencies: dict[str, AgencyState] = {}
    for s in sites:
        if not s.required:
            continue
        a = agencies.setdefault(s.agency_code, AgencyState(
            s.agency_code, s.agency_name, s.agency_kind, "compliant", 0, 0))
        a.sites += 1
        a.compliant += s.state == "compliant"
        if STATES.index(s.state) < STATES.index(a.state):
            a.state = s.state
    return sorted(agencies.values(), key=lambda a: a.code)


HISTORY_MAX_AGE_MS = 86_400_000


async def monthly_counts(
    db: Database, config: Config, months: list[str], now_ms: int | None = None,
    known: dict[str, Result] | None = None,
) -> dict[str, dict[str, int]]:
    """Counts of required sites per state for each month (``compliance_months``): a closed
    month is read from the table unless its row is older than a day; the current month is
    always computed (and stored), or taken from ``known`` results computed just before."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    this_month = local_day(now_ms)[:7]
    stored = {r["month"]: r for r in await db.fetch_all(
        "SELECT * FROM compliance_months")} if months else {}
    out: dict[str, dict[str, int]] = {}
    for m in months:
        row = stored.get(m)
        if row and m < this_month and now_ms - row["computed_ts"] < HISTORY_MAX_AGE_MS:
            out[m] = {st: int(row[st]) for st in STATES}
            continue
        result = (known or {}).get(m) or await compute(db, config, *month_period(m), now_ms)
        counts = result.counts()
        await db.execute(
            "INSERT INTO compliance_months (month, computed_ts, not_connected, incomplete, "
            "interrupted, not_reconciled, compliant) VALUES (:m, :t, :not_connected, "
            ":incomplete, :interrupted, :not_reconciled, :compliant) ON CONFLICT (month) DO "
            "UPDATE SET computed_ts = excluded.computed_ts, "
            "not_connected = excluded.not_connected, incomplete = excluded.incomplete, "
            "interrupted = excluded.interrupted, not_reconciled = excluded.not_reconciled, "
            "compliant = excluded.compliant", {"m": m, "t": now_ms, **counts})
        out[m] = counts
    return out
