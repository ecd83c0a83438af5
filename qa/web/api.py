"""The JSON API under /api, as the contract describes it. Routes translate, the core answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from qa.answering import Answerer
from qa.errors import IndexEmpty, InvalidInput
from qa.models import Answer, ArticleDetail, ArticleSummary, Filters, Health, PriorTurn
from qa.sources.registry import SourceRegistry
from qa.web.deps import AnswererDep, SlotsDep
from qa.web.limits import AnswerSlots
from qa.web.schemas import (
    ARTICLE_DOC,
    DATE_FORMAT,
    MAX_FILTER_ARTICLES,
    MAX_FILTER_CHARS,
    SINCE_DOC,
    SOURCE_DOC,
    UNTIL_DOC,
    ArticleId,
    AskRequest,
    ErrorResponse,
    HistoryTurn,
)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse} for s in statuses}


# 429: the per-client rate limit; 503: no usable index, or every answering slot busy.
router = APIRouter(prefix="/api", tags=["api"], responses=_errors(429, 503))


async def answer_in_slot(
    answerer: Answerer,
    slots: AnswerSlots,
    question: str,
    k: int | None,
    history: Sequence[PriorTurn] = (),
    filters: Filters | None = None,
) -> Answer:
    """`answerer.ask` in an answering slot: shared by every route that answers."""
    # Embedding and search are CPU-bound: keep them off the event loop, a few at a time.
    async with slots.slot():
        return await run_in_threadpool(answerer.ask, question, k, history, filters)


def prior_turns(answerer: Answerer, history: Sequence[HistoryTurn]) -> list[PriorTurn]:
    """A request's `history` as the core's turns, each question checked like a question."""
    turns = [turn.prior_turn() for turn in history]
    check_history(answerer, {f"history[{n}]": turn for n, turn in enumerate(turns)})
    return turns


def check_history(answerer: Answerer, turns: Mapping[str, PriorTurn]) -> None:
    """Earlier questions obey the rules a question does (not empty, not over the limit,
    which is a setting the schema cannot state). `turns` maps where each is to it."""
    for where, turn in turns.items():
        try:
            answerer.validate(turn.question, None)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None


@router.post(
    "/ask",
    response_model=Answer,
    name="api_ask",
    responses=_errors(400, 413, 422),
    summary="Answer a question with verbatim quotes",
)
async def ask_post(body: AskRequest, answerer: AnswererDep, slots: SlotsDep) -> Answer:
    """`answered` is false (and `quotes` empty) when the articles hold no answer.
    With `history`, `standalone_question` says how a follow-up was understood. With
    filters, every quote satisfies them all; a filter no article satisfies is answered
    "not found" (`answered` false) with an `answer` that says so."""
    filters = body.filters()
    history = prior_turns(answerer, body.history)
    return await answer_in_slot(answerer, slots, body.question, body.k, history, filters)


@router.get(
    "/ask",
    response_model=Answer,
    name="api_ask_get",
    responses=_errors(422),
    summary="Answer a question (query-string form)",
)
async def ask_get(
    answerer: AnswererDep,
    slots: SlotsDep,
    q: Annotated[
        str,
        Query(
            description="The question.",
            examples=["What is K-SPACE?"],
            json_schema_extra={"minLength": 1},  # documented; the Answerer says what is wrong
        ),
    ],
    k: Annotated[int | None, Query(ge=1, le=20, description="Quotes at most.")] = None,
    since: Annotated[
        str | None, Query(description=SINCE_DOC, json_schema_extra=DATE_FORMAT)
    ] = None,
    until: Annotated[
        str | None, Query(description=UNTIL_DOC, json_schema_extra=DATE_FORMAT)
    ] = None,
    source: Annotated[
        str | None, Query(description=SOURCE_DOC, max_length=MAX_FILTER_CHARS)
    ] = None,
    article: Annotated[
        list[ArticleId] | None,
        Query(
            description=ARTICLE_DOC + " Repeat the parameter for each.",
            max_length=MAX_FILTER_ARTICLES,
        ),
    ] = None,
) -> Answer:
    filters = Filters.of(since=since, until=until, source=source, article=article)
    return await answer_in_slot(answerer, slots, q, k, (), filters)


@router.get("/articles", response_model=list[ArticleSummary], summary="List indexed articles")
def list_articles(answerer: AnswererDep) -> list[ArticleSummary]:
    return answerer.snapshot().articles()


@router.get(
    "/articles/{article_id:path}",
    response_model=ArticleDetail,
    responses=_errors(404, 422),  # 422 in the contract's shape, not FastAPI's default one
    summary="One article; quote offsets index into its `text`",
)
def get_article(article_id: str, answerer: AnswererDep) -> ArticleDetail:
    return answerer.snapshot().article(article_id)


def health_of(answerer: Answerer) -> Health:
    """Counts of the live index and how its sources' refreshes went; an index without
    articles is a 503 that says how to fix it."""
    snap = answerer.snapshot()
    if snap.n_articles == 0:
        raise IndexEmpty(
            f"the index at {answerer.store.location} has no articles: add some with `qa index PATH`"
        )
    # The sources registry stays in the index directory whatever the store.
    sources = [s.status_model() for s in SourceRegistry(answerer.settings.index_dir).all()]
    store = getattr(answerer.store, "uri", None)
    return Health(
        status="ok",
        articles=snap.n_articles,
        chunks=snap.n_chunks,
        sources=sources,
        store="milvus" if store else "directory",
        store_uri=store.shown if store else None,
    )


@router.get("/health", response_model=Health, summary="Liveness and index size")
def health(answerer: AnswererDep) -> Health:
    return health_of(answerer)
