"""Personal data removed before storage: unit level, then through the whole app."""

from __future__ import annotations

import httpx
import pytest
from conftest import FORM, GOOD, all_text, form
from hypothesis import given
from hypothesis import strategies as st

from collector.privacy import clean_url, dvc_reference, keyed_hash, redact_text
from collector.store import Database

CCCD = "012345678901"
CMND = "123456789"
PHONE = "0912345678"


@pytest.mark.parametrize("text, expected", [
    (f"Hồ sơ {CCCD}", "Hồ sơ [id]"),
    (f"CMND {CMND} cấp", "CMND [id] cấp"),
    (f"gọi {PHONE}", "gọi [phone]"),
    ("gọi +84 912 345 678", "gọi [phone]"),
    ("gọi 0912.345.678", "gọi [phone]"),
    ("gọi 024 3825 3536", "gọi [phone]"),
    ("thư nguyen.van.a@gmail.com nhé", "thư [email] nhé"),
    ("năm 2026, mã 1.000046, số 12345678", "năm 2026, mã 1.000046, số 12345678"),
    ("1234567890123", "1234567890123"),  # 13 digits: neither an ID nor a phone
    ("", ""),
])
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("url, expected", [
    (f"https://hanoi.gov.vn/hoso/{CCCD}", "https://hanoi.gov.vn/hoso/[id]"),
    (f"https://hanoi.gov.vn/tra-cuu?cccd={CMND}&trang=2", "https://hanoi.gov.vn/tra-cuu?trang=2"),
    ("https://hanoi.gov.vn/a?hoten=Nguyen+Van+A&x=1", "https://hanoi.gov.vn/a?x=1"),
    ("https://hanoi.gov.vn/a?%68oten=A&x=1", "https://hanoi.gov.vn/a?x=1"),
    ("https://hanoi.gov.vn/a?q=a%40b.vn&x=1", "https://hanoi.gov.vn/a?x=1"),
    (f"https://hanoi.gov.vn/a?q=goi+{PHONE}", "https://hanoi.gov.vn/a"),
    (f"https://hanoi.gov.vn/a?{PHONE}=1&x=1", "https://hanoi.gov.vn/a?x=1"),
    ("https://hanoi.gov.vn/a?token=abc&x=a%20b", "https://hanoi.gov.vn/a?x=a%20b"),
    ("https://user:pw@hanoi.gov.vn/a#frag", "https://hanoi.gov.vn/a"),
    ("https://hanoi.gov.vn/a?utm_source=zalo", "https://hanoi.gov.vn/a?utm_source=zalo"),
])
def test_clean_url(url: str, expected: str) -> None:
    assert clean_url(url) == expected


def test_keyed_hash_and_dvc_reference() -> None:
    extra = f"HS-001;01072026;Nguyễn Văn A;{CCCD}"
    ref = dvc_reference(b"k1", extra)
    assert ref == keyed_hash(b"k1", "HS-001") == dvc_reference(b"k1", "HS-001")
    assert ref != dvc_reference(b"k2", extra)
    assert len(ref) == 32 and "HS-001" not in ref
    assert dvc_reference(b"k1", ";x") == ""


async def test_no_personal_data_reaches_storage(client: httpx.AsyncClient, db: Database) -> None:
    """ID numbers, phones and e-mails anywhere, and the whole trackDVC extra (a name cannot be
    recognised in free text, but the extra keeps nothing but the keyed hash of its first field).
    """
    extra = f"HS-2026-000123;01072026;Nguyễn Văn A;{CCCD}"
    hits = [
        {**GOOD, "url": f"https://hanoi.gov.vn/hoso/{CCCD}?email=a@b.vn&sdt={PHONE}&p=1",
         "urlref": f"https://hanoi.gov.vn/tra-cuu?q={CMND}",
         "action_name": f"Hồ sơ {CCCD} - {PHONE} - a@b.vn",
         "pv_id": CCCD},
        {**GOOD, "idsite": "48", "url": "https://dichvucong.hanoi.gov.vn/nop-ho-so",
         "e_c": "dvc", "e_a": "step", "e_n": "1.000046", "e_v": "1", "dvc_extra": extra},
        {**GOOD, "e_c": f"form {PHONE}", "e_a": f"submit {CCCD}", "e_n": "a@b.vn",
         "link": f"https://zalo.me/{PHONE}"},
    ]
    for h in hits:
        r = await client.post("/tracking", content=form(h), headers=FORM)
        assert r.status_code == 204, r.text
    text = await all_text(db)
    for secret in (CCCD, CMND, PHONE, "a@b.vn", "Nguyễn Văn A", "HS-2026-000123", "01072026"):
        assert secret not in text, secret
    ref = await db.fetch_one("SELECT dvc_ref FROM hits WHERE kind = 'dvc'")
    secret_key = (await db.fetch_one("SELECT value FROM settings WHERE key = 'secret'"))["value"]
    assert ref == {"dvc_ref": keyed_hash(secret_key.encode(), "HS-2026-000123")}
    title = await db.fetch_one("SELECT title, url FROM hits WHERE site_id = 47 AND kind = "
                               "'pageview'")
    assert title == {"title": "Hồ sơ [id] - [phone] - [email]",
                     "url": "https://hanoi.gov.vn/hoso/[id]?p=1"}


_URL_PARTS = st.sampled_from(
    ["https://hanoi.gov.vn", "http://h.vn:8080", "/", "/a", "?", "&", "=", "#f", "@", "%40",
     "+", " ", "x", "hoten", "HoTen", "email", "0912345678", "012345678901", "12345",
     "a@b.vn", "utm_source", "é", "%C3%A9", ".", "-"]
)


_QUERY = st.lists(st.sampled_from(["x=1", "utm_source=zalo", "trang=2", "a", "q=12345"]),
                  min_size=1, max_size=3).map("&".join)
_URLS = st.one_of(
    st.tuples(st.sampled_from(["https://hanoi.gov.vn", "http://h.vn:8080"]),
              st.sampled_from(["", "/", "/tin-tuc/a-1", "/%41"]),
              st.sampled_from(["", "?"]), _QUERY).map("".join),  # mostly the fast path
    st.tuples(st.sampled_from(["https://hanoi.gov.vn", "http://h.vn:8080", "https://x", ""]),
              st.lists(_URL_PARTS, max_size=10).map("".join)).map("".join),
)


@given(_URLS)
def test_clean_url_fast_path_agrees_with_the_full_one(url: str) -> None:
    from collector.privacy import _clean_url

    assert clean_url(url) == _clean_url(url)


@given(st.lists(st.sampled_from(["0", "9", "84", "+", " ", "\u00a0", "\u2003", ".", "-", "@",
                                 "a", "é", "\t", "\x1f", "/", "\x00"]), max_size=30).map("".join))
def test_cheap_pre_check_never_misses_personal_data(text: str) -> None:
    """``_maybe`` is a necessary condition: whenever a pattern matches, it says maybe."""
    from collector.privacy import _EMAIL, _ID, _PHONE, _maybe

    if _EMAIL.search(text) or _PHONE.search(text) or _ID.search(text):
        assert _maybe(text)
