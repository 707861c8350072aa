"""The request body limit, enforced while the body streams in.

A Content-Length header over the limit is refused before a byte of the body is read. A chunked
body has no length to check, so every `receive` counts what has come in and raises 413 as soon
as the count passes the limit: the server holds at most the limit (plus one network read) of
any body, on every route, JSON and multipart alike.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loramem.serve.errors import APIError


class BodyTooLarge(APIError):
    """A request body over the limit; the connection closes, since the rest of the body goes unread."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message, code="request_too_large")

    def response(self):
        response = super().response()
        response.headers["Connection"] = "close"
        return response


class BodyLimit:
    """ASGI middleware answering 413 to a request body over `limit` bytes, counted as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            refused = BodyTooLarge(f"request body of {int(length):,} bytes exceeds the limit of {self.limit:,}")
            await refused.response()(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            if received > self.limit:  # a route that caught the first refusal gets no more of the body
                raise self._refusal(received)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self._refusal(received)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as refused:  # raised where no exception handler answered it
            if started:
                raise
            await refused.response()(scope, receive, send)

    def _refusal(self, received: int) -> BodyTooLarge:
        return BodyTooLarge(f"request body exceeds the limit of {self.limit:,} bytes ({received:,} arrived so far)")
