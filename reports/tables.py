"""A report table — columns and rows — shown as HTML and exported as CSV or JSON.

Every table on every page is a :class:`Table`; the page adds ``?table=<name>&format=csv``
(or ``json``) to its own URL to download it, under the same access rules and period.

CSV is UTF-8 with a BOM (Excel opens it with the right encoding), values unformatted
(``0.5`` not ``50 %``), and every text cell that a spreadsheet would take for a formula —
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return — gets a leading ``'``.
JSON is ``{"table", "columns", "rows"}`` with rows as objects keyed by column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | int | pct | dur | num | date | code


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    # optional: where a row's first cell links to
    link: Callable[[dict[str, Any]], str] | None = None

    @property
    def link_key(self) -> str:
        """The column whose cells link (first text column, else first code column)."""
        for kind in ("text", "code"):
            for c in self.columns:
                if c.kind == kind:
                    return c.key
        return self.columns[0].key

    def json_obj(self) -> dict[str, Any]:
        return {"table": self.name, "title": self.title,
                "columns": [c.key for c in self.columns],
                "rows": [{c.key: r.get(c.key) for c in self.columns} for r in self.rows]}


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe_cell(c.label) for c in table.columns])
    for r in table.rows:
        w.writerow([safe_cell(r.get(c.key)) for c in table.columns])
    return "\ufeff" + buf.getvalue()


def download(table: Table, fmt: str, stem: str) -> Response:
    filename = f"{stem}-{table.name}".replace('"', "")
    if fmt == "csv":
        return Response(to_csv(table).encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{filename}.csv"',
                                 "x-content-type-options": "nosniff"})
    body = json.dumps(table.json_obj(), ensure_ascii=False)
    # "<" escaped so the JSON can never be read as HTML, even if sniffed
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Response(body.encode("utf-8"), media_type="application/json",
                    headers={"x-content-type-options": "nosniff"})
