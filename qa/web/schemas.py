"""Request and error bodies of the HTTP API (answers and articles are `qa.models`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from qa.conversation import MAX_TURNS
from qa.models import (
    MAX_FILTER_ARTICLES,
    MAX_FILTER_CHARS,
    Filters,
    IndexReport,
    PriorTurn,
    QuoteRef,
)

MAX_QUOTES = 20  # quotes per earlier turn: what k allows at most
MAX_OFFSET = 1_000_000_000  # far beyond any article (files over 20 MB are not indexed)


class HistoryArticle(BaseModel):
    """A quote's `article` as the API returned it; only `id` is read, the rest is ignored."""

    id: str = Field(min_length=1, max_length=512)
    title: str | None = None
    url: str | None = None
    published: str | None = None


class HistoryQuote(BaseModel):
    """A quote of an earlier answer, sent back as the API returned it.

    Only the article id and the offsets are used: the text is read again from the
    index, so `text` and `score` are accepted (bounded) but never trusted or echoed.
    """

    text: str | None = Field(None, max_length=20_000)
    score: StrictFloat | StrictInt | None = None
    article: HistoryArticle
    start: StrictInt = Field(ge=0, le=MAX_OFFSET)
    end: StrictInt = Field(ge=0, le=MAX_OFFSET)

    @model_validator(mode="after")
    def _ordered(self) -> HistoryQuote:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def ref(self) -> QuoteRef:
        return QuoteRef(article_id=self.article.id, start=self.start, end=self.end)


class HistoryTurn(BaseModel):
    """One earlier turn: the question asked and the quotes its answer gave."""

    question: str = Field(
        min_length=1,
        description="The earlier question (at most QA_MAX_QUESTION_CHARS characters).",
        examples=["What is K-SPACE?"],
    )
    quotes: list[HistoryQuote] = Field(
        default_factory=list,
        max_length=MAX_QUOTES,
        description="The quotes of its answer, as the API returned them (may be empty).",
    )

    def prior_turn(self) -> PriorTurn:
        return PriorTurn(question=self.question, quotes=tuple(q.ref() for q in self.quotes))


SINCE_DOC = "Only articles published on or after this date (YYYY-MM-DD); undated ones are left out."
UNTIL_DOC = (
    "Only articles published on or before this date (YYYY-MM-DD); undated ones are left out."
)
SOURCE_DOC = "Only articles from this source (its exact name)."
ARTICLE_DOC = f"Only these articles (ids; at most {MAX_FILTER_ARTICLES})."
ArticleId = Annotated[str, Field(min_length=1, max_length=MAX_FILTER_CHARS)]
# A date, or blank (spaces only): an empty form field is no condition (the chat page's filter
# form sends its fields whether filled in or not).
DATE_FORMAT = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": r"^\s*$"},
        {"type": "null"},
    ]
}


class FilterFields(BaseModel):
    """The filters a question may carry: every quote of the answer satisfies them all.
    Checked by `qa.models.Filters` (the one place that knows the rules)."""

    since: str | None = Field(
        None, description=SINCE_DOC, examples=["2023-01-01"], json_schema_extra=DATE_FORMAT
    )
    until: str | None = Field(
        None, description=UNTIL_DOC, examples=["2023-12-31"], json_schema_extra=DATE_FORMAT
    )
    source: str | None = Field(None, max_length=MAX_FILTER_CHARS, description=SOURCE_DOC)
    article: list[ArticleId] = Field(
        default_factory=list, max_length=MAX_FILTER_ARTICLES, description=ARTICLE_DOC
    )

    def filters(self) -> Filters | None:
        return Filters.of(
            since=self.since, until=self.until, source=self.source, article=self.article
        )


class AskRequest(FilterFields):
    """Body of `POST /api/ask`. Unknown fields are ignored so clients can send extras."""

    question: str = Field(
        description="The question, in plain words (at most QA_MAX_QUESTION_CHARS characters).",
        examples=["What is K-SPACE?"],
        # Documented, not enforced here: the Answerer's own check says what is wrong.
        json_schema_extra={"minLength": 1},
    )
    # Strict: JSON `true` is not the number 1 (lax mode would quietly take it as k=1).
    k: StrictInt | None = Field(
        None, ge=1, le=20, description="How many quotes at most (default: the server's k)."
    )
    history: list[HistoryTurn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="The earlier turns of the conversation, oldest first, so a follow-up "
        "('When was it established?') is understood. Quotes are read again from the index "
        "by article id and offsets; their text is never trusted.",
    )


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable machine-readable code, e.g. `article_not_found`.")
    message: str = Field(description="One human-readable sentence.")


class ErrorResponse(BaseModel):
    """The one error shape: `{"error": {"code": "...", "message": "..."}}`."""

    model_config = ConfigDict(frozen=True)

    error: ErrorDetail

    @classmethod
    def of(cls, code: str, message: str) -> ErrorResponse:
        return cls(error=ErrorDetail(code=code, message=message))


# -- ingest ---------------------------------------------------------------------------------
TEXT_FIELDS = ("text", "body", "content")
_Text = str | list[str] | None
# As in a .json file: a string, a number, or a list of strings (joined with commas).
_Meta = str | StrictInt | StrictFloat | list[str] | None


class ArticleIn(BaseModel):
    """An article as a `.json` file would hold it (the same rules as `qa index`).

    The text is `text`, `body` or `content` (a string, or a list of paragraphs). Without
    an `id` (or a `url`), the id is derived from the title, so posting an edited
    article with the same title replaces the old one. Unknown fields are ignored.
    """

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": [f]} for f in TEXT_FIELDS]},
    )

    title: _Meta = Field(None, description="Derived from the text when missing.")
    text: _Text = Field(None, description="The article text (or use `body` or `content`).")
    body: _Text = None
    content: _Text = None
    id: _Meta = Field(None, description="Stable id; posting the same id replaces it.")
    url: _Meta = None
    published: _Meta = Field(None, description="ISO date; an invalid one is dropped.")
    author: _Meta = None
    source: _Meta = None

    @model_validator(mode="after")
    def _has_a_text_field(self) -> ArticleIn:
        if all(getattr(self, f) is None for f in TEXT_FIELDS):
            raise ValueError("an article needs its text in 'text', 'body' or 'content'")
        return self


_HTTP_URL = re.compile(r"^[Hh][Tt][Tt][Pp][Ss]?://")


class FetchIn(BaseModel):
    """Fetch this page and ingest it (HTML, plain text, Markdown or JSON, by content type)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="An http(s) URL of a public host.",
        examples=["https://example.com/news/story.html"],
        max_length=2048,
        json_schema_extra={"pattern": _HTTP_URL.pattern},
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        # The schema's pattern, with a message that says what to send instead.
        if not _HTTP_URL.match(url):
            raise ValueError("only http:// and https:// URLs are fetched")
        return url


class IngestResult(BaseModel):
    """What a write did, and the ids (now in the index) of the articles it was given."""

    model_config = ConfigDict(frozen=True)

    report: IndexReport
    ids: list[str]
