"""parse_query / parse_hit: pure functions, no server."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from collector.tracking import InvalidHit, local_day, parse_hit, parse_query

SITES = {47: frozenset({"hanoi.gov.vn"}), 48: frozenset({"dichvucong.hanoi.gov.vn"})}
NOW = 1_767_225_600_000  # 2026-01-01 00:00 UTC = 07:00 in Vietnam


def hit(**params: str):
    return parse_hit({"idsite": "47", "rec": "1", "url": "https://hanoi.gov.vn/a", **params},
                     SITES, NOW, "UA", "vi-VN,vi;q=0.9")


def test_local_day_is_utc_plus_7() -> None:
    assert local_day(NOW) == "2026-01-01"
    assert local_day(NOW - 7 * 3600 * 1000) == "2026-01-01"  # 00:00 local
    assert local_day(NOW - 7 * 3600 * 1000 - 1) == "2025-12-31"


@given(st.lists(st.sampled_from(list("ab=&+;?é%2041fFzZ") + ["%e1%bb%9d", "%ff", "%c3"]),
                max_size=30).map("".join))
@example("==&")  # two "=" for two fields, but not one in each (found by this test)
@example("=%ff&=")  # a repeated key's first value is malformed (found by this test)
def test_parse_query_agrees_with_parse_qsl(text: str) -> None:
    if "%00" in text:
        return
    try:
        expected = dict(parse_qsl(text.lstrip("?"), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        with pytest.raises(InvalidHit, match="malformed encoding"):
            parse_query(text)
        with pytest.raises(InvalidHit, match="malformed encoding"):
            parse_query(text.encode())
        return
    assert parse_query(text) == expected
    assert parse_query(text.encode()) == expected


def test_parse_query_last_value_wins_and_blank_kept() -> None:
    assert parse_query(b"?a=1&a=2&b&c=") == {"a": "2", "b": "", "c": ""}
    assert parse_query("x=a+b%20c") == {"x": "a b c"}


@pytest.mark.parametrize("raw", [b"a=%ff", b"a=\xff", "a=\ud800", b"a=%00", "a=\x00"])
def test_parse_query_malformed(raw: bytes | str) -> None:
    with pytest.raises(InvalidHit, match="malformed encoding") as e:
        parse_query(raw)
    assert e.value.status == 400


def test_pageview_fields() -> None:
    h = hit(url="https://WWW.Hanoi.gov.vn:443/tin-tuc?utm_source=zalo&mtm_campaign=tet#x",
            urlref="https://www.google.com/search", action_name="Tin tức", res="390x844",
            pv_id="abc123", lang="en-US")
    assert (h.site_id, h.kind, h.host, h.path, h.day) == (47, "pageview", "hanoi.gov.vn",
                                                          "/tin-tuc", "2026-01-01")
    assert (h.ref_host, h.title, h.screen, h.pv_id, h.lang) == (
        "google.com", "Tin tức", "390x844", "abc123", "en-us")
    assert (h.utm_source, h.utm_campaign) == ("zalo", "tet")


def test_lang_from_header_and_bad_screen_ignored() -> None:
    h = hit(res="big")
    assert h.lang == "vi-vn" and h.screen == ""


def test_unreadable_referrer_is_none() -> None:
    assert hit(urlref="http://[::1").referrer == ""
    assert hit(urlref="javascript:alert(1)").referrer == ""


def test_dvc_encoding() -> None:
    h = hit(e_c="DVC", e_a="Step", e_n="1.000046", e_v="1", dvc_extra="X;01012026")
    assert (h.kind, h.e_c, h.e_a, h.dvc_service, h.dvc_state, h.dvc_extra) == (
        "dvc", "dvc", "step", "1.000046", 1, "X;01012026")
    r = hit(e_c="dvc", e_a="rating", e_n="1.000046", e_v="4")
    assert (r.kind, r.e_v, r.dvc_state) == ("rating", 4.0, None)
    other = hit(e_c="dvc", e_a="open", e_n="anything goes")
    assert other.kind == "event"


def test_outlink_download_ping_precedence() -> None:
    assert hit(ping="1", link="https://x.vn").kind == "ping"
    assert hit(link="https://x.vn", download="https://y.vn").kind == "outlink"
    assert hit(download="https://y.vn/a.pdf").target == "https://y.vn/a.pdf"


def test_ua_param_overrides_header() -> None:
    assert hit(ua="Custom/1.0").ua == "Custom/1.0"
    assert hit().ua == "UA"


def test_long_fields_are_cut() -> None:
    h = hit(action_name="t" * 5000, e_c="c" * 500, e_a="a", pv_id="p" * 50)
    assert len(h.title) == 1024 and len(h.e_c) == 256 and len(h.pv_id) == 16


_URL_PARTS = st.sampled_from(
    ["http", "https", "HTTPS", "://", ":", "//", "/", "?", "#", "&", "=", "@", "[", "]", " ",
     "\t", "%41", "+", ".", "-", "www.", "WWW.", "Hanoi", "gov", "vn", "443", "a", "é", "x=1"]
)


_TOKENS = st.lists(_URL_PARTS, max_size=6).map("".join)
_WELL_FORMED = st.tuples(
    st.sampled_from(["http://", "https://"]), st.sampled_from(["", "www.", "WWW."]),
    st.sampled_from(["hanoi.gov.vn", "Hanoi.Gov.VN.", "a-b.vn", "h"]),
    st.sampled_from(["", ":443", ":"]), st.sampled_from(["", "/", "/a/b", "/%41"]),
    st.sampled_from(["", "?", "?x=1&y"]), st.sampled_from(["", "#", "#f"]),
).map("".join)
_URLS = st.one_of(
    _WELL_FORMED,
    st.tuples(_WELL_FORMED, _TOKENS).map("".join),  # then noise
    st.tuples(st.sampled_from(["HTTPS://", "https:/", "ftp://", "https://u:p@", "http://[::1]"]),
              _TOKENS).map("".join),
    st.lists(_URL_PARTS, max_size=16).map("".join),
)


@given(_URLS)
def test_split_url_fast_path_agrees_with_urlsplit(url: str) -> None:
    """Whatever the regex takes, it splits exactly as ``urlsplit`` + ``normalize_host``."""
    from urllib.parse import urlsplit

    from collector.registry import normalize_host
    from collector.tracking import split_url

    try:
        parts = urlsplit(url)
        expected = (parts.scheme, normalize_host(parts.hostname or ""), parts.path, parts.query)
    except ValueError:
        with pytest.raises(ValueError):
            split_url(url)
        return
    assert split_url(url) == expected


def test_split_url_common_forms() -> None:
    from collector.tracking import split_url

    assert split_url("https://WWW.Hanoi.gov.vn:443/a/b?x=1#f") == (
        "https", "hanoi.gov.vn", "/a/b", "x=1")
    assert split_url("http://hanoi.gov.vn") == ("http", "hanoi.gov.vn", "", "")
    assert split_url("https://u:p@hanoi.gov.vn/") == ("https", "hanoi.gov.vn", "/", "")
    with pytest.raises(ValueError):
        split_url("http://[::1/a")
