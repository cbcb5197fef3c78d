"""POST /TrackingMCDT through the real app: tokens, validation, idempotency, privacy."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import metrics
from collector.dossiers import issue_token
from collector.rollup import rollup
from collector.store import Database

SECRET_ID = "001234567890"  # a CCCD number: must never be stored
APPLICANT = "Nguyễn Văn An"


def event(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "CodeProfile": "HS-PROFILE-77", "SiteId": "48", "CodeTTHC": "1.004227",
        "NameTTHC": f"Cấp giấy phép xây dựng cho {SECRET_ID}",
        "MaHoSo": "000.00.26.H26-260301-0001",
        "Status": 1, "FormsReception": 1, "FormsPayments": 1, "Level": 4,
        "IsFromDVCQG": 1, "IsDVCBC": 0,
        "Data": {"hoTen": APPLICANT, "cccd": SECRET_ID},
        "User": json.dumps({"ID_local": "u-991", "ID_QG": SECRET_ID, "TYPE": "CongDan",
                            "LOCATION": "H26"}),
    }
    doc.update(over)
    return doc


@pytest.fixture
async def token(client: httpx.AsyncClient, db: Database) -> str:
    return await issue_token(db, 48)


async def post(client: httpx.AsyncClient, doc: Any, token: str | None,
               bearer: bool = True) -> httpx.Response:
    headers = {}
    if token is not None:
        headers = ({"authorization": f"Bearer {token}"} if bearer
                   else {"x-giamsat-token": token})
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return await client.post("/TrackingMCDT", content=body,
                             headers={"content-type": "application/json", **headers})


async def dropped_reasons(client: httpx.AsyncClient, db: Database) -> dict[str, int]:
    """Drop counts ride with the writer's next commit: an empty submit flushes them."""
    await client.app.state.giamsat.writer.submit([])  # type: ignore[attr-defined]
    rows = await db.fetch_all("SELECT reason, SUM(n) AS n FROM dropped GROUP BY reason")
    return {r["reason"]: r["n"] for r in rows}


async def test_event_stored_once_and_without_personal_data(client, db, token) -> None:
    r = await post(client, event(), token)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success", "duplicate": False}
    again = await post(client, event(), token, bearer=False)
    assert again.json() == {"status": "success", "duplicate": True}
    rows = await db.fetch_all("SELECT * FROM dossiers")
    assert len(rows) == 1
    row = rows[0]
    assert (row["site_id"], row["service"], row["status"], row["reception"], row["payment"],
            row["level"], row["from_dvcqg"], row["dvcbc"], row["user_type"],
            row["user_location"]) == (48, "1.004227", 1, 1, 1, 4, 1, 0, "CongDan", "H26")
    stored = json.dumps(rows, ensure_ascii=False)
    for secret in (SECRET_ID, "000.00.26.H26-260301-0001", "HS-PROFILE-77", "u-991",
                   APPLICANT):
        assert secret not in stored
    assert row["service_name"] == "Cấp giấy phép xây dựng cho [id]"
    assert len(row["dossier"]) == 32 and len(row["user_ref"]) == 32


