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
from functools import lru_cache
from pathlib import Path

import brotli
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

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


@lru_cache(maxsize=256)
def pick_encoding(accept: str) -> str:
    """``br`` if accepted, else ``gzip``, else ``identity`` (``q=0`` refuses a coding)."""
    offered = set()
    for item in accept.lower().split(","):
        name, _, params = item.partition(";")
        q = params.strip()
        if q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        offered.add(name.strip())
    for name in ("br", "gzip"):
        if name in offered or "*" in offered:
            return name
    return "identity"


def _matches(if_none_match: str, etags: frozenset[str]) -> bool:
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") in etags for t in if_none_match.split(","))


Headers = list[tuple[bytes, bytes]]


class LoaderEndpoint:
    """The loader as a plain ASGI app: headers are built once per encoding, a request only
    picks one (no ``Request`` object, no header encoding per request).

    Answers 503 with the reason if the file was not built.
    """

    def __init__(self, asset: Asset | None = None) -> None:
        self.missing = ""
        if asset is None:
            try:
                asset = load_loader()
            except LoaderMissing as e:
                self.missing = str(e)
                log.warning("%s", e)
        self.asset = asset
        self.etags = frozenset(t for _, t in asset.encodings.values()) if asset else frozenset()
        self.prepared: dict[str, tuple[bytes, Headers, Headers]] = {}
        for coding, (body, etag) in (asset.encodings.items() if asset else ()):
            common = [
                (b"etag", etag.encode()),
                (b"cache-control", CACHE_CONTROL.encode()),
                (b"vary", b"Accept-Encoding"),
                (b"access-control-allow-origin", b"*"),
                (b"x-content-type-options", b"nosniff"),
            ]
            full = [
                *common,
                (b"content-type", b"text/javascript; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            if coding != "identity":
                full.append((b"content-encoding", coding.encode()))
            self.prepared[coding] = (body, full, common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.prepared:
            response = PlainTextResponse(self.missing + "\n", 503,
                                         headers={"x-giamsat-error": self.missing})
            await response(scope, receive, send)
            return
        accept = if_none_match = ""
        for key, value in scope["headers"]:
            if key == b"accept-encoding":
                accept = value.decode("latin-1")
            elif key == b"if-none-match":
                if_none_match = value.decode("latin-1")
        body, full, common = self.prepared[pick_encoding(accept)]
        if if_none_match and _matches(if_none_match, self.etags):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": full})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})
