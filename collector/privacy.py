"""Personal data out before storage: ID numbers, phone numbers, e-mail, names.

Used by ingest (URLs, referrers, titles, the ``trackDVC`` extra) and by the dossier feed.
What counts as personal data here:

- ID numbers: a run of exactly 9 digits (old CMND) or 12 digits (CCCD / personal ID);
- phone numbers: Vietnamese mobiles and landlines, ``0xxxxxxxxx`` / ``+84…`` / ``84…``;
- e-mail addresses;
- query parameters whose *name* says they carry a person (``hoten``, ``cccd``, ``email``,
  ``sdt``, ``token``, …) — dropped whole, whatever their value;
- query parameters whose *value* holds any of the above — dropped whole.

Matches in a path or a title are replaced by a marker, so the page stays recognisable:
``/hoso/012345678901`` becomes ``/hoso/[id]``. The URL fragment is dropped.
Keyed hashes (HMAC-SHA256 with the installation secret) replace identifiers that must
stay countable, such as dossier ids: the same id gives the same hash, the id cannot be
read back without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit, urlunsplit

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\d])(?:\+?84|0)(?:[\s.-]?\d){9,10}(?![\d])")
_ID = re.compile(r"(?<![\d])(?:\d{12}|\d{9})(?![\d])")
# cheap pre-check: every match above holds an "@" or 9 digits with at most single separators
_MAYBE = re.compile(r"@|\d(?:[\s.-]?\d){8}")

PERSONAL_PARAMS = frozenset(
    """
    name hoten ho_ten hovaten fullname full_name tennguoinop tencongdan
    cmnd cccd socmnd socccd so_cmnd so_cccd idno id_no idcard sodinhdanh so_dinh_danh
    madinhdanh ma_dinh_danh personalid identity passport hochieu
    email mail e-mail phone sdt sodienthoai so_dien_thoai dienthoai mobile tel
    diachi address ngaysinh dob birthday
    token access_token password pass pwd otp session sessionid jsessionid
    """.split()
)


# A URL with nothing to clean: http(s), no user info, no fragment, no escapes or ``+`` in the
# query (names and values are what they look like), no empty query parameters; with no
# match of ``_MAYBE`` and no personal parameter name either, ``clean_url`` returns it as is
# (a test holds this fast path to the full one).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.:-]+(?:/[^?#@\s]*)?(?:\?(?:[^&#%+@\s]+&)*[^&#%+@\s]+)?"
)
_PERSONAL_KEY = re.compile(
    "[?&](?:" + "|".join(re.escape(p) for p in sorted(PERSONAL_PARAMS)) + ")(?:[=&]|$)", re.I
)


def redact_text(text: str) -> str:
    """Replace e-mails, phone numbers and ID numbers in free text by markers."""
    if not text or not _MAYBE.search(text):
        return text
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return _ID.sub("[id]", text)


def has_personal_data(text: str) -> bool:
    return bool(_MAYBE.search(text)) and bool(
        _EMAIL.search(text) or _PHONE.search(text) or _ID.search(text)
    )


def _personal_param(part: str) -> bool:
    key, _, value = part.partition("=")
    if "%" in part or "+" in part:
        key, value = unquote_plus(key), unquote_plus(value)
    return key.lower() in PERSONAL_PARAMS or has_personal_data(f"{key}={value}")


@lru_cache(maxsize=4096)  # referrers and popular pages repeat
def clean_url(url: str) -> str:
    """The URL without its fragment, personal query parameters, or personal data in its path.

    Query parameters are kept as sent (not re-encoded); a parameter is dropped whole when
    its name is a personal one or its decoded name or value holds personal data.
    """
    if (url.isascii() and _PLAIN_URL.fullmatch(url) and not _MAYBE.search(url)
            and not _PERSONAL_KEY.search(url)):
        return url
    return _clean_url(url)


def _clean_url(url: str) -> str:
    """:func:`clean_url` without its fast path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    query = parts.query
    if query:
        query = "&".join(p for p in query.split("&") if p and not _personal_param(p))
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep user:password@
    return urlunsplit((parts.scheme, netloc, redact_text(parts.path), query, ""))


def keyed_hash(secret: bytes, value: str) -> str:
    """A stable, non-reversible token for an identifier (hex, 16 bytes)."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def dvc_reference(secret: bytes, extra: str) -> str:
    """The ``trackDVC`` extra reduced to a keyed hash of its first field, the dossier id.

    Real systems send ``dossierId;ddMMyyyy;applicantName;applicantIdNo``: everything after
    the dossier id is personal data or not needed, and is dropped.
    """
    dossier_id = extra.split(";", 1)[0].strip()
    return keyed_hash(secret, dossier_id) if dossier_id else ""
