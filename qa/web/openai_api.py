"""OpenAI-compatible routes, so chat UIs and the `openai` client can talk to `qa`.

`POST /v1/chat/completions`: messages → (question, earlier turns) → the same
`Answerer.ask` as /api/ask, in the same answering slots → the Answer as chat
text (numbered quotes and their sources), plus the Answer itself in `qa`.
`GET /v1/models` lists the one model. The rate limit, body cap and CORS are the
API's; errors take the OpenAI shape (qa.web.errors); reading stays open, so an
`Authorization` header is accepted and ignored.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import islice, pairwise
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from qa.conversation import MAX_TURNS
from qa.errors import InvalidInput
from qa.models import Answer, PriorTurn, Quote, QuoteRef
from qa.render import quote_markdown
from qa.web.api import answer_in_slot, check_history
from qa.web.deps import AnswererDep, SlotsDep
from qa.web.openai_schemas import (
    MODEL_ID,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
    Usage,
)
from qa.web.schemas import MAX_QUOTES
from qa.web.templating import article_url

STARTED = int(time.time())  # the model's `created`: it is as old as this server


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": OpenAIErrorResponse} for s in statuses}


router = APIRouter(prefix="/v1", tags=["openai"], responses=_errors(429, 503))


# -- messages → question and history ---------------------------------------------------------
def conversation(messages: Sequence[ChatMessage]) -> tuple[str, dict[str, PriorTurn]]:
    """The last user message, and the user messages before it (the last MAX_TURNS) as
    earlier turns, keyed by where they are (`messages[3]`). A turn's quotes are those of
    the `qa` field its assistant reply carried back, if it did; none otherwise."""
    asked = [n for n, m in enumerate(messages) if m.role == "user"]
    if not asked:
        raise InvalidInput("messages: there is no user message to answer")
    earlier: dict[str, PriorTurn] = {}
    for n, following in pairwise(asked):
        reply = next((m for m in messages[n + 1 : following] if m.role == "assistant"), None)
        if reply and reply.qa:
            quotes = tuple(q.ref() for q in reply.qa.quotes)
        else:  # a chat UI that keeps only the text: its source links say where
            quotes = cited_in(reply.text()) if reply else ()
        earlier[f"messages[{n}]"] = PriorTurn(question=messages[n].text(), quotes=quotes)
    kept = dict(list(earlier.items())[-MAX_TURNS:])
    return messages[asked[-1]].text(), kept


# The article view's address at a quote, as chat_text writes it in the sources.
_SOURCE_LINK = re.compile(r"/articles/([^/?#\s]+)\?start=(\d{1,9})&end=(\d{1,9})#quote")


def cited_in(text: str) -> tuple[QuoteRef, ...]:
    """The quotes an earlier reply cited, read from its source links. Only where to
    look: the core reads the text at these offsets from the index, or ignores them."""
    return tuple(
        QuoteRef(article_id=unquote(m.group(1)), start=int(m.group(2)), end=int(m.group(3)))
        for m in islice(_SOURCE_LINK.finditer(text), MAX_QUOTES)
    )


# -- Answer → chat text ----------------------------------------------------------------------
def chat_text(answer: Answer, link: Callable[[Quote], str]) -> str:
    """The answer with its `[n]` markers, each quote verbatim under its number, the
    numbered sources (`link` gives a quote's address), and what was searched when the
    question was understood from the conversation. Plain text that reads as Markdown
    too: one paragraph per quote, the words that answer in bold, the sources as a list."""
    parts = [answer.answer]
    if answer.answered:
        numbered = list(enumerate(answer.quotes, 1))
        parts.extend(f"[{n}] “{quote_markdown(q)}”" for n, q in numbered)
        sources = [f"- [{n}] {q.article.title} — {link(q)}" for n, q in numbered]
        parts.append("\n".join(["Sources:", *sources]))
    if answer.searched_for:
        parts.append(f"Searched for: {answer.searched_for}")
    return "\n\n".join(parts)


def _quote_link(request: Request) -> Callable[[Quote], str]:
    def link(quote: Quote) -> str:
        return article_url(request, quote.article.id, quote.start, quote.end)

    return link


def _words(text: str) -> int:
    return len(text.split())


# -- routes ----------------------------------------------------------------------------------
# Before OpenAPI 3.2, the schema of an event stream describes one event.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {
            "type": "string",
            "description": "A ChatCompletionChunk as JSON; the last event is `[DONE]`.",
        }
    },
    "required": ["data"],
}
STREAM_DOC = {
    "description": "The ChatCompletion, or with `stream: true` server-sent events: "
    "`data: {chat.completion.chunk}` lines ending with `data: [DONE]`.",
    "content": {"text/event-stream": {"schema": SSE_EVENT}},
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    name="openai_chat_completions",
    responses={200: STREAM_DOC, **_errors(400, 413)},
    summary="Answer the last user message (OpenAI chat-completions shape)",
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, answerer: AnswererDep, slots: SlotsDep
) -> Any:
    """The reply's text is the answer with its numbered quotes and their sources; `qa`
    holds the Answer object. Send `qa` back on its assistant message so a follow-up
    knows what that reply quoted."""
    filters = body.filters()
    question, earlier = conversation(body.messages)
    check_history(answerer, earlier)
    turns = list(earlier.values())
    answer = await answer_in_slot(answerer, slots, question, body.k, turns, filters)
    content = chat_text(answer, _quote_link(request))
    prompt = sum(_words(m.text()) for m in body.messages)
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=_words(content),
        total_tokens=prompt + _words(content),
    )
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        with_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _events(reply_id, created, content, answer, usage if with_usage else None)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    return ChatCompletion(
        id=reply_id,
        created=created,
        model=MODEL_ID,
        choices=[Choice(message=AssistantMessage(content=content))],
        usage=usage,
        qa=answer,
    )


async def _events(
    reply_id: str, created: int, content: str, answer: Answer, usage: Usage | None
) -> AsyncIterator[str]:
    """The reply as chunks: the role, the content a line at a time, then the stop with
    `qa` (and the usage, when asked for, as OpenAI sends it: a chunk without choices)."""

    def event(choices: list[ChunkChoice], **extra: Any) -> str:
        chunk = ChatCompletionChunk(
            id=reply_id, created=created, model=MODEL_ID, choices=choices, **extra
        )
        # As OpenAI sends them: a delta holds only what it adds, `finish_reason` is always
        # there (null until the end), `usage` and `qa` only on the chunk that has them.
        data = {k: v for k, v in chunk.model_dump(mode="json").items() if v is not None}
        data["choices"] = [
            {
                "index": c.index,
                "delta": c.delta.model_dump(mode="json", exclude_none=True),
                "finish_reason": c.finish_reason,
            }
            for c in chunk.choices
        ]
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield event([ChunkChoice(delta=Delta(role="assistant", content=""))])
    for line in content.splitlines(keepends=True):
        yield event([ChunkChoice(delta=Delta(content=line))])
    yield event([ChunkChoice(delta=Delta(), finish_reason="stop")], qa=answer)
    if usage is not None:
        yield event([], usage=usage)
    yield "data: [DONE]\n\n"


@router.get("/models", response_model=ModelList, summary="The model `qa` answers as")
async def list_models() -> ModelList:
    return ModelList(data=[ModelCard(id=MODEL_ID, created=STARTED)])


@router.get(
    "/models/{model_id}",
    response_model=ModelCard,
    responses=_errors(404),
    summary="One model (only `qa` exists)",
)
async def get_model(model_id: str) -> ModelCard:
    if model_id != MODEL_ID:
        raise HTTPException(404, f"there is no model {model_id!r}; the model is {MODEL_ID!r}")
    return ModelCard(id=MODEL_ID, created=STARTED)
