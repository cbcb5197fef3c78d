"""The OpenAPI document describes every /api/v1 route of the real app (method and path
parameters included), so a route added without documentation fails here."""

from __future__ import annotations

import re

import httpx
from starlette.routing import Route


def api_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1"):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                out.append((route.path, method.lower()))
    return out


async def test_every_api_route_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    app = client.app  # type: ignore[attr-defined]
    doc = (await client.get("/api/v1/openapi.json")).json()
    routes = api_routes(app)
    assert ("/api/v1/compliance/reported", "post") in routes  # the walk sees every router
    assert len(routes) >= 6
    for path, method in routes:
        assert path in doc["paths"], path
        op = doc["paths"][path].get(method)
        assert op is not None, (path, method)
        assert op.get("responses"), (path, method)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)", path)), (path, declared)
    # and nothing documented that the app does not serve
    served = {p for p, _ in routes}
    assert set(doc["paths"]) <= served
    post = doc["paths"]["/api/v1/compliance/reported"]["post"]
    assert {"text/csv", "application/json"} <= set(post["requestBody"]["content"])
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
