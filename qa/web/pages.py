"""HTML pages: the chat, the embeddable chat, the article list and the article view.

They work without JavaScript (forms post back, answers render on the server, and
the earlier turns travel sealed in a hidden field so follow-up questions keep
their context; the filter fields are part of the same form and stay set from
one question to the next); `static/chat.js` then upgrades the chat to answer in
place through /api/ask, sending the turns it shows as `history` and the filters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from qa.answering import Answerer
from qa.errors import QAError
from qa.models import Answer, Filters, PriorTurn
from qa.settings import Settings
from qa.web.deps import AnswererDep, SealDep, SettingsDep, SlotsDep, TemplatesDep
from qa.web.highlight import paragraphs, parse_span
from qa.web.history import TurnSeal
from qa.web.limits import AnswerSlots
from qa.web.schemas import ErrorDetail

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@dataclass(frozen=True)
class Turn:
    """One question in the conversation, with its answer or the error it met."""

    question: str
    answer: Answer | None = None
    error: ErrorDetail | None = None

    @property
    def searched_for(self) -> str | None:
        """What was searched, when the earlier turns made it differ from the question."""
        return self.answer.searched_for if self.answer else None

    def history_json(self) -> str:
        """This turn as chat.js sends it back in `history`: the question and the quotes
        exactly as the API returns them ("" for a turn that met an error)."""
        if self.answer is None:
            return ""
        return json.dumps(self.answer.model_dump(mode="json", include={"question", "quotes"}))


@dataclass(frozen=True)
class FilterForm:
    """The filter fields as the form sent them, to check and to show again."""

    since: str = ""
    until: str = ""
    source: str = ""

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.source)

    def filters(self) -> Filters | None:
        """InvalidInput for a bad value (the page shows it like any other error)."""
        return Filters.of(since=self.since, until=self.until, source=self.source)


def filter_form(
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
) -> FilterForm:
    return FilterForm(since.strip(), until.strip(), source.strip())


def filter_query(since: str = "", until: str = "", source: str = "") -> FilterForm:
    return FilterForm(since.strip(), until.strip(), source.strip())


FilterFormDep = Annotated[FilterForm, Depends(filter_form)]
FilterQueryDep = Annotated[FilterForm, Depends(filter_query)]


def _sources(answerer: Answerer) -> list[str]:
    """The indexed sources, for the filter's list; none while there is no index (the
    page still opens, and asking says what is wrong)."""
    try:
        return answerer.snapshot().sources()
    except QAError:
        return []


@dataclass(frozen=True)
class ChatDeps:
    answerer: Answerer
    settings: Settings
    templates: Jinja2Templates
    seal: TurnSeal
    slots: AnswerSlots


def chat_deps(
    answerer: AnswererDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    seal: SealDep,
    slots: SlotsDep,
) -> ChatDeps:
    return ChatDeps(answerer, settings, templates, seal, slots)


ChatDep = Annotated[ChatDeps, Depends(chat_deps)]
QuestionForm = Annotated[str, Form()]
HistoryForm = Annotated[str, Form(description="Sealed earlier turns (see qa.web.history).")]


async def _chat(
    request: Request,
    deps: ChatDeps,
    question: str | None,
    history: str | None,
    embed: bool,
    shown: FilterForm,
) -> Response:
    earlier = deps.seal.open(history)
    turns = [Turn(a.question, answer=a) for a in earlier]
    status = 200
    draft = ""
    if question is not None:
        history = [PriorTurn.of(a) for a in earlier]
        try:
            filters = shown.filters()
            async with deps.slots.slot():
                answer = await run_in_threadpool(
                    deps.answerer.ask, question, None, history, filters
                )
        except QAError as exc:
            turns.append(Turn(question, error=ErrorDetail(code=exc.code, message=exc.message)))
            status, draft = exc.status, question
        else:
            turns.append(Turn(answer.question, answer=answer))
            earlier.append(answer)
    context = {
        "turns": turns,
        "history": deps.seal.seal(earlier) if earlier else "",
        "draft": draft,
        "max_chars": deps.settings.max_question_chars,
        "embed": embed,
        "link_target": "_blank" if embed else None,
        "form_action": request.url_for("embed" if embed else "chat"),
        "filters": shown,
        "sources": await run_in_threadpool(_sources, deps.answerer),
    }
    name = "embed.html" if embed else "chat.html"
    return deps.templates.TemplateResponse(request, name, context, status_code=status)


@router.get("/", name="chat")
async def chat_page(
    request: Request, deps: ChatDep, shown: FilterQueryDep, q: str | None = None
) -> Response:
    """The chat; `/?q=...` answers a question straight from a link (with `since`,
    `until` and `source`, within those filters)."""
    return await _chat(request, deps, q, None, embed=False, shown=shown)


@router.post("/")
async def chat_post(
    request: Request,
    deps: ChatDep,
    shown: FilterFormDep,
    question: QuestionForm = "",
    history: HistoryForm = "",
) -> Response:
    return await _chat(request, deps, question, history, embed=False, shown=shown)


@router.get("/embed", name="embed")
async def embed_page(
    request: Request, deps: ChatDep, shown: FilterQueryDep, q: str | None = None
) -> Response:
    """The chat alone, for `<iframe>`s on other sites (links open in a new tab)."""
    return await _chat(request, deps, q, None, embed=True, shown=shown)


@router.post("/embed")
async def embed_post(
    request: Request,
    deps: ChatDep,
    shown: FilterFormDep,
    question: QuestionForm = "",
    history: HistoryForm = "",
) -> Response:
    return await _chat(request, deps, question, history, embed=True, shown=shown)


@router.get("/articles", name="articles_page")
def articles_page(request: Request, answerer: AnswererDep, templates: TemplatesDep) -> Response:
    snap = answerer.snapshot()
    context = {"articles": snap.articles(), "chunks": snap.n_chunks}
    return templates.TemplateResponse(request, "articles.html", context)


@router.get("/articles/{article_id:path}", name="article_page")
def article_page(
    request: Request,
    article_id: str,
    answerer: AnswererDep,
    templates: TemplatesDep,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    """The whole article; `?start=S&end=E` highlights that span (bad offsets: no highlight)."""
    article = answerer.snapshot().article(article_id)
    span = parse_span(start, end, len(article.text))
    context = {
        "article": article,
        "paragraphs": paragraphs(article.text, span),
        "span": span,
        "span_ignored": span is None and (start is not None or end is not None),
    }
    return templates.TemplateResponse(request, "article.html", context)
