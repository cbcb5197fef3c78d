"""``/badge/{site_id}.svg``: the "Đã kết nối EMC" badge a connected portal shows.

The scanner recognises a page's badge by an ``<img>`` whose ``src`` path is this URL with the
page's own site id (see ``collector/scan_html.py``). The image is static per site: it says
the site is registered, not that it is compliant (the compliance report says that).
Unknown site ids get 404, so the badge cannot be shown for a site that is not registered.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from collector.tracking import ascii_int

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="150" height="20" role="img" \
aria-label="Đã kết nối EMC {site_id}"><title>Đã kết nối EMC · giamsat site {site_id}</title>\
<rect width="150" height="20" rx="3" fill="#1b5e20"/><rect width="40" height="20" rx="3" \
fill="#c62828"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">\
<text x="8" y="14">EMC</text><text x="47" y="14">Đã kết nối</text></g></svg>"""


async def badge(request: Request) -> Response:
    raw = request.path_params["site_id"]
    state = request.app.state.giamsat
    site_id = ascii_int(raw) if len(raw) <= 10 else None
    if site_id is None or site_id not in state.sites.hosts:
        return Response("unknown site\n", 404, media_type="text/plain",
                        headers={"x-giamsat-error": "unknown site"})
    body = SVG.format(site_id=site_id).encode("utf-8")
    return Response(body, 200, media_type="image/svg+xml",
                    headers={"cache-control": "public, max-age=3600",
                             "access-control-allow-origin": "*"})
