"""The baseline of ``bench/ingest.py``: a bare Starlette endpoint that answers 204, no work."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def tracking(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


app = Starlette(routes=[Route("/tracking", tracking, methods=["GET", "POST"])])
