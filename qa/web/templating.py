"""Jinja2 set-up: templates and assets found in the installed `qa_web` package.

Autoescaping is on for everything; the few helpers here return plain strings
that the templates escape like any other value.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates

ASSETS_PACKAGE = "qa_web"


def asset_dir(name: str) -> Path:
    """A folder of the `qa_web` package on disk (StaticFiles needs a real directory)."""
    path = resources.files(ASSETS_PACKAGE) / name
    if not isinstance(path, Path) or not path.is_dir():
        raise RuntimeError(f"{ASSETS_PACKAGE}/{name} is missing: reinstall qa (pip install -e .)")
    return path


def asset_bytes(*parts: str) -> bytes:
    return resources.files(ASSETS_PACKAGE).joinpath(*parts).read_bytes()


def http_url(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL, else None: never a `javascript:` link."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https") and parts.netloc and url.isprintable():
        return url
    return None


def host_of(url: str) -> str:
    return urlsplit(url).hostname or url


def quote_id(article_id: str) -> str:
    """An article id as one path segment (ids are free text when given by the input)."""
    return quote(article_id, safe="")


def article_url(
    request: Request, article_id: str, start: int | None = None, end: int | None = None
) -> str:
    """The article view's address; with offsets, a deep link to the highlighted quote."""
    url = request.url_for("article_page", article_id=quote_id(article_id))
    if start is None or end is None:
        return str(url)
    return f"{url.include_query_params(start=start, end=end)}#quote"


@jinja2.pass_context
def article_href(
    ctx: jinja2.runtime.Context, article_id: str, start: int | None = None, end: int | None = None
) -> str:
    """`article_url` for templates (the page's own request)."""
    return article_url(ctx["request"], article_id, start, end)


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(ASSETS_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["http_url"] = http_url
    env.filters["host"] = host_of
    env.filters["quote_id"] = quote_id
    env.globals["article_href"] = article_href
    return Jinja2Templates(env=env)