async def test_dossier_hash_matches_trackdvc_reference(client, db, token) -> None:
    """The same dossier id gives the same keyed hash in both feeds (reconciliation)."""
    await post(client, event(), token)
    r = await client.post(
        "/tracking", content=b"idsite=48&rec=1&url=https://dichvucong.hanoi.gov.vn/nop"
        b"&e_c=dvc&e_a=step&e_n=1.004227&e_v=1"
        b"&dvc_extra=000.00.26.H26-260301-0001;01032026;Nguyen%20Van%20An;001234567890",
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 204, r.text
    ref = await db.fetch_one("SELECT dvc_ref FROM hits")
    dossier = await db.fetch_one("SELECT dossier FROM dossiers")
    assert ref and dossier and ref["dvc_ref"] == dossier["dossier"]


@pytest.mark.parametrize(("over", "status", "reason"), [
    ({"Level": 7}, 400, "Level invalid: expected one of 0, 1, 2, 3, 4"),
    ({"Level": "abc"}, 400, "Level invalid: expected a number"),
    ({"Status": 5}, 400, "Status invalid: expected one of 0, 1, 2, 3, 4"),
    ({"Status": True}, 400, "Status invalid: expected a number"),
    ({"FormsReception": 0}, 400, "FormsReception invalid: expected one of 1, 2"),
    ({"FormsPayments": 3}, 400, "FormsPayments invalid: expected one of 0, 1, 2"),
    ({"IsFromDVCQG": 2}, 400, "IsFromDVCQG invalid: expected one of 0, 1"),
    ({"IsDVCBC": -1}, 400, "IsDVCBC invalid: expected one of 0, 1, 2"),
    ({"MaHoSo": ""}, 400, "MaHoSo missing"),
    ({"CodeProfile": None}, 400, "CodeProfile missing"),
    ({"CodeTTHC": "1.2 <script>"}, 400, "CodeTTHC invalid: expected a procedure code"),
    ({"User": "{not json"}, 400, "User invalid: expected a JSON object"),
    ({"User": json.dumps({"LOCATION": "H26; DROP"})}, 400,
     "User.LOCATION invalid: expected a unit code such as H26"),
    ({"SiteId": "abc"}, 400, "SiteId invalid: expected a number"),
    ({"SiteId": 999}, 404, "SiteId unknown"),
    # text no storage can hold: NUL (PostgreSQL refuses it), lone surrogates ("\ud800")
    ({"MaHoSo": "A\x00B"}, 400,
     "MaHoSo invalid: contains a NUL character or an unpaired surrogate"),
    ({"CodeProfile": "\ud800"}, 400,
     "CodeProfile invalid: contains a NUL character or an unpaired surrogate"),
    ({"NameTTHC": "Cấp phép \udfff"}, 400,
     "NameTTHC invalid: contains a NUL character or an unpaired surrogate"),
    ({"User": json.dumps({"ID_QG": "0\x00", "LOCATION": "H26"})}, 400,
     "User.ID_QG invalid: contains a NUL character or an unpaired surrogate"),
    ({"User": {"TYPE": "\udbff", "LOCATION": "H26"}}, 400,
     "User.TYPE invalid: contains a NUL character or an unpaired surrogate"),
    ({"CodeTTHC": "1.2\x00"}, 400,
     "CodeTTHC invalid: contains a NUL character or an unpaired surrogate"),
    # int() reads non-ASCII digits: they are not numbers here
    ({"Status": "\u0661"}, 400, "Status invalid: expected a number"),      # Arabic-Indic 1
    ({"Level": "\uff14"}, 400, "Level invalid: expected a number"),        # fullwidth 4
    ({"SiteId": "\u0664\u0668"}, 400, "SiteId invalid: expected a number"),
])
async def test_invalid_field_is_named_and_counted(client, db, token, over, status,
                                                  reason) -> None:
    r = await post(client, event(**over), token)
    assert r.status_code == status
    assert r.headers["x-giamsat-error"] == f"dossier: {reason}"
    assert r.json() == {"status": "error", "reason": f"dossier: {reason}"}
    assert await dropped_reasons(client, db) == {f"dossier: {reason}": 1}
    site = await db.fetch_one("SELECT site_id FROM dropped")
    assert site == {"site_id": 0 if status == 404 or "SiteId" in reason else 48}
    assert await db.fetch_all("SELECT id FROM dossiers") == []


async def test_missing_field_and_bad_bodies(client, db, token) -> None:
    doc = event()
    del doc["Level"]
    assert (await post(client, doc, token)).headers["x-giamsat-error"] == "dossier: Level missing"
    assert (await post(client, b"{oops", token)).status_code == 400
    assert (await post(client, [event()], token)).json()["reason"] == (
        "dossier: expected one JSON object")
    big = event(NameTTHC="x" * 70_000)
    assert (await post(client, big, token)).status_code == 413


@pytest.mark.parametrize(("body", "headers", "status", "reason"), [
    (b'{"MaHoSo": "\xff\xfe"}', {}, 400, "malformed JSON"),           # not UTF-8
    (b"[" * 60_000, {}, 400, "malformed JSON: nested too deeply"),
    (json.dumps(event()).encode(), {"content-length": b"\xb2"}, 400,
     "content-length invalid: expected a number"),                     # '²'.isdigit()
])
async def test_undecodable_bodies_are_400_and_counted(client, db, token, body, headers, status,
                                                      reason) -> None:
    r = await client.post("/TrackingMCDT", content=body, headers={
        "content-type": "application/json", "authorization": f"Bearer {token}", **headers})
    assert (r.status_code, r.headers["x-giamsat-error"]) == (status, f"dossier: {reason}")
    assert await dropped_reasons(client, db) == {f"dossier: {reason}": 1}


async def test_nested_user_is_refused_by_name(client, db, token) -> None:
    r = await post(client, event(User="[" * 30_000), token)
    assert r.headers["x-giamsat-error"] == "dossier: User invalid: expected a JSON object"


_odd_text = st.one_of(
    st.text(max_size=20),
    # control characters (NUL among them) and lone surrogates mixed with ordinary text
    st.text(st.characters(categories=["Cc", "Cs", "Nd", "L"]), max_size=8),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\udc00b", "\u0661", "\uff11\uff12",
                     "1", "4", "-1", "1e3", "H26", "1.004227", "\u00b2", "9" * 30]),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_odd_text, inner, max_size=3),
    max_leaves=8)
