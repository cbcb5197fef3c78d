"""/tracking over the app: accepted forms, refusals with their reason and drop count."""

from __future__ import annotations

import json
import time
from urllib.parse import quote_from_bytes

import httpx
import pytest
from conftest import FORM, GOOD, form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.store import Database
from collector.tracking import local_day

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def dropped_rows(db: Database) -> dict[tuple[int, str, str], int]:
    rows = await db.fetch_all("SELECT site_id, day, reason, host, n FROM dropped")
    days = {local_day(int(time.time() * 1000)), local_day(int(time.time() * 1000) - 60_000)}
    assert all(r["day"] in days for r in rows), rows
    return {(r["site_id"], r["reason"], r["host"]): r["n"] for r in rows}


def good(**fields: str | None) -> bytes:
    return form({**GOOD, **fields})


# (case, body, extra headers, status, reason, site counted, host counted)
BAD = [
    ("rec missing", good(rec=None), {}, 400, "rec missing: expected rec=1", 47, ""),
    ("rec wrong", good(rec="0"), {}, 400, "rec missing: expected rec=1", 47, ""),
    ("idsite missing", good(idsite=None), {}, 400, "idsite missing", 0, ""),
    ("idsite text", good(idsite="abc"), {}, 400, "idsite invalid: expected a number", 0, ""),
    ("idsite unicode digit", good(idsite="²"), {}, 400, "idsite invalid: expected a number", 0,
     ""),
    ("idsite too long", good(idsite="1" * 12), {}, 400, "idsite invalid: expected a number", 0,
     ""),
    ("unknown site", good(idsite="999"), {}, 404, "unknown site", 0, ""),
    ("url missing", good(url=None), {}, 400, "url missing", 47, ""),
    ("url not http", good(url="ftp://hanoi.gov.vn/a"), {}, 400,
     "url invalid: expected http(s)://host/...", 47, ""),
    ("url no host", good(url="https:///a"), {}, 400,
     "url invalid: expected http(s)://host/...", 47, ""),
    ("url unreadable", good(url="http://[::1/a"), {}, 400, "url invalid", 47, ""),
    ("url too long", good(url="https://hanoi.gov.vn/" + "a" * 2100), {}, 413,
     "url too long (over 2048 characters)", 47, ""),
    ("host not registered", good(url="https://Evil.Example:8443/x"), {}, 403,
     "host not registered to this site", 47, "evil.example"),
    ("host of another site", good(url="https://dichvucong.hanoi.gov.vn/x"), {}, 403,
     "host not registered to this site", 47, "dichvucong.hanoi.gov.vn"),
    ("body too large", good(action_name="x" * 70_000), {}, 413,
     "body too large (over 65536 bytes)", 0, ""),
    ("invalid UTF-8 escape", good() + b"&action_name=%ff%fe", {}, 400,
     "malformed encoding: not UTF-8", 0, ""),
    ("raw invalid UTF-8", good() + b"&action_name=\xc3\x28", {}, 400,
     "malformed encoding: not UTF-8", 0, ""),
    ("NUL", good() + b"&action_name=a%00b", {}, 400, "malformed encoding: NUL character", 0, ""),
    ("too many parameters", good() + b"&x=1" * 120, {}, 400,
     "too many parameters (more than 100)", 0, ""),
    ("malformed JSON", b'{"requests": [', {}, 400, "malformed JSON", 0, ""),
    ("JSON not bulk", b'{"hits": []}', {}, 400,
     'bulk: expected {"requests": ["?idsite=...", ...]}', 0, ""),
    ("bad e_v", good(e_c="video", e_a="play", e_v="abc"), {}, 400,
     "e_v invalid: expected a number", 47, ""),
    ("e_v infinite", good(e_c="video", e_a="play", e_v="1e400"), {}, 400,
     "e_v invalid: expected a number", 47, ""),
    ("event without action", good(e_c="video"), {}, 400, "e_a missing: an event needs an action",
     47, ""),
    ("dvc state fraction", good(e_c="dvc", e_a="step", e_n="1.000046", e_v="0.5"), {}, 400,
     "dvc state invalid: expected an integer from -1 to 9", 47, ""),
    ("dvc state out of range", good(e_c="dvc", e_a="step", e_n="1.000046", e_v="12"), {}, 400,
     "dvc state invalid: expected an integer from -1 to 9", 47, ""),
    ("dvc state missing", good(e_c="dvc", e_a="step", e_n="1.000046"), {}, 400,
     "dvc state invalid: expected an integer from -1 to 9", 47, ""),
    ("dvc rating 6", good(e_c="dvc", e_a="rating", e_n="1.000046", e_v="6"), {}, 400,
     "dvc rating invalid: expected 1 to 5", 47, ""),
    ("dvc service code", good(e_c="dvc", e_a="step", e_n="<script>", e_v="1"), {}, 400,
     "dvc service code invalid", 47, ""),
    ("bot user agent", good(), {"user-agent": GOOGLEBOT}, 403, "bot", 47, ""),
    ("no user agent", good(), {"user-agent": ""}, 403, "bot", 47, ""),
    ("webdriver", good(wd="1"), {}, 403, "bot", 47, ""),
]


