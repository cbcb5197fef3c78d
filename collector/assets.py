"""The built ``_govaq`` loader, served from memory, pre-compressed.

At start-up the app reads ``gov-tracking.min.js`` once, compresses it with gzip -9 and
brotli (quality 11), and hashes it. Every request is then a dictionary look-up: no disk,
no thread pool (Starlette's ``StaticFiles`` stats and reads per request and serves ~10×
fewer requests per second; see ``bench/snippet.py``).

Where the file is: in a wheel it is force-included as ``collector/embed/`` (pyproject);
in an editable checkout it is ``snippet/dist/``. The package path is tried first.

Headers: ``ETag`` per encoding (``"<sha256 prefix>"``, ``"…-gz"``, ``"…-br"``; an
``If-None-Match`` naming any of them, or ``*``, answers 304), ``Cache-Control: public,
max-age=3600`` (the URL is not versioned, so a new release reaches portals within an
hour), ``Vary: Accept-Encoding``, ``Access-Control-Allow-Origin: *`` (a ``<script
integrity=… crossorigin>`` fetch is a CORS request) and ``text/javascript``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import brotli
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger("giamsat")

LOADER_NAME = "gov-tracking.min.js"
LOADER_PATHS = ("/embed/gov-tracking.min.js", "/g.js")
CACHE_CONTROL = "public, max-age=3600"
PACKAGE_DIR = Path(__file__).resolve().parent / "embed"
REPO_DIR = Path(__file__).resolve().parent.parent / "snippet" / "dist"


class LoaderMissing(FileNotFoundError):
    """The built loader is in neither place; the message says how to build it."""


def find_loader() -> Path:
    for folder in (PACKAGE_DIR, REPO_DIR):
        path = folder / LOADER_NAME
        if path.is_file():
            return path
    raise LoaderMissing(
        f"{LOADER_NAME} not found in {PACKAGE_DIR} or {REPO_DIR}: run snippet/build.sh"
    )


def sri_hash(body: bytes) -> str:
    """The Subresource Integrity value of ``body`` (``sha384-…``)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@dataclass(frozen=True)
class Asset:
    """One file in every encoding we serve: ``{"identity"|"gzip"|"br": (bytes, etag)}``."""

    encodings: dict[str, tuple[bytes, str]]
    sri: str

    @classmethod
    def from_bytes(cls, body: bytes) -> Asset:
        tag = hashlib.sha256(body).hexdigest()[:20]
        return cls(
            {
                "identity": (body, f'"{tag}"'),
                "gzip": (gzip.compress(body, 9, mtime=0), f'"{tag}-gz"'),
                "br": (brotli.compress(body, quality=11), f'"{tag}-br"'),
            },
            sri_hash(body),
        )

    @property
    def body(self) -> bytes:
        return self.encodings["identity"][0]


def load_loader(path: Path | None = None) -> Asset:
    return Asset.from_bytes((path or find_loader()).read_bytes())


def pick_encoding(accept: str) -> str:
    """``br`` if accepted, else ``gzip``, else ``identity`` (``q=0`` refuses a coding)."""
    offered = set()
    for item in accept.lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        q = params.strip()
        if q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        offered.add(name)
    for name in ("br", "gzip"):
        if name in offered or "*" in offered:
            return name
    return "identity"


def _matches(if_none_match: str, asset: Asset) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return any(etag in tags for _, etag in asset.encodings.values())


class LoaderEndpoint:
    """The loader route; answers 503 with the reason if the file was not built."""

    def __init__(self, asset: Asset | None = None) -> None:
        self.asset = asset
        self.missing = ""
        if asset is None:
            try:
                self.asset = load_loader()
            except LoaderMissing as e:
                self.missing = str(e)
                log.warning("%s", e)

    async def serve(self, request: Request) -> Response:
        asset = self.asset
        if asset is None:
            return PlainTextResponse(self.missing + "\n", 503,
                                     headers={"x-giamsat-error": self.missing})
        coding = pick_encoding(request.headers.get("accept-encoding", ""))
        body, etag = asset.encodings[coding]
        headers = {
            "etag": etag,
            "cache-control": CACHE_CONTROL,
            "vary": "Accept-Encoding",
            "access-control-allow-origin": "*",
            "x-content-type-options": "nosniff",
        }
        if _matches(request.headers.get("if-none-match", ""), asset):
            return Response(status_code=304, headers=headers)
        if coding != "identity":
            headers["content-encoding"] = coding
        return Response(body, 200, headers=headers, media_type="text/javascript")
