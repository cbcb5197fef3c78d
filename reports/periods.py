"""The period picker: ``?period=today|7d|30d|90d|month|year|custom&from=…&to=…``.

Days are local (UTC+7) dates. A period of N days ends today (inclusive). The previous
period is the N days just before it, so deltas compare like with like; for ``month`` and
``year`` that is the same number of days immediately before the first of the month/year.
A bad custom range falls back to 30 days rather than failing (the picker shows it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

CHOICES = ("today", "7d", "30d", "90d", "month", "year", "custom")
LABELS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days",
          "month": "This month", "year": "This year", "custom": "Custom"}
MAX_DAYS = 3660


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
    key = q.get("period") or default
    if key not in CHOICES:
        key = default
    if key == "custom":
        try:
            start = dt.date.fromisoformat(q.get("from", ""))
            end = dt.date.fromisoformat(q.get("to", ""))
        except ValueError:
            return parse_period({}, today, default)
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
