"""The loader as served by the collector: encodings, ETag/304, headers; the embed command."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import httpx
import pytest

from collector.app import create_app
from collector.assets import (
    REPO_DIR,
    Asset,
    LoaderEndpoint,
    LoaderMissing,
    find_loader,
    pick_encoding,
    sri_hash,
)
from collector.cli import main
from collector.config import Config

BUILT = (REPO_DIR / "gov-tracking.min.js").read_bytes()


async def raw_get(client: httpx.AsyncClient, path: str,
                  accept: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (not decoded by httpx)."""
    async with client.stream("GET", path, headers={"accept-encoding": accept}) as r:
        return r, b"".join([chunk async for chunk in r.aiter_raw()])


@pytest.mark.parametrize("path", ["/embed/gov-tracking.min.js", "/g.js"])
async def test_served_identity_gzip_br(client: httpx.AsyncClient, path: str) -> None:
    plain = await client.get(path, headers={"accept-encoding": "identity"})
    assert plain.status_code == 200
    assert plain.content == BUILT
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert plain.headers["vary"] == "Accept-Encoding"
    assert plain.headers["access-control-allow-origin"] == "*"
    assert "content-encoding" not in plain.headers

    gz, gz_raw = await raw_get(client, path, "gzip, deflate")
    assert gz.headers["content-encoding"] == "gzip"
    assert gzip.decompress(gz_raw) == BUILT and len(gz_raw) < len(BUILT)

    br, br_raw = await raw_get(client, path, "gzip, deflate, br")
    assert br.headers["content-encoding"] == "br"
    assert brotli.decompress(br_raw) == BUILT and len(br_raw) < len(gz_raw)

    tags = {plain.headers["etag"], gz.headers["etag"], br.headers["etag"]}
    assert len(tags) == 3  # one strong tag per representation


async def test_etag_revalidation(client: httpx.AsyncClient) -> None:
    first = await client.get("/g.js", headers={"accept-encoding": "br"})
    etag = first.headers["etag"]
    again = await client.get("/g.js", headers={"accept-encoding": "br", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"]
    weak = await client.get("/g.js", headers={"if-none-match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    stale = await client.get("/g.js", headers={"if-none-match": '"0123456789abcdef0123"'})
    assert stale.status_code == 200 and stale.content == BUILT


async def test_head_has_no_body(client: httpx.AsyncClient) -> None:
    r = await client.head("/embed/gov-tracking.min.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(BUILT))


@pytest.mark.parametrize("accept, chosen", [
    ("", "identity"), ("gzip", "gzip"), ("br;q=1.0, gzip;q=0.5", "br"), ("br;q=0, gzip", "gzip"),
    ("*", "br"), ("deflate", "identity"), ("GZIP", "gzip"), ("gzip;q=0", "identity"),
])
def test_pick_encoding(accept: str, chosen: str) -> None:
    assert pick_encoding(accept) == chosen


def test_loader_found_in_the_checkout_and_hashed() -> None:
    assert find_loader().read_bytes() == BUILT
    asset = Asset.from_bytes(BUILT)
    assert asset.sri == sri_hash(BUILT) and asset.sri.startswith("sha384-")
    assert len(asset.sri) == len("sha384-") + 64


async def test_missing_loader_answers_503_with_reason(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("collector.assets.PACKAGE_DIR", tmp_path / "a")
    monkeypatch.setattr("collector.assets.REPO_DIR", tmp_path / "b")
    with pytest.raises(LoaderMissing):
        find_loader()
    endpoint = LoaderEndpoint()
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/g.js", endpoint)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as c:
        r = await c.get("/g.js")
    assert r.status_code == 503 and "snippet/build.sh" in r.headers["x-giamsat-error"]


def test_cli_snippet_prints_embed_with_sri(capsys, db_path: str) -> None:
    assert main(["--database-url", db_path, "snippet", "47", "--sri",
                 "--public-url", "https://emc.example.gov.vn/"]) == 0
    out = capsys.readouterr().out
    assert "_govaq.push(['setSiteId', '47'])" in out
    assert "var u = 'https://emc.example.gov.vn';" in out
    assert "u + '/embed/gov-tracking.min.js'" in out
    assert f"g.integrity = '{sri_hash(BUILT)}'; g.crossOrigin = 'anonymous';" in out
    assert '<noscript><img src="https://emc.example.gov.vn/tracking?idsite=47&amp;rec=1"' in out
    assert main(["--database-url", db_path, "snippet", "47"]) == 0
    assert "integrity" not in capsys.readouterr().out


async def test_demo_routes_only_in_demo_mode(db, database_url: str, tmp_path) -> None:
    for demo, expected in ((False, 404), (True, 200)):
        app = create_app(Config(database_url=database_url, registry_refresh=0, rollup_interval=0,
                                demo=demo, spool_dir=str(tmp_path / "spool")))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://127.0.0.1:8000") as c:
                page = await c.get("/demo")
                assert page.status_code == expected
                if demo:
                    assert "_govaq.push(['setSiteId', '1'])" in page.text
                    assert "var u = 'http://127.0.0.1:8000';" in page.text
                    assert "trackDVC" in page.text and "/demo/mau-don.pdf" in page.text
                    assert (await c.get("/demo/hits")).json() == []
                    pdf = await c.get("/demo/mau-don.pdf")
                    assert pdf.content.startswith(b"%PDF-")
