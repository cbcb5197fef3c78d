"""Query and path parameters read strictly: hostile input gets a clear 400, never a 500.

``str.isdigit`` is true for '²', '２' and '٣' and ``int()`` reads the last two (and fails
on the first): numbers here are ASCII digits only. Text that reaches SQL must not hold NUL
(PostgreSQL refuses it in ``text``), so :func:`text` refuses it too.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.tracking import ascii_int

__all__ = ["BadParameter", "ascii_int", "path_id", "query_int", "text"]

MAX_ID_DIGITS = 11


class BadParameter(ValueError):
    """A parameter that cannot be read; the message names it and says why (no echo of
    the value, which is the sender's)."""


def path_id(raw: str) -> int | None:
    """A site id from a path: ASCII digits, at most ``MAX_ID_DIGITS``; else ``None``
    (the caller answers 404, as for an unknown site)."""
    return ascii_int(raw) if len(raw) <= MAX_ID_DIGITS else None


def query_int(q: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    """An integer parameter: absent or empty → ``default``; not ASCII digits →
    :class:`BadParameter`; else clamped to ``lo…hi``."""
    raw = q.get(key)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise BadParameter(f"{key}: expected a whole number from {lo} to {hi}")
    digits = raw.lstrip("0") or "0"
    return max(lo, min(hi, int(digits) if len(digits) <= 18 else hi))


def text(raw: str, name: str, max_len: int) -> str:
    """A text parameter cut to ``max_len``; NUL refused."""
    if "\x00" in raw:
        raise BadParameter(f"{name}: NUL character")
    return raw[:max_len]
