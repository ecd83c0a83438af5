"""The web app factory used by `qa serve` and the tests: one Answerer, built at start-up.

Middleware, outermost first: security headers → CORS (/api, /v1, /mcp only) →
unexpected errors as the contract's 500 → per-client rate limit (/api, /v1 and
/mcp only) → request-body cap (larger for uploads) → FastAPI's routing and exception
handlers.
Starlette's own ServerErrorMiddleware stays outside all of them as a last resort.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from qa import __version__
from qa.answering import Answerer
from qa.errors import QAError
from qa.settings import Settings
from qa.web import api, ingest, openai_api, pages
from qa.web.errors import MCP_PATH, ErrorRenderer, UnexpectedErrors, install_error_handlers
from qa.web.history import TurnSeal
from qa.web.limits import AnswerSlots, RateLimit
from qa.web.middleware import ApiCORS, BodySizeLimit, SecurityHeaders
from qa.web.templating import asset_bytes, asset_dir, make_templates

logger = logging.getLogger("qa.web")

DESCRIPTION = """Answers questions about the indexed articles by quoting their sentences
verbatim. Every quote carries its article and character offsets into the article text
(`GET /api/articles/{id}`). Errors are `{"error": {"code", "message"}}`."""


def warm_up(answerer: Answerer) -> None:
    """Open the index and embed once now, so the first question is not the slow one."""
    try:
        if not answerer.store.exists():
            logger.warning(
                "no index at %s yet: add articles with `qa index PATH`", answerer.store.location
            )
            return
        answerer.snapshot()
        answerer.encoder.embed(["warm-up"])
    except QAError as exc:  # the server still starts; requests will get the 503 that explains
        logger.warning("%s", exc.message)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        answerer = Answerer(settings)
        await run_in_threadpool(warm_up, answerer)
        app.state.answerer = answerer
        # Imported here: the MCP SDK loads with the server, not with every `qa` command.
        from qa.web.mcp_server import build_server

        mcp = build_server(answerer, app.state.answer_slots)
        scheduler = None
        if settings.refresh_sources:  # one background thread; requests never wait on it
            from qa.sources.scheduler import SourceScheduler

            scheduler = SourceScheduler(settings)
            scheduler.start()
        # A new server (and session manager) per lifespan: the SDK runs each one only once.
        app.state.mcp_http = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH, host=settings.host
        )
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            if scheduler is not None:
                await run_in_threadpool(scheduler.stop)

    app = FastAPI(title="qa", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    templates = make_templates()
    app.state.settings = settings
    app.state.templates = templates
    app.state.seal = TurnSeal()
    app.state.answer_slots = AnswerSlots(settings.max_concurrent, settings.queue_timeout)

    render = ErrorRenderer(templates)
    install_error_handlers(app, render)
    app.include_router(api.router)
    app.include_router(ingest.router)
    app.include_router(openai_api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=asset_dir("static")), name="static")
    _add_widget_route(app)
    # /mcp: MCP over streamable HTTP; not in the OpenAPI schema (it speaks JSON-RPC).
    app.add_route(MCP_PATH, _McpEndpoint(), include_in_schema=False)

    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        render=render,
        overrides={("POST", ingest.ARTICLES_PATH): settings.max_upload_bytes},
    )
    app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute, render=render)
    app.add_middleware(UnexpectedErrors, render=render)
    app.add_middleware(ApiCORS, origins=settings.cors_origins)
    docs = {p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p}
    app.add_middleware(SecurityHeaders, docs_paths=docs)
    return app


class _McpEndpoint:
    """Pure ASGI: hands /mcp to the MCP app the lifespan built (the body cap, rate limit
    and error middlewares have already run)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.mcp_http(scope, receive, send)


def widget_script() -> bytes:
    """The widget as one script: the quote pieces it shares with the chat page
    (static/quote-parts.js) and the widget itself, in one closure, so a site that
    embeds it gets one file and no global of ours."""
    parts = asset_bytes("static", "quote-parts.js")
    widget = asset_bytes("widget", "qa-widget.js")
    return b"(function () {\n" + parts + b"\n" + widget + b"})();\n"


def _add_widget_route(app: FastAPI) -> None:
    """`/widget.js`: the embeddable widget, loaded by `<script src>` from any site."""
    script = widget_script()

    async def widget_js(request: Request) -> Response:
        return Response(
            script,
            media_type="text/javascript; charset=utf-8",
            headers={
                "Cache-Control": "public, max-age=300",
                # Sites that isolate themselves (COEP: require-corp) may still load it.
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    # A plain Starlette route: it answers HEAD too, and there is nothing to document.
    app.add_route("/widget.js", widget_js, methods=["GET"], name="widget", include_in_schema=False)
