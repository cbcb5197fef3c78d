"""``POST /TrackingMCDT``: dossier events sent server-to-server by one-stop (một cửa) systems.

One JSON object per request with the fields ``CodeProfile, SiteId, CodeTTHC, NameTTHC,
MaHoSo, Status, FormsReception, FormsPayments, Level, IsFromDVCQG, IsDVCBC, Data, User``.
Numbers may be sent as JSON numbers or numeric strings.

Authentication: a per-site secret token, ``Authorization: Bearer <token>`` or
``X-Giamsat-Token: <token>``, created or rotated with ``giamsat site token SITE_ID``.
Only its SHA-256 is stored (``site_tokens``); a site without a token cannot send.

Validation (every refusal is a 4xx whose one-line reason names the field, in the body and
in ``X-Giamsat-Error``, and is counted in ``dropped`` as ``dossier: <reason>``):
Status 0–4, FormsReception 1–2, FormsPayments 0–2, Level 0, 1, 2, 3, 4, IsFromDVCQG 0–1,
IsDVCBC 0–2, CodeTTHC a procedure code, MaHoSo and CodeProfile non-empty, User a JSON
object (or a JSON string of one) whose LOCATION is a short code. Level 2 is accepted:
it is the old "mức độ 2" (forms online, filing in person) that older one-stop systems
still send; it counts as not online, like 0 and 1. Numbers are ASCII digits (``int()``
would also read ``'١'`` or ``'１'``). Text holding a NUL or an unpaired surrogate (JSON
``"\\ud800"``) is refused by field name: no storage holds it (PostgreSQL refuses NUL in
text, neither backend encodes a lone surrogate). A body that is not UTF-8 JSON, or is nested
too deeply for the decoder, is "malformed JSON".

Idempotency: the event key is (site, keyed hash of MaHoSo, Status). Posting the same
event again answers ``200 {"duplicate": true}`` and changes nothing: the first copy's
fields stay. SQLite enforces the key with a UNIQUE constraint; PostgreSQL, whose
``dossiers`` is partitioned by month (a unique index there would have to include the
month), with a trigger that skips a second copy (migration 0007) — hence an
``ON CONFLICT DO NOTHING`` without a conflict target. A dossier moving through statuses
(received → processing → returned) is one event per status.

Personal data never reaches storage: MaHoSo and CodeProfile become keyed hashes
(HMAC with the installation secret — the MaHoSo hash equals the ``dvc_ref`` of a
``trackDVC`` carrying the same dossier id, so the two feeds can be reconciled);
``User.ID_QG`` / ``ID_local`` become one keyed hash; ``Data`` is dropped whole;
NameTTHC (a procedure name) is kept with ID numbers, phones and e-mails redacted;
``User.LOCATION`` (province code) and ``User.TYPE`` are kept.

Acknowledged means committed: the answer is sent after the insert has committed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.bodies import MalformedLength, read_limited
from collector.privacy import keyed_hash, redact_text
from collector.store import Database
from collector.tracking import local_day

MAX_BODY = 65536
_CODE = re.compile(r"^[\w.\-/]{1,64}$")
_LOCATION = re.compile(r"^[\w.\-]{0,32}$")
_NUMBER = re.compile(r"-?[0-9]{1,9}")  # ASCII digits only: int() also reads '١٢' and '１２'
# text no storage can hold: NUL (PostgreSQL refuses it in text) and lone surrogates (JSON
# "\ud800" decodes to one; it has no UTF-8 form)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# field → allowed integer values
CHOICES: dict[str, tuple[int, ...]] = {
    "Status": (0, 1, 2, 3, 4),
    "FormsReception": (1, 2),
    "FormsPayments": (0, 1, 2),
    "Level": (0, 1, 2, 3, 4),
    "IsFromDVCQG": (0, 1),
    "IsDVCBC": (0, 1, 2),
}

_INSERT = """
INSERT INTO dossiers (site_id, ts, day, dossier, profile, service, service_name, status,
  reception, payment, level, from_dvcqg, dvcbc, user_type, user_location, user_ref)
