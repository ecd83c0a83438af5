"""Writing over HTTP: `POST /api/articles` adds or updates, `DELETE /api/articles/{id}` removes.

Both need the API key (`qa.web.auth`). A POST body is one of:
- a JSON article, read by the same rules as an object in a `.json` file;
- a multipart upload (`file` field) in any format `qa index` reads, chosen by the
  file name's suffix and parsed from memory (the name only labels the articles);
- `{"url": "https://..."}`: the page is fetched under the SSRF rules of `qa.fetch`
  and read as HTML, text, Markdown or JSON according to its content type.

Reading, fetching and indexing run in the thread pool. The index has one writer
at a time: a write that finds it busy answers 503 with Retry-After. The running
Answerer reopens the index when its version changes, so answers follow at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from qa.answering import Answerer
from qa.errors import ArticleNotFound, FetchFailed, InvalidInput
from qa.fetch import ALLOWED_TYPES, Fetcher
from qa.indexer import article_id, index_batches, remove_articles
from qa.models import IndexReport, SourceArticle
from qa.readers import read_object, read_upload
from qa.settings import Settings
from qa.web.auth import require_api_key
from qa.web.deps import AnswererDep, FetcherDep, SettingsDep
from qa.web.schemas import TEXT_FIELDS, ArticleIn, ErrorResponse, FetchIn, IngestResult

logger = logging.getLogger("qa.web")

ARTICLES_PATH = "/api/articles"  # the POST whose body may be as large as an upload


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse} for s in statuses}


router = APIRouter(
    prefix="/api",
    tags=["ingest"],
    dependencies=[Depends(require_api_key)],
    responses=_errors(401, 403, 429, 503),
)

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"anyOf": [ArticleIn.model_json_schema(), FetchIn.model_json_schema()]}
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "An article file: .txt, .md, .html, .htm, .json or "
                        ".jsonl, chosen by the file name's suffix (or, without one, by the "
                        "part's content type).",
                    }
                },
                "required": ["file"],
            }
        },
    },
}


@router.post(
    "/articles",
    status_code=201,
    response_model=IngestResult,
    responses=_errors(400, 413, 415, 422, 502),
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Add or update articles: a JSON article, a file upload, or a URL to fetch",
)
async def add_articles(
    request: Request, answerer: AnswererDep, fetcher: FetcherDep, settings: SettingsDep
) -> IngestResult:
    """Answers the index report and the ids of the given articles now in the index
    (an article already indexed under another id counts as a duplicate and has none)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        articles, problems = await _from_upload(request)
    elif media_type == "application/json":
        articles, problems = await _from_json(await request.body(), fetcher, settings)
    else:
        raise HTTPException(415, "send application/json or multipart/form-data")
    return await _index(answerer, settings, articles, problems)


@router.delete(
    "/articles/{article_id:path}",
    response_model=IngestResult,
    responses=_errors(404, 422),  # 422 in the contract's shape, not FastAPI's default one
    summary="Remove one article",
)
async def delete_article(article_id: str, answerer: AnswererDep) -> IngestResult:
    removed = await run_in_threadpool(remove_articles, answerer.store, [article_id])
    if not removed:
        raise ArticleNotFound(f"no article with id {article_id!r} in the index")
    logger.info("removed article %r over HTTP", article_id)
    return IngestResult(report=IndexReport(removed=len(removed)), ids=removed)


# --------------------------------------------------------------------------- bodies

Parsed = tuple[list[SourceArticle], list[str]]  # articles, problems
M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: Any) -> M:
    """Validate like FastAPI would, so the error reads like every other 422."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are no Unicode at all
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        error = {"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}
        raise RequestValidationError([{**error, "input": {}, "ctx": {"error": reason}}]) from None


def _origin_name(title: str) -> str:
    """`api:<title>` keys the id of an article posted without id or url, as a file's
    path would: re-posting it edited replaces it. ('#' and '/' would split the key.)"""
    return "api:" + " ".join(title.replace("#", " ").replace("/", " ").split())


async def _from_json(raw: bytes, fetcher: Fetcher, settings: Settings) -> Parsed:
    # Parsing and normalising up to QA_MAX_UPLOAD_BYTES of text is CPU work: off the loop.
    data = await run_in_threadpool(_json, raw)
    if isinstance(data, dict) and "url" in data and not any(f in data for f in TEXT_FIELDS):
        target = _validated(FetchIn, data)
        return await _from_url(target.url, fetcher, settings)
    return await run_in_threadpool(_article_from_json, data)


def _article_from_json(data: Any) -> Parsed:
    _validated(ArticleIn, data)
    # The reader's own rules (text lists, dates, metadata) on the raw object, as `qa index`.
    article, problems = read_object(data, origin="api", where="request body")
    return [replace(article, origin=_origin_name(article.title))], problems


async def _from_url(url: str, fetcher: Fetcher, settings: Settings) -> Parsed:
    # The Fetcher keeps its own deadline; this one also bounds DNS, which it cannot.
    # An abandoned thread ends by itself at its socket timeouts.
    try:
        with anyio.fail_after(settings.fetch_timeout + 1):
            page = await anyio.to_thread.run_sync(fetcher.fetch, url, abandon_on_cancel=True)
    except TimeoutError:
        raise FetchFailed(
            f"the page did not arrive within {settings.fetch_timeout:g} seconds"
        ) from None
    stem = PurePosixPath(urlsplit(page.url).path).stem or "page"
    articles, problems = await run_in_threadpool(
        read_upload, stem + page.suffix, page.text_bytes(), origin=page.url
    )
    if page.suffix != ".json":  # one page, one article: it lives at this URL
        articles = [replace(a, url=a.url or page.url) for a in articles]
    return articles, problems


async def _from_upload(request: Request) -> Parsed:
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the article file in a multipart field named 'file'")
        data = await upload.read()
        name = upload.filename or ""
        media_type = (upload.content_type or "").split(";")[0].strip().lower()
    if not PurePosixPath(name.replace("\\", "/")).suffix and media_type in ALLOWED_TYPES:
        name = (name or "upload") + ALLOWED_TYPES[media_type]  # no suffix: the part's type
    return await run_in_threadpool(read_upload, name, data)


# --------------------------------------------------------------------------- indexing


def _present(answerer: Answerer, ids: list[str]) -> list[str]:
    if not answerer.store.exists():
        return []
    found = answerer.snapshot().article_texts(ids)
    return [i for i in ids if i in found]


async def _index(
    answerer: Answerer, settings: Settings, articles: list[SourceArticle], problems: list[str]
) -> IngestResult:
    report = await run_in_threadpool(
        index_batches,
        [("request", articles, problems)],
        answerer.store,
        export_onnx=settings.export_onnx,
    )
    ids = list(dict.fromkeys(article_id(a) for a in articles))
    present = await run_in_threadpool(_present, answerer, ids)
    logger.info(
        "indexed over HTTP: %d added, %d updated, %d unchanged, %d duplicates",
        report.added,
        report.updated,
        report.unchanged,
        report.duplicates,
    )
    return IngestResult(report=report, ids=present)
