"""Hit rows in ``HIT_COLUMNS`` order with controlled times, for rollup tests (stored
through ``db.write_batch``, the real storage path)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from collector.store import HIT_COLUMNS
from collector.tracking import local_day

MIN = 60_000
HOUR = 60 * MIN


def ts_of(local: str) -> int:
    """'2026-03-01 23:50' or '2026-03-01 23:50:30' (Vietnam time) → ms since epoch UTC."""
    fmt = "%Y-%m-%d %H:%M:%S" if local.count(":") == 2 else "%Y-%m-%d %H:%M"
    naive = dt.datetime.strptime(local, fmt)
    aware = naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return int(aware.timestamp() * 1000)


def hit(site_id: int, ts: int | str, visitor: int, kind: str = "pageview", path: str = "/",
        **fields: Any) -> tuple[Any, ...]:
    ts = ts_of(ts) if isinstance(ts, str) else ts
    host = fields.pop("host", "hanoi.gov.vn")
    values: dict[str, Any] = {c: "" for c in HIT_COLUMNS}
    values.update(
        site_id=site_id, ts=ts, day=local_day(ts), kind=kind, visitor=visitor, host=host,
        path=path, url=f"https://{host}{path}", e_v=None, dvc_state=None,
        browser="Chrome", os="Windows", device="desktop",
    )
    values.update(fields)
    unknown = set(values) - set(HIT_COLUMNS)
    assert not unknown, unknown
    return tuple(values[c] for c in HIT_COLUMNS)


def dvc(site_id: int, ts: int | str, visitor: int, service: str, state: int,
        path: str = "/dvc") -> tuple[Any, ...]:
    return hit(site_id, ts, visitor, "dvc", path, e_c="dvc", e_a="step", e_n=service,
               e_v=float(state), dvc_service=service, dvc_state=state)


def rating(site_id: int, ts: int | str, visitor: int, service: str, value: int,
           path: str = "/dvc") -> tuple[Any, ...]:
    return hit(site_id, ts, visitor, "rating", path, e_c="dvc", e_a="rating", e_n=service,
               e_v=float(value), dvc_service=service)