_field = st.sampled_from(sorted(event()))
_stored_text = st.sampled_from(["MaHoSo", "CodeProfile", "NameTTHC", "CodeTTHC", "SiteId",
                                "Status", "Level"])
_user_field = st.sampled_from(["ID_local", "ID_QG", "TYPE", "LOCATION"])


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    """Bytes; any JSON; a valid event with fields replaced, removed or added; one with odd
    User fields; one with a single field holding odd text (the rest valid, so it gets as far
    as hashing and storage)."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return json.dumps(draw(_json)).encode()
    doc = event()
    if kind == 2:
        for name in draw(st.lists(_field, max_size=4)):
            if draw(st.booleans()):
                doc[name] = draw(_json)
            else:
                doc.pop(name, None)
        doc.update(draw(st.dictionaries(_odd_text, _json, max_size=2)))
    elif kind == 3:  # User as an object or a JSON string of odd fields
        user = draw(st.dictionaries(_user_field, _json, max_size=4))
        doc["User"] = draw(st.sampled_from([user, json.dumps(user)]))
    else:
        doc[draw(_stored_text)] = draw(_odd_text)
    return json.dumps(doc).encode()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_documents())
async def test_random_bodies_never_5xx(client, token, body: bytes) -> None:
    r = await post(client, body, token)
    assert r.status_code < 500, (r.status_code, r.text, body[:300])
    if r.status_code >= 400:
        assert r.headers["x-giamsat-error"].startswith("dossier: ")


async def test_authentication(client, db, token) -> None:
    r = await post(client, event(), None)
    assert (r.status_code, r.headers["x-giamsat-error"]) == (401, "dossier: token missing")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await post(client, event(), token + "x")
    assert (r.status_code, r.headers["x-giamsat-error"]) == (403, "dossier: token invalid")
    # a token is bound to its site
    other = await issue_token(db, 47)
    r = await post(client, event(), other)
    assert r.status_code == 403
    # rotation: the old token stops working
    new = await issue_token(db, 48)
    assert (await post(client, event(), token)).status_code == 403
    assert (await post(client, event(), new)).status_code == 200
    stored = await db.fetch_all("SELECT token_hash FROM site_tokens")
    assert new not in json.dumps(stored)
    assert await dropped_reasons(client, db) == {"dossier: token missing": 1,
                                            "dossier: token invalid": 3}
    with pytest.raises(LookupError):
        await issue_token(db, 12345)


async def test_level_two_is_accepted_as_not_online(client, db, token) -> None:
    r = await post(client, event(Level="2", FormsReception="2", Status="1"), token)
    assert r.status_code == 200
    assert (await db.fetch_one("SELECT level, reception FROM dossiers")) == {
        "level": 2, "reception": 2}


async def test_dossier_rollup_and_kpis(client, db, token) -> None:
    events = [
        event(MaHoSo="A"),                                                # online L4, paid on
        event(MaHoSo="A"),                                                # duplicate
        event(MaHoSo="A", Status=3),                                      # result returned
        event(MaHoSo="B", FormsReception=2, Level=1, FormsPayments=2),    # in person, paid there
        event(MaHoSo="C", Level=3, FormsPayments=0),                      # online partial
        event(MaHoSo="D", CodeTTHC="2.000001", FormsPayments=0),          # other service, L4
        event(MaHoSo="E", Status=2),                                      # processing only
    ]
    for doc in events:
        assert (await post(client, doc, token)).status_code == 200
    report = await rollup(db)
    assert report.dossiers == 6
    # the collector stamps events with the clock: the span is the days they were stored on
    stored = await db.fetch_one("SELECT min(day) AS lo, max(day) AS hi FROM dossiers")
    span = (stored["lo"], stored["hi"])
    k = await metrics.kpis(db, metrics.Scope.site(48), *span)
    # received: A B C D = 4; online: A C D = 3; full online: A D = 2; paid online A, in person B
    assert (k["received"], k["received_online"], k["full_online"]) == (4, 3, 2)
    assert (k["online_rate"], k["full_online_rate"], k["online_payment_rate"]) == (
        0.75, 0.5, 0.5)
    services = {s["service"]: s for s in await metrics.dossier_services(
        db, metrics.Scope.agency("H26"), *span)}
    assert (services["1.004227"]["received"], services["1.004227"]["results"],
            services["1.004227"]["events"]) == (3, 1, 5)
    assert (services["2.000001"]["received"], services["2.000001"]["full_online"]) == (1, 1)
    assert (await rollup(db)).dossiers == 0