VALUES (:site_id, :ts, :day, :dossier, :profile, :service, :service_name, :status,
  :reception, :payment, :level, :from_dvcqg, :dvcbc, :user_type, :user_location, :user_ref)
ON CONFLICT DO NOTHING
"""


class InvalidDossier(Exception):
    """A refused dossier event: HTTP ``status`` and a one-line ``reason`` naming the field."""

    def __init__(self, reason: str, status: int = 400, site_id: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.site_id = site_id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue_token(db: Database, site_id: int) -> str:
    """Create or rotate the feed token of a site; returns the token (shown once)."""
    if await db.fetch_one("SELECT id FROM sites WHERE id = :id", {"id": site_id}) is None:
        raise LookupError(f"site {site_id} is not registered")
    token = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO site_tokens (site_id, token_hash, created_ts) VALUES (:s, :h, :t) "
        "ON CONFLICT (site_id) DO UPDATE SET token_hash = excluded.token_hash, "
        "created_ts = excluded.created_ts",
        {"s": site_id, "h": token_hash(token), "t": int(time.time() * 1000)},
    )
    return token


def _int(doc: Mapping[str, Any], name: str) -> int:
    if name not in doc:
        raise InvalidDossier(f"{name} missing")
    raw = doc[name]
    if isinstance(raw, bool):
        raise InvalidDossier(f"{name} invalid: expected a number")
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int):
        raise InvalidDossier(f"{name} invalid: expected a number")
    if name in CHOICES and raw not in CHOICES[name]:
        allowed = ", ".join(str(v) for v in CHOICES[name])
        raise InvalidDossier(f"{name} invalid: expected one of {allowed}")
    return raw


def _text(doc: Mapping[str, Any], name: str, max_len: int, required: bool = True) -> str:
    if name not in doc or doc[name] is None:
        if required:
            raise InvalidDossier(f"{name} missing")
        return ""
    raw = doc[name]
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise InvalidDossier(f"{name} invalid: expected a string")
    if _UNSTORABLE.search(raw):
        raise InvalidDossier(f"{name} invalid: contains a NUL character or an unpaired "
                             "surrogate")
    raw = raw.strip()
    if required and not raw:
        raise InvalidDossier(f"{name} missing")
    if len(raw) > max_len:
        raise InvalidDossier(f"{name} invalid: longer than {max_len} characters")
    return raw


def _user(doc: Mapping[str, Any]) -> dict[str, str]:
    if "User" not in doc:
        raise InvalidDossier("User missing")
    raw = doc["User"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            raise InvalidDossier("User invalid: expected a JSON object") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidDossier("User invalid: expected a JSON object")
    fields = {}
    for key in ("ID_local", "ID_QG", "TYPE", "LOCATION"):
        try:
            fields[key] = _text(raw, key, 128, required=False)
        except InvalidDossier as e:
            raise InvalidDossier(f"User.{e.reason}") from None
    if not _LOCATION.match(fields["LOCATION"]):
        raise InvalidDossier("User.LOCATION invalid: expected a unit code such as H26")
    if len(fields["TYPE"]) > 32:
        raise InvalidDossier("User.TYPE invalid: longer than 32 characters")
    return fields


def parse_site_id(doc: Mapping[str, Any]) -> int:
    site_id = _int(doc, "SiteId")
    if not 0 < site_id < 10**9:
        raise InvalidDossier("SiteId invalid: expected a positive number")
    return site_id


def parse_event(doc: Mapping[str, Any], site_id: int, secret: bytes, now_ms: int) -> dict:
    """A validated event → a ``dossiers`` row with personal data hashed or dropped."""
    service = _text(doc, "CodeTTHC", 64)
    if not _CODE.match(service):
        raise InvalidDossier("CodeTTHC invalid: expected a procedure code")
    ma_ho_so = _text(doc, "MaHoSo", 128)
    profile = _text(doc, "CodeProfile", 128)
    name = _text(doc, "NameTTHC", 1024, required=False)
    row = {
        "status": _int(doc, "Status"),
        "reception": _int(doc, "FormsReception"),
        "payment": _int(doc, "FormsPayments"),
        "level": _int(doc, "Level"),
        "from_dvcqg": _int(doc, "IsFromDVCQG"),
        "dvcbc": _int(doc, "IsDVCBC"),
    }
    user = _user(doc)
    person = f"qg:{user['ID_QG']}" if user["ID_QG"] else (
        f"local:{user['ID_local']}" if user["ID_local"] else "")
    row.update(
        site_id=site_id, ts=now_ms, day=local_day(now_ms),
        dossier=keyed_hash(secret, ma_ho_so), profile=keyed_hash(secret, profile),
        service=service, service_name=redact_text(name)[:512],
        user_type=redact_text(user["TYPE"]), user_location=user["LOCATION"],
        user_ref=keyed_hash(secret, person) if person else "",
    )
    return row


def _presented_token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-giamsat-token", "").strip()


class DossierFeed:
    """The ``/TrackingMCDT`` endpoint (one instance per app)."""

    def __init__(self, db: Database, secret: bytes, sites: Any, writer: Any,
                 max_body: int = MAX_BODY) -> None:
        self.db = db
        self.secret = secret
        self.sites = sites  # SiteIndex: .hosts maps registered site ids
        self.writer = writer  # Writer: .drop() counts refusals
        self.max_body = max_body

    def _refuse(self, e: InvalidDossier, now_ms: int) -> Response:
        reason = f"dossier: {e.reason}"
        self.writer.drop(e.site_id, local_day(now_ms), reason)
        headers = {"x-giamsat-error": reason, "cache-control": "no-store"}
        if e.status == 401:
            headers["www-authenticate"] = 'Bearer realm="giamsat"'
        return JSONResponse({"status": "error", "reason": reason}, e.status, headers=headers)

    async def _authenticate(self, request: Request, site_id: int) -> None:
        token = _presented_token(request)
        if not token:
            raise InvalidDossier("token missing", 401, site_id)
        row = await self.db.fetch_one(
            "SELECT token_hash FROM site_tokens WHERE site_id = :s", {"s": site_id})
        if row is None or not hmac.compare_digest(row["token_hash"], token_hash(token)):
            raise InvalidDossier("token invalid", 403, site_id)

    async def __call__(self, request: Request) -> Response:
        now_ms = int(time.time() * 1000)
        site_id = 0
        try:
            body = await self._body(request)
            try:
                doc = json.loads(body)
            except (UnicodeDecodeError, ValueError):
                raise InvalidDossier("malformed JSON") from None
            except RecursionError:  # "[[[[…": the C decoder's depth limit
                raise InvalidDossier("malformed JSON: nested too deeply") from None
            if not isinstance(doc, dict):
                raise InvalidDossier("expected one JSON object")
            site_id = parse_site_id(doc)
            if site_id not in self.sites.hosts:
                site_id = 0  # counted under site 0, like unknown sites on /tracking
                raise InvalidDossier("SiteId unknown", 404)
            await self._authenticate(request, site_id)
            row = parse_event(doc, site_id, self.secret, now_ms)
        except InvalidDossier as e:
            e.site_id = e.site_id or site_id
            return self._refuse(e, now_ms)
        try:
            inserted = await self.db.execute(_INSERT, row)
        except Exception as e:  # storage failure: nothing acknowledged
            return JSONResponse(
                {"status": "error", "reason": "storage unavailable, retry"}, 503,
                headers={"retry-after": "5",
                         "x-giamsat-error": f"storage unavailable: {type(e).__name__}"},
            )
        return JSONResponse({"status": "success", "duplicate": inserted == 0},
                            headers={"cache-control": "no-store"})

    async def _body(self, request: Request) -> bytes:
        try:
            body = await read_limited(request, self.max_body)
        except MalformedLength as e:
            raise InvalidDossier(str(e)) from None
        if body is None:
            raise InvalidDossier(f"body too large (over {self.max_body} bytes)", 413)
        return body
