"""Formats, periods, charts and CSV cells of the reports, on their own."""

from __future__ import annotations

import datetime as dt

import pytest

from reports.charts import RefLine, bar_chart, funnel, line_chart
from reports.i18n import Formats, pick_lang
from reports.periods import BadPeriod, parse_period
from reports.tables import Column, Table, safe_cell, to_csv


def test_vietnamese_and_english_formats() -> None:
    vi, en = Formats("vi"), Formats("en")
    assert vi.num(1234567) == "1.234.567" and en.num(1234567) == "1,234,567"
    assert vi.num(1234.5, 1) == "1.234,5" and en.num(1234.5, 1) == "1,234.5"
    assert vi.pct(0.6667) == "66,7\u00a0%" and en.pct(0.6667) == "66.7%"
    assert vi.pct(None) == "–"
    assert vi.date("2026-03-05") == "05/03/2026" and en.date("2026-03-05") == "2026-03-05"
    assert vi.dur(75) == "1:15" and vi.dur(3725) == "1:02:05"
    assert vi.delta(0.25) == "+25,0\u00a0%" and vi.delta(-0.5) == "−50,0\u00a0%"


def test_language_choice_without_cookie() -> None:
    assert pick_lang({}, "") == "vi"
    assert pick_lang({"lang": "en"}, "vi") == "en"
    assert pick_lang({}, "fr-FR,en;q=0.8") == "en"
    assert pick_lang({"lang": "xx"}, "") == "vi"


def test_periods_and_previous_period() -> None:
    today = dt.date(2026, 3, 15)
    p = parse_period({"period": "7d"}, today)
    assert (p.start, p.end, p.days) == (dt.date(2026, 3, 9), today, 7)
    assert (p.previous().start, p.previous().end) == (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    assert parse_period({"period": "month"}, today).start == dt.date(2026, 3, 1)
    assert parse_period({"period": "year"}, today).start == dt.date(2026, 1, 1)
    assert parse_period({"period": "today"}, today).days == 1
    c = parse_period({"period": "custom", "from": "2026-02-10", "to": "2026-02-01"}, today)
    assert (c.start, c.end) == (dt.date(2026, 2, 1), dt.date(2026, 2, 10))
    # refused, not guessed at (pages and the API answer 400 with the message)
    for q in ({"period": "custom", "from": "x"}, {"period": "<script>"},
              {"period": "custom", "from": "2026-02-30", "to": "2026-03-01"},
              {"from": "２０２６-０１-０１", "to": "2026-03-01"}):
        with pytest.raises(BadPeriod):
            parse_period(q, today)
    assert parse_period({"from": "2026-01-01", "to": "2026-01-31"}, today).key == "custom"
    assert parse_period({}, today, default="nonsense").key == "30d"  # a stale session value


def test_charts_escape_text_and_draw_reference_lines() -> None:
    evil = '<script>alert(1)</script>"'
    svg = str(line_chart([evil, "b"], [(evil, [1, 2])], title=evil,
                         refs=[RefLine(1.5, evil)]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count('class="ref"') == 1
    svg = str(bar_chart([(evil, 3.0)], title=evil, refs=[RefLine(0.5, "target")], x_max=4))
    assert "<script>" not in svg and 'class="ref"' in svg
    svg = str(funnel([("views", 10), (evil, 4)], title="f"))
    assert "<script>" not in svg and "40.0 %" in svg


def test_csv_neutralises_formulas_and_has_bom() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("ok") == "ok" and safe_cell(5) == 5 and safe_cell(None) == ""
    t = Table("x", "x", [Column("a", "=A")], [{"a": "=cmd|' /C calc'!A0"}, {"a": "fine"}])
    text = to_csv(t)
    assert text.startswith("\ufeff'=A\r\n")
    assert "'=cmd" in text and "\nfine" in text


def test_session_cookie_flags_and_signature() -> None:
    from starlette.requests import Request
    from starlette.responses import Response

    from reports.auth import COOKIE, Sessions

    def request(scheme: str, cookie: str = "") -> Request:
        headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
        return Request({"type": "http", "scheme": scheme, "method": "GET", "path": "/",
                        "headers": headers, "query_string": b"", "server": ("t", 443)})

    s = Sessions(b"secret")
    r = Response()
    s.save(request("https"), r, {"uid": 1, "csrf": "x"})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert s.load(request("https", value)) == {"uid": 1, "csrf": "x"}
    assert Sessions(b"other").load(request("https", value)) == {}  # another key: rejected
    r = Response()
    Sessions(b"secret").save(request("http"), r, {"uid": 1})
    assert "Secure" not in r.headers["set-cookie"]
    r = Response()
    Sessions(b"secret", secure=True).save(request("http"), r, {"uid": 1})  # https public URL
    assert "Secure" in r.headers["set-cookie"]
