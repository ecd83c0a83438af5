"""Every failure becomes the contract's error: JSON under /api (the OpenAI error shape
under /v1), a friendly page elsewhere.

One `ErrorRenderer` decides the shape from the path, so route handlers, the
exception handlers and the pure-ASGI middlewares (413, 500) all answer alike.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.errors import IndexBusy, QAError, Unauthorized
from qa.web.openai_schemas import openai_error
from qa.web.schemas import ErrorResponse

logger = logging.getLogger("qa.web")

API_PREFIX = "/api"
OPENAI_PREFIX = "/v1"  # the OpenAI-compatible routes: the API's limits, their own error shape
MCP_PATH = "/mcp"  # the MCP server (streamable HTTP): the API's limits and JSON errors
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

INDEX_BUSY_RETRY_AFTER = 5  # seconds: a typical ingest request holds the writer lock this long

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def is_api_path(path: str) -> bool:
    """What programs call (/api, /v1 and /mcp): JSON errors, the rate limit, CORS."""
    return _under(path, API_PREFIX) or _under(path, OPENAI_PREFIX) or _under(path, MCP_PATH)


def is_openai_path(path: str) -> bool:
    return _under(path, OPENAI_PREFIX)


class ErrorRenderer:
    """Builds the error response for a request: JSON for the API, HTML for pages."""

    def __init__(self, templates: Jinja2Templates) -> None:
        self.templates = templates

    def __call__(
        self,
        request: Request,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if is_openai_path(request.url.path):
            status, openai_body = openai_error(status, code, message)
            return JSONResponse(
                openai_body.model_dump(mode="json"), status_code=status, headers=headers
            )
        if is_api_path(request.url.path):
            body = ErrorResponse.of(code, message)
            return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)
        context = {
            "status": status,
            "reason": _reason(status),
            "code": code,
            "message": message,
        }
        return self.templates.TemplateResponse(
            request, "error.html", context, status_code=status, headers=headers
        )


def error_headers(exc: QAError) -> dict[str, str] | None:
    """The HTTP headers some errors call for: how to authenticate, when to retry."""
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="qa"'}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None and isinstance(exc, IndexBusy):
        retry_after = INDEX_BUSY_RETRY_AFTER
    if retry_after is None:
        return None
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, message) for a request the schema rejected; bad JSON syntax is a 400."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "malformed JSON")
        return 400, "invalid_json", f"the request body is not valid JSON: {reason}"
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(loc) or "request body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return 422, "invalid_input", "; ".join(parts) or "the request is invalid"


def allowed_methods(request: Request) -> list[str]:
    """The methods some route accepts at this path (Starlette's Allow names only one route)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def install_error_handlers(app: FastAPI, render: ErrorRenderer) -> None:
    """Route the framework's and the domain's exceptions through `render`."""

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        code = _HTTP_CODES.get(status, f"http_{status}")
        if status == 404 and exc.detail in (None, "Not Found"):
            message = f"there is nothing at {request.url.path}"
        elif status == 405:
            allowed = allowed_methods(request)
            message = f"{request.method} is not allowed on {request.url.path}"
            if allowed:
                message += f"; use {' or '.join(allowed)}"
                return render(request, status, code, message, headers={"Allow": ", ".join(allowed)})
        else:
            message = str(exc.detail)
        return render(request, status, code, message, headers=exc.headers)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        status, code, message = validation_message(exc)
        return render(request, status, code, message)

    async def on_domain_error(request: Request, exc: QAError) -> Response:
        return render(request, exc.status, exc.code, exc.message, headers=error_headers(exc))

    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(QAError, on_domain_error)  # type: ignore[arg-type]


class UnexpectedErrors:
    """Pure ASGI: an unhandled exception becomes a logged 500 in the contract's shape.

    It sits inside the CORS and security-header middlewares (unlike Starlette's
    outermost ServerErrorMiddleware), so the 500 carries those headers too.
    """

    def __init__(self, app: ASGIApp, render: ErrorRenderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            message = "something went wrong on the server; the details are in its log"
            try:
                response = self.render(Request(scope), 500, "internal_error", message)
            except Exception:  # even the error page failed: answer in the plainest way
                logger.exception("the error page failed too")
                response = PlainTextResponse(message, status_code=500)
            await response(scope, receive, send)
