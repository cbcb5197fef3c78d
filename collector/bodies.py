"""Request bodies read with a size limit, for the JSON endpoints (``/TrackingMCDT``, the
reported-totals API). ``/tracking`` has its own reader on the raw ASGI ``receive``.

A declared Content-Length over the limit is refused before anything is read, and a
streamed (chunked) body at the first chunk past it: never read whole, then checked.
"""

from __future__ import annotations

from starlette.requests import Request


class MalformedLength(ValueError):
    """Content-Length is not a number of ASCII digits ('²'.isdigit() is true)."""


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes; raises
    :class:`MalformedLength` for a Content-Length that is no number."""
    declared = request.headers.get("content-length", "")
    if declared and not (declared.isascii() and declared.isdigit()):
        raise MalformedLength("content-length invalid: expected a number")
    if declared and (len(declared) > 12 or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
