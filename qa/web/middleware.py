"""Pure ASGI middlewares: security headers, the request-body cap, CORS for /api, /v1, /mcp.

Pure ASGI (not BaseHTTPMiddleware) because the body cap must see the raw
receive channel, and because none of them should buffer or wrap responses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.web.errors import is_api_path, is_openai_path
from qa.web.schemas import ErrorResponse

_COMMON = "object-src 'none'; base-uri 'none'"
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    f"{_COMMON}; form-action 'self'; frame-ancestors 'none'"
)
# /embed exists to be framed by other sites; everything else about it stays strict.
EMBED_CSP = STRICT_CSP.replace("frame-ancestors 'none'", "frame-ancestors *")
# FastAPI's /docs and /redoc pages use an inline bootstrap script and CDN assets.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    f"worker-src 'self' blob:; {_COMMON}; form-action 'self'; frame-ancestors 'none'"
)
EMBED_PATHS = frozenset({"/embed"})


class SecurityHeaders:
    """Adds CSP, anti-framing, nosniff and no-referrer headers to every response."""

    def __init__(self, app: ASGIApp, docs_paths: Collection[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    def headers_for(self, path: str) -> dict[str, str]:
        headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
        if path in EMBED_PATHS:
            headers["Content-Security-Policy"] = EMBED_CSP
            return headers
        headers["Content-Security-Policy"] = DOCS_CSP if path in self.docs_paths else STRICT_CSP
        headers["X-Frame-Options"] = "DENY"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` when a streamed body passes the cap."""


ErrorFactory = Callable[[Request, int, str, str], Response]


class BodySizeLimit:
    """Answers 413 to bodies over `max_bytes`, without reading them.

    A declared Content-Length over the cap is refused before a byte is read. A
    chunked body is counted as it streams: at the cap, `receive` raises into the
    app and whatever the app then does is replaced by the 413.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        render: ErrorFactory,
        overrides: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render
        # (method, path) -> its own cap: uploads may be larger than questions.
        self.overrides = dict(overrides or {})

    def limit_for(self, scope: Scope) -> int:
        return self.overrides.get((scope.get("method", ""), scope["path"]), self.max_bytes)

    def _too_large(self, scope: Scope, limit: int) -> Response:
        return self.render(
            Request(scope),
            413,
            "payload_too_large",
            f"the request body is larger than the limit of {limit} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, limit)(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's reaction to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(scope, limit)(scope, receive, send)


class _ContractCORS(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight answers in the contract's JSON."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        failed = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        body = ErrorResponse.of("cors_rejected", f"cross-origin request refused: {failed}")
        return JSONResponse(body.model_dump(mode="json"), status_code=400, headers=headers)


class ApiCORS:
    """CORS for /api, /v1 and /mcp only: pages and assets never answer cross-origin reads.

    Credentials are never allowed: the API has no cookies or auth to protect,
    and `*` origins would otherwise be unsafe.
    """

    def __init__(self, app: ASGIApp, origins: Collection[str]) -> None:
        self.app = app
        self.cors = self._cors(app, origins, ["Content-Type"])
        # OpenAI clients send `Authorization` (ignored there) and headers of their own.
        self.openai_cors = self._cors(app, origins, ["*"])

    @staticmethod
    def _cors(app: ASGIApp, origins: Collection[str], headers: list[str]) -> _ContractCORS:
        return _ContractCORS(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=headers,
            allow_credentials=False,
            expose_headers=["Retry-After"],  # so a browser client can back off on 429/503
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_openai_path(scope["path"]):
            await self.openai_cors(scope, receive, send)
        elif scope["type"] == "http" and is_api_path(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
