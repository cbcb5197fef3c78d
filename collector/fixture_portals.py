"""Local fixture portals for scanner tests and benches: a real HTTP(S) server on 127.0.0.1.

Not used by the collector itself. ``PortalServer`` serves a dict of routes from a thread
(stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive); a route is a :class:`Route` (status,
body, content type, headers, delay in seconds). ``self_signed_context`` makes a throw-away
certificate with the ``openssl`` CLI for a server whose TLS a client must refuse.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from collector.embed import snippet_html


@dataclass
class Route:
    body: str = ""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def page(body: str, title: str = "Cổng thông tin") -> str:
    return (f"<!doctype html><html lang=vi><head><meta charset=utf-8><title>{title}</title>"
            f"</head><body>{body}</body></html>")


def snippet(site_id: int | str, base: str) -> str:
    """The official snippet for ``site_id`` (a str is written verbatim, e.g. ``''``)."""
    html = snippet_html(int(site_id) if str(site_id).isdigit() else 0, base)
    if not str(site_id).isdigit():
        html = html.replace("'setSiteId', '0'", f"'setSiteId', '{site_id}'")
    return html


def script_only(html: str) -> str:
    """The ``<script>`` element of a snippet (what a webmaster wraps in ``<!-- -->``)."""
    start = html.index("<script>")
    return html[start:html.index("</script>") + len("</script>")]


def sitemap(urls: list[str]) -> Route:
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return Route('<?xml version="1.0" encoding="UTF-8"?>'
                 f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>',
                 content_type="application/xml")


class PortalServer:
    def __init__(self, routes: dict[str, Route] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = routes if routes is not None else {}
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests += 1
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    route = Route(page("không tìm thấy"), 404)
                if route.delay:
                    time.sleep(route.delay)
                data = route.body.encode("utf-8")
                try:
                    self.send_response(route.status)
                    self.send_header("content-type", route.content_type)
                    self.send_header("content-length", str(len(data)))
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 128
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> PortalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def self_signed_context(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate (``openssl`` CLI)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=portal.invalid", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
