"""The HTTP edge of ``/tracking``: request → parse → enrich → group commit → answer.

A plain ASGI app, not a Starlette endpoint: the app hands ``/tracking`` straight to it,
before Starlette's middleware and router, and it answers with pre-encoded headers. That
is most of what a hit costs besides its parsing and its share of a commit.

Answers: ``204`` (POST), a 1×1 GIF (GET, unless ``send_image=0``), ``200`` JSON for bulk
requests, ``204`` to a CORS preflight, ``405`` to other methods. A refused hit gets its
4xx, its reason in ``X-Giamsat-Error`` and in the body, and is counted in ``dropped`` per
site, day and reason. Storage failure: ``503`` with ``Retry-After``; nothing was
acknowledged. A client that disconnects before its body arrived gets nothing, and
nothing is stored. CORS: any origin may send (hits carry no credentials; the hostname
check is what ties a hit to its site).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from collector.enrich import Enricher, client_ip
from collector.registry import SiteIndex
from collector.tracking import InvalidHit, local_day, parse_hit, parse_query
from collector.writer import Unavailable, Writer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type",
    "access-control-max-age": "86400",
}
MAX_BULK = 100


def _raw(headers: dict[str, str]) -> Headers:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


# A hit is a CORS "simple request": its answer needs only the allow-origin header (the
# others are for the preflight). Every uvicorn response header costs a few µs.
_ORIGIN = [(b"access-control-allow-origin", b"*")]
_NO_STORE = [(b"cache-control", b"no-store"), *_ORIGIN]
_PREFLIGHT = _raw(CORS)
_GIF_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"%d" % len(GIF)),
                *_NO_STORE]
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")


class Disconnected(Exception):
    """The client went away before its request body arrived."""


async def respond(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    if body:
        headers = [*headers, (b"content-length", b"%d" % len(body))]
    elif status != 204 and status != 304:
        headers = [*headers, (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Ingest:
    def __init__(
        self, sites: SiteIndex, enricher: Enricher, writer: Writer, *,
        max_body: int = 65536, trusted_proxies: frozenset[str] = frozenset(),
    ) -> None:
        self.sites = sites
        self.enricher = enricher
        self.writer = writer
        self.max_body = max_body
        self.trusted = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        now_ms = int(time.time() * 1000)
        method = scope["method"]
        if method == "OPTIONS":
            return await respond(send, 204, _PREFLIGHT)
        if method not in ("GET", "POST"):
            return await respond(send, 405, [*_NO_STORE, (b"allow", b"GET, POST, OPTIONS")])
        headers = dict(scope["headers"])  # names are lower case (ASGI)
        client = scope.get("client")
        ip = client[0] if client else ""
        if self.trusted:
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
            ip = client_ip(ip, forwarded, self.trusted)
        query = scope["query_string"]
        try:
            if method == "GET":
                params = parse_query(query)
                rows = [await self._row(params, headers, ip, now_ms)]
            else:
                body = await self._body(receive, headers.get(b"content-length"))
                if body[:1] == b"{" or body.lstrip()[:1] == b"{":
                    return await self._bulk(send, body, headers, ip, now_ms)
                params = parse_query(body)
                if query:  # parameters in both: the body's win
                    params = {**parse_query(query), **params}
                rows = [await self._row(params, headers, ip, now_ms)]
            await self.writer.submit(rows)
        except InvalidHit as e:
            return await self._refuse(send, e, now_ms)
        except Unavailable as e:
            return await _unavailable(send, e)
        except Disconnected:
            return None
        if method == "GET" and params.get("send_image") != "0":
            return await respond(send, 200, _GIF_HEADERS, GIF)
        return await respond(send, 204, _ORIGIN)

    async def _row(self, params: dict[str, str], headers: dict[bytes, bytes], ip: str,
                   now_ms: int) -> tuple[Any, ...]:
        if not params.get("url"):  # <noscript> image: the page is the Referer
            params["url"] = headers.get(b"referer", b"").decode("latin-1")
        hit = parse_hit(
            params, self.sites.hosts, now_ms, headers.get(b"user-agent", b"").decode("latin-1"),
            headers.get(b"accept-language", b"").decode("latin-1"),
        )
        salt = self.enricher.salts.cached(hit.day)
        if salt is None:
            try:
                salt = await self.enricher.salts.for_day(hit.day)
            except Exception as e:  # the salt could not be read or written
                raise Unavailable(str(e)) from e
        return self.enricher.row(hit, ip, salt)

    async def _body(self, receive: Receive, declared: bytes | None) -> bytes:
        too_large = InvalidHit(f"body too large (over {self.max_body} bytes)", 413)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _refuse(self, send: Send, e: InvalidHit, now_ms: int) -> None:
        self.writer.drop(e.site_id, local_day(now_ms), e.reason, e.host)
        await respond(send, e.status, [*_NO_STORE, _TEXT, error_header(e.reason)],
                      (e.reason + "\n").encode())

    async def _bulk(self, send: Send, body: bytes, headers: dict[bytes, bytes], ip: str,
                    now_ms: int) -> None:
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise InvalidHit("malformed JSON") from None
        reqs = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
            raise InvalidHit('bulk: expected {"requests": ["?idsite=...", ...]}')
        if not reqs or len(reqs) > MAX_BULK:
            raise InvalidHit(f"bulk: expected 1 to {MAX_BULK} requests")
        rows, invalid = [], []
        for i, qs in enumerate(reqs):
            try:
                params = parse_query(qs.split("?", 1)[-1])
                rows.append(await self._row(params, headers, ip, now_ms))
            except InvalidHit as e:
                self.writer.drop(e.site_id, local_day(now_ms), e.reason, e.host)
                invalid.append({"index": i, "status": e.status, "reason": e.reason})
        if rows:
            await self.writer.submit(rows)
        extra = [error_header(f"{len(invalid)} invalid: {invalid[0]['reason']}")] \
            if invalid else []
        answer = {"status": "success" if rows else "error", "tracked": len(rows),
                  "invalid": len(invalid), "invalid_requests": invalid}
        await respond(send, 200 if rows else 400, [*_NO_STORE, _JSON, *extra],
                      json.dumps(answer, ensure_ascii=False).encode())


def error_header(text: str) -> tuple[bytes, bytes]:
    """``X-Giamsat-Error``: one line of printable ASCII (HTTP headers are not UTF-8)."""
    value = text.encode("ascii", "backslashreplace").decode()[:200].replace("\n", " ")
    return b"x-giamsat-error", value.encode()


async def _unavailable(send: Send, e: Unavailable) -> None:
    """Storage could not commit: nothing was acknowledged, the sender should retry."""
    await respond(send, 503, [*_NO_STORE, _TEXT, (b"retry-after", b"5"),
                              error_header(f"storage unavailable: {e}")],
                  b"storage unavailable, retry\n")
