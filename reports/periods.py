"""The period picker: ``?period=today|7d|30d|90d|month|year|custom&from=…&to=…``.

Days are local (UTC+7) dates. A period of N days ends today (inclusive). The previous
period is the N days just before it, so deltas compare like with like; for ``month`` and
``year`` that is the same number of days immediately before the first of the month/year.

Bad input is refused, never guessed at: an unknown period name, a date that is not
``YYYY-MM-DD`` in ASCII digits (``int()`` and ``date.fromisoformat`` accept other forms:
'２０２６', Arabic-Indic digits, '20260101'), a date that does not exist ('2026-02-30') or
lies outside 2000-01-01…2100-12-31 raises :class:`BadPeriod` (pages and the API answer
400 with its message). ``from``/``to`` without ``period`` mean ``custom``; reversed dates
are swapped; a custom range longer than ``MAX_DAYS`` is clamped to its last ``MAX_DAYS``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reports.params import BadParameter

CHOICES = ("today", "7d", "30d", "90d", "month", "year", "custom")
LABELS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days",
          "month": "This month", "year": "This year", "custom": "Custom"}
MAX_DAYS = 3660
MIN_DAY, MAX_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # [0-9], not \d: ASCII digits only


class BadPeriod(BadParameter):
    """A period parameter that cannot be read; the message says which and why."""


def parse_day(raw: str, name: str) -> dt.date:
    if not _DATE.fullmatch(raw):
        raise BadPeriod(f"{name}: expected a date YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadPeriod(f"{name}: no such date") from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise BadPeriod(f"{name}: dates from {MIN_DAY} to {MAX_DAY}")
    return day


@dataclass(frozen=True)
class Period:
    key: str
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        end = self.start - dt.timedelta(days=1)
        return Period(self.key, end - dt.timedelta(days=self.days - 1), end)

    def day_list(self) -> list[str]:
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range(self.days)]

    def query(self) -> dict[str, str]:
        if self.key == "custom":
            return {"period": "custom", "from": self.start.isoformat(),
                    "to": self.end.isoformat()}
        return {"period": self.key}


def local_today(offset_hours: int = 7) -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=offset_hours)).date()


def parse_period(q: Mapping[str, str], today: dt.date, default: str = "30d") -> Period:
    """The period asked for in ``q``; :class:`BadPeriod` if it cannot be read."""
    key = q.get("period")
    if not key:
        key = "custom" if (q.get("from") or q.get("to")) else (
            default if default in CHOICES and default != "custom" else "30d")
    if key not in CHOICES:
        raise BadPeriod(f"period: one of {', '.join(CHOICES)}")
    if key == "custom":
        start = parse_day(q.get("from", ""), "from")
        end = parse_day(q.get("to", ""), "to")
        if start > end:
            start, end = end, start
        if (end - start).days >= MAX_DAYS:
            start = end - dt.timedelta(days=MAX_DAYS - 1)
        return Period("custom", start, end)
    if key == "today":
        return Period(key, today, today)
    if key == "month":
        return Period(key, today.replace(day=1), today)
    if key == "year":
        return Period(key, today.replace(month=1, day=1), today)
    n = int(key.removesuffix("d"))
    return Period(key, today - dt.timedelta(days=n - 1), today)