@pytest.mark.parametrize(
    "body, headers, status, reason, site, host", [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
async def test_bad_hit_refused_and_counted(
    client: httpx.AsyncClient, db: Database, flush, body: bytes, headers: dict[str, str],
    status: int, reason: str, site: int, host: str,
) -> None:
    r = await client.post("/tracking", content=body, headers={**FORM, **headers})
    assert r.status_code == status, r.text
    assert r.headers["x-giamsat-error"] == reason
    assert r.text == reason + "\n"
    assert r.headers["access-control-allow-origin"] == "*"
    await flush()
    assert await dropped_rows(db) == {(site, reason, host): 1}
    assert (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == 1  # the flush hit


async def test_drop_counts_add_up_per_reason(client: httpx.AsyncClient, db: Database,
                                             flush) -> None:
    for _ in range(3):
        await client.post("/tracking", content=good(url="https://evil.example/"), headers=FORM)
    await client.post("/tracking", content=good(url="https://other.example/"), headers=FORM)
    await client.post("/tracking", content=good(idsite="999"), headers=FORM)
    await flush()
    assert await dropped_rows(db) == {
        (47, "host not registered to this site", "evil.example"): 3,
        (47, "host not registered to this site", "other.example"): 1,
        (0, "unknown site", ""): 1,
    }


async def test_drop_counts_flushed_without_further_hits(client: httpx.AsyncClient,
                                                        db: Database) -> None:
    r = await client.post("/tracking", content=good(idsite="999"), headers=FORM)
    assert r.status_code == 404
    for _ in range(60):  # the writer flushes lone drop counts within about a second
        if await db.fetch_all("SELECT n FROM dropped"):
            break
        await _sleep(0.05)
    assert await dropped_rows(db) == {(0, "unknown site", ""): 1}


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


async def test_get_answers_gif_and_stores(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.get("/tracking",
                         params={**GOOD, "action_name": "Trang chủ", "res": "1920x1080"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a")
    assert r.headers["cache-control"] == "no-store"
    row = await db.fetch_one("SELECT kind, title, screen, host, path FROM hits")
    assert row == {"kind": "pageview", "title": "Trang chủ", "screen": "1920x1080",
                   "host": "hanoi.gov.vn", "path": "/tin-tuc"}


async def test_get_send_image_0_answers_204(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.get("/tracking", params={**GOOD, "send_image": "0"})
    assert r.status_code == 204 and r.content == b""
    assert (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == 1


async def test_matomo_php_alias(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/matomo.php", content=good(), headers=FORM)
    assert r.status_code == 204
    assert (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == 1


async def test_post_form_event_outlink_download_ping(client: httpx.AsyncClient,
                                                     db: Database) -> None:
    bodies = [
        good(e_c="Video", e_a="play", e_n="intro", e_v="3.5"),
        good(link="https://dichvucong.gov.vn/p/home"),
        good(download="https://hanoi.gov.vn/files/bieu-mau.pdf"),
        good(ping="1"),
    ]
    for body in bodies:
        r = await client.post("/tracking", content=body, headers=FORM)
        assert r.status_code == 204, r.text
    rows = await db.fetch_all("SELECT kind, e_c, e_a, e_n, e_v, target FROM hits ORDER BY id")
    assert rows == [
        {"kind": "event", "e_c": "Video", "e_a": "play", "e_n": "intro", "e_v": 3.5, "target": ""},
        {"kind": "outlink", "e_c": "", "e_a": "", "e_n": "", "e_v": None,
         "target": "https://dichvucong.gov.vn/p/home"},
        {"kind": "download", "e_c": "", "e_a": "", "e_n": "", "e_v": None,
         "target": "https://hanoi.gov.vn/files/bieu-mau.pdf"},
        {"kind": "ping", "e_c": "", "e_a": "", "e_n": "", "e_v": None, "target": ""},
    ]


async def test_dvc_step_and_rating(client: httpx.AsyncClient, db: Database) -> None:
    dvc = {**GOOD, "idsite": "48", "url": "https://dichvucong.hanoi.gov.vn/thu-tuc/1.000046"}
    for e_a, e_v in (("step", "-1"), ("step", "1"), ("rating", "5")):
        r = await client.post("/tracking", content=form(
            {**dvc, "e_c": "dvc", "e_a": e_a, "e_n": "1.000046", "e_v": e_v,
             "dvc_extra": "HS-2026-001;01072026;Nguyễn Văn A;012345678901"}), headers=FORM)
        assert r.status_code == 204, r.text
    rows = await db.fetch_all(
        "SELECT site_id, kind, e_c, e_a, dvc_service, dvc_state, e_v, dvc_ref <> '' AS has_ref "
        "FROM hits ORDER BY id")
    assert rows == [
        {"site_id": 48, "kind": "dvc", "e_c": "dvc", "e_a": "step", "dvc_service": "1.000046",
         "dvc_state": -1, "e_v": -1.0, "has_ref": 1},
        {"site_id": 48, "kind": "dvc", "e_c": "dvc", "e_a": "step", "dvc_service": "1.000046",
         "dvc_state": 1, "e_v": 1.0, "has_ref": 1},
        {"site_id": 48, "kind": "rating", "e_c": "dvc", "e_a": "rating",
         "dvc_service": "1.000046", "dvc_state": None, "e_v": 5.0, "has_ref": 0},
    ]


async def test_text_plain_beacon(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/tracking", content=good(url="https://www.hanoi.gov.vn/a"),
                          headers={"content-type": "text/plain;charset=UTF-8"})
    assert r.status_code == 204
    assert (await db.fetch_one("SELECT host, path FROM hits")) == {"host": "hanoi.gov.vn",
                                                                   "path": "/a"}


async def test_query_string_and_body_merge(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/tracking?idsite=47&rec=1",
                          content=b"url=https%3A%2F%2Fhanoi.gov.vn%2Fq", headers=FORM)
    assert r.status_code == 204
    assert (await db.fetch_one("SELECT path FROM hits")) == {"path": "/q"}


async def test_bulk_mixed(client: httpx.AsyncClient, db: Database, flush) -> None:
    reqs = [
        "?" + good(url="https://hanoi.gov.vn/1").decode(),
        "?" + good(url="https://evil.example/2").decode(),
        good(url="https://hanoi.gov.vn/3").decode(),  # without the leading "?"
        "?" + good(rec=None).decode(),
        "?idsite=47&rec=1&url=https%3A%2F%2Fhanoi.gov.vn%2F%ff",
    ]
    r = await client.post("/tracking", content=json.dumps({"requests": reqs}),
                          headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["tracked"] == 2 and doc["invalid"] == 3
    assert [i["index"] for i in doc["invalid_requests"]] == [1, 3, 4]
    assert r.headers["x-giamsat-error"] == "3 invalid: host not registered to this site"
    await flush()
    paths = [x["path"] for x in await db.fetch_all("SELECT path FROM hits ORDER BY id")]
    assert paths == ["/1", "/3", "/tin-tuc/flush"]
    assert await dropped_rows(db) == {
        (47, "host not registered to this site", "evil.example"): 1,
        (47, "rec missing: expected rec=1", ""): 1,
        (0, "malformed encoding: not UTF-8", ""): 1,
    }


async def test_bulk_all_invalid_is_400(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/tracking", content=json.dumps({"requests": ["?idsite=999&rec=1"]}))
    assert r.status_code == 400
    assert r.json()["tracked"] == 0
    for body in ('{"requests": []}', json.dumps({"requests": ["?a=1"] * 101}),
                 '{"requests": [1]}', '{"requests": "x"}'):
        r = await client.post("/tracking", content=body)
        assert r.status_code == 400, body
        assert r.headers["x-giamsat-error"].startswith("bulk: expected")


async def test_bulk_lone_surrogate_refused_not_poisoning_batch(client: httpx.AsyncClient,
                                                               db: Database) -> None:
    body = json.dumps({"requests": ["?" + good(url="https://hanoi.gov.vn/ok").decode(),
                                    "?idsite=47&rec=1&url=https://hanoi.gov.vn/\ud800"]})
    r = await client.post("/tracking", content=body)
    assert r.status_code == 200, r.text
    assert r.json()["invalid_requests"][0]["reason"] == "malformed encoding: not UTF-8"
    assert [x["path"] for x in await db.fetch_all("SELECT path FROM hits")] == ["/ok"]


async def test_options_cors_preflight(client: httpx.AsyncClient) -> None:
    r = await client.options("/tracking", headers={
        "origin": "https://hanoi.gov.vn", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"].lower() == "content-type"
    assert "access-control-allow-credentials" not in r.headers


async def test_cors_on_success(client: httpx.AsyncClient) -> None:
    r = await client.post("/tracking", content=good(),
                          headers={**FORM, "origin": "https://hanoi.gov.vn"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in r.headers


async def test_noscript_get_uses_referer(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.get("/tracking?idsite=47&rec=1",
                         headers={"referer": "https://hanoi.gov.vn/gioi-thieu"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert (await db.fetch_one("SELECT path, url FROM hits")) == {
        "path": "/gioi-thieu", "url": "https://hanoi.gov.vn/gioi-thieu"}


async def test_noscript_without_referer_is_url_missing(client: httpx.AsyncClient) -> None:
    r = await client.get("/tracking?idsite=47&rec=1")
    assert r.status_code == 400 and r.headers["x-giamsat-error"] == "url missing"


async def test_healthz(client: httpx.AsyncClient) -> None:
    await client.post("/tracking", content=good(), headers=FORM)
    r = await client.get("/healthz")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "ok" and doc["database_ok"] is True and doc["sites"] == 2
    assert doc["writer"]["rows"] == 1


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_value = st.one_of(_text, st.sampled_from(["47", "48", "1", "https://hanoi.gov.vn/a", "dvc",
                                           "step", "rating", "-1", "5", "1e309", "nan", "%ff"]))
_keys = st.sampled_from(["idsite", "rec", "url", "urlref", "action_name", "e_c", "e_a", "e_n",
                         "e_v", "link", "download", "ping", "res", "lang", "pv_id", "dvc_extra",
                         "send_image", "wd", "ua", "x"])
_params = st.dictionaries(st.one_of(_keys, _text), _value, max_size=12)
_bodies = st.one_of(
    st.binary(max_size=300),
    _text.map(str.encode),
    _params.map(lambda p: form(p)),  # noqa: PLW0108
    st.lists(st.one_of(_params.map(lambda p: "?" + form(p).decode()), _text), max_size=5).map(
        lambda reqs: json.dumps({"requests": reqs}).encode()),
    st.recursive(st.none() | st.booleans() | st.integers() | _text,
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
                 max_leaves=6).map(lambda d: json.dumps(d).encode()),
)


def _raw_query(b: bytes) -> bytes:
    """Any bytes as a query string a client can send: raw '%', '&', '=', '+' are kept."""
    return quote_from_bytes(b, safe="&=%+;/?:@").encode()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=st.one_of(st.binary(max_size=200).map(_raw_query), _params.map(form)), body=_bodies,
       method=st.sampled_from(["GET", "POST"]),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain",
                                     "application/json", "multipart/form-data", ""]))
async def test_random_input_never_5xx(client: httpx.AsyncClient, query: bytes, body: bytes,
                                      method: str, content_type: str) -> None:
    url = httpx.URL("/tracking", query=query)
    headers = {"content-type": content_type} if content_type else {}
    r = await client.request(method, url, content=body if method == "POST" else None,
                             headers=headers)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers.get("x-giamsat-error")


async def test_methods_and_the_router_path(client: httpx.AsyncClient, config) -> None:
    """Other methods get 405; before start-up (no lifespan yet) /tracking answers 503, so a
    hit is never acknowledged without a writer behind it."""
    r = await client.put("/tracking", content=good(), headers=FORM)
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    from collector.app import create_app

    cold = create_app(config)  # no lifespan: nothing to write with
    transport = httpx.ASGITransport(app=cold)
    async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as c:
        r = await c.post("/tracking", content=good(), headers=FORM)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


async def test_matomo_path_is_the_same_endpoint(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/matomo.php", content=good(), headers=FORM)
    assert r.status_code == 204
    assert (await db.fetch_one("SELECT count(*) AS n FROM hits"))["n"] == 1
