"""The HTTP edge of ``/tracking``: request → parse → enrich → group commit → answer.

Answers: ``204`` (POST), a 1×1 GIF (GET, unless ``send_image=0``), ``200`` JSON for bulk
requests. A refused hit gets its 4xx, its reason in ``X-Giamsat-Error`` and in the body,
and is counted in ``dropped`` per site, day and reason. Storage failure: ``503`` with
``Retry-After``; nothing was acknowledged. CORS: any origin may send (hits carry no
credentials; the hostname check is what ties a hit to its site).
"""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.enrich import Enricher, client_ip
from collector.registry import SiteIndex
from collector.tracking import InvalidHit, local_day, parse_hit, parse_query
from collector.writer import Unavailable, Writer

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
NO_STORE = {"cache-control": "no-store", **CORS}
_RAW_NO_STORE = [(k.encode(), v.encode()) for k, v in NO_STORE.items()]
MAX_BULK = 100


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

    def _refuse(self, e: InvalidHit, now_ms: int) -> Response:
        self.writer.drop(e.site_id, local_day(now_ms), e.reason, e.host)
        return Response(
            e.reason + "\n", e.status, media_type="text/plain",
            headers={"x-giamsat-error": _header(e.reason), **NO_STORE},
        )

    async def _row(self, params: dict[str, str], headers: dict[bytes, bytes], ip: str,
                   now_ms: int) -> tuple:
        if not params.get("url"):  # <noscript> image: the page is the Referer
            params["url"] = headers.get(b"referer", b"").decode("latin-1")
        hit = parse_hit(
            params, self.sites.hosts, now_ms, headers.get(b"user-agent", b"").decode("latin-1"),
            headers.get(b"accept-language", b"").decode("latin-1"),
        )
        try:
            return await self.enricher.row(hit, ip)
        except InvalidHit:
            raise
        except Exception as e:  # the salt could not be read or written
            raise Unavailable(str(e)) from e

    async def __call__(self, request: Request) -> Response:
        now_ms = int(time.time() * 1000)
        method = request.method
        if method == "OPTIONS":
            return Response(status_code=204, headers=CORS)
        headers = dict(request.scope["headers"])  # names are lower case (ASGI)
        peer = request.client.host if request.client else ""
        ip = peer
        if self.trusted:
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
            ip = client_ip(peer, forwarded, self.trusted)
        query = request.scope["query_string"]
        try:
            if method == "GET":
                params = parse_query(query)
                rows = [await self._row(params, headers, ip, now_ms)]
            else:
                body = await self._body(request, headers.get(b"content-length"))
                if body.lstrip()[:1] == b"{":
                    return await self._bulk(body, headers, ip, now_ms)
                params = parse_query(query) if query else {}
                params.update(parse_query(body))
                rows = [await self._row(params, headers, ip, now_ms)]
            await self.writer.submit(rows)
        except InvalidHit as e:
            return self._refuse(e, now_ms)
        except Unavailable as e:
            return _unavailable(e)
        if method == "GET" and params.get("send_image") != "0":
            return Response(GIF, 200, media_type="image/gif", headers=NO_STORE)
        response = Response(status_code=204)
        response.raw_headers = list(_RAW_NO_STORE)  # the same headers every time: encode once
        return response

    async def _body(self, request: Request, declared: bytes | None) -> bytes:
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body:
                raise InvalidHit(f"body too large (over {self.max_body} bytes)", 413)
            return await request.body()  # the server stops at Content-Length
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                raise InvalidHit(f"body too large (over {self.max_body} bytes)", 413)
        return body

    async def _bulk(self, body: bytes, headers: dict[bytes, bytes], ip: str,
                    now_ms: int) -> Response:
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
        try:
            for i, qs in enumerate(reqs):
                try:
                    params = parse_query(qs.split("?", 1)[-1])
                    rows.append(await self._row(params, headers, ip, now_ms))
                except InvalidHit as e:
                    self.writer.drop(e.site_id, local_day(now_ms), e.reason, e.host)
                    invalid.append({"index": i, "status": e.status, "reason": e.reason})
            if rows:
                await self.writer.submit(rows)
        except Unavailable as e:
            return _unavailable(e)
        status = 200 if rows else 400
        headers = dict(NO_STORE)
        if invalid:
            headers["x-giamsat-error"] = _header(f"{len(invalid)} invalid: {invalid[0]['reason']}")
        return JSONResponse(
            {"status": "success" if rows else "error", "tracked": len(rows),
             "invalid": len(invalid), "invalid_requests": invalid},
            status, headers=headers,
        )


def _header(text: str) -> str:
    """A header value: one line of printable ASCII (HTTP headers are not UTF-8)."""
    return text.encode("ascii", "backslashreplace").decode()[:200].replace("\n", " ")


def _unavailable(e: Unavailable) -> Response:
    """Storage could not commit: nothing was acknowledged, the sender should retry."""
    return Response(
        "storage unavailable, retry\n", 503, media_type="text/plain",
        headers={"retry-after": "5", "x-giamsat-error": _header(f"storage unavailable: {e}"),
                 **NO_STORE},
    )
