"""``make run``'s demo: a page on this machine that carries the snippet for demo site 1.

Routes (registered only with ``GIAMSAT_DEMO=1`` / ``--demo``):

- ``GET /demo``: a small portal page with the embed code of site 1 (whose hosts are
  ``localhost`` and ``127.0.0.1``), an outbound link, a PDF download, and a button that
  calls ``trackDVC`` with an extra full of made-up personal data;
- ``GET /demo/hits``: the last hits of site 1 as JSON, which the page polls, so a
  newcomer sees each hit arrive and what was (not) stored;
- ``GET /demo/mau-don.pdf``: a one-page PDF for the download link.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from collector.embed import snippet_html
from collector.registry import DATA

DEMO_SITE = 1

PAGE = (DATA / "demo.html").read_text(encoding="utf-8")

# a valid one-page PDF, small enough to inline
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def demo_page(request: Request) -> HTMLResponse:
    base = str(request.base_url).rstrip("/")
    html = PAGE.replace("<!--SNIPPET-->", snippet_html(DEMO_SITE, base))
    html = html.replace("<!--SITE-->", str(DEMO_SITE))
    return HTMLResponse(html, headers={"cache-control": "no-store"})


async def demo_hits(request: Request) -> JSONResponse:
    db = request.app.state.giamsat.db
    rows = await db.fetch_all(
        "SELECT kind, path, title, target, dvc_service, dvc_state, dvc_ref, browser FROM hits"
        " WHERE site_id = :site ORDER BY ts DESC, id DESC LIMIT :n",
        {"site": DEMO_SITE, "n": 15},
    )
    return JSONResponse(rows, headers={"cache-control": "no-store"})


async def demo_pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/pdf")


routes = [
    Route("/demo", demo_page),
    Route("/demo/hits", demo_hits),
    Route("/demo/mau-don.pdf", demo_pdf),
]
