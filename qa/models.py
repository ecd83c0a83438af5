"""Typed result objects: the only currency between layers.

`SourceArticle` is what a reader makes of a file; the pydantic models are what
the core returns and what the CLI, the API and the page show. Their JSON is the
contract's JSON: nothing downstream builds a second dict by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.errors import InvalidInput


@dataclass(frozen=True)
class SourceArticle:
    """One article as read from a file, before it gets an id and is indexed.

    `text` is the article's plain text; quote offsets will index into it.
    `origin` names where it came from (file path, plus `#N` for the N-th
    article of a JSON list or JSON-lines file) and keys ids of articles that
    do not carry their own.
    """

    title: str
    text: str
    origin: str
    id: str | None = None
    url: str | None = None
    published: str | None = None
    author: str | None = None
    source: str | None = None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ArticleRef(_Frozen):
    """How a quote cites its article."""

    id: str
    title: str
    url: str | None = None
    published: str | None = None


class ArticleSummary(ArticleRef):
    chunks: int


class ArticleDetail(ArticleRef):
    text: str
    author: str | None = None
    source: str | None = None


class Highlight(_Frozen):
    """The words of a quote that answer the question, as article offsets."""

    start: int
    end: int


class Quote(_Frozen):
    text: str = Field(description="Verbatim: equals the article text[start:end].")
    score: float = Field(description="Confidence in [0, 1], comparable across questions.")
    article: ArticleRef
    start: int
    end: int
    highlight: Highlight | None = Field(
        None,
        description="The words that answer the question, inside the quote: "
        "start <= highlight.start < highlight.end <= end, offsets into the article text.",
    )

    @property
    def highlighted(self) -> str | None:
        """The highlight's text, sliced from the quote."""
        parts = self.highlight_parts()
        return parts[1] if parts else None

    def highlight_parts(self) -> tuple[str, str, str] | None:
        """The text as (before, highlighted words, after), for the faces that show the
        words in bold; None without a highlight or when it does not lie inside the quote
        (the face then shows the plain text)."""
        if self.highlight is None:
            return None
        a, b = self.highlight.start - self.start, self.highlight.end - self.start
        if not 0 <= a < b <= len(self.text):
            return None
        return self.text[:a], self.text[a:b], self.text[b:]

    def ref(self) -> QuoteRef:
        """Where this quote is, as the next question's history carries it."""
        return QuoteRef(article_id=self.article.id, start=self.start, end=self.end)


class Answer(_Frozen):
    question: str
    answered: bool
    answer: str
    quotes: list[Quote]
    took_ms: float
    standalone_question: str = Field(
        "",
        description="The question as understood and searched: `question` itself, or, for a "
        "follow-up, a self-contained form built from the earlier turns.",
    )

    @property
    def searched_for(self) -> str | None:
        """The standalone question when it differs from the one asked (a follow-up
        read in its conversation); None when the question was searched as asked."""
        s = self.standalone_question
        return s if s and s != self.question else None


class QuoteRef(_Frozen):
    """Where an earlier answer quoted from: enough to find the text again in the index.
    The quote's own text is never trusted (a client sends it back); offsets are."""

    article_id: str
    start: int
    end: int


class PriorTurn(_Frozen):
    """One earlier turn of a conversation: the question asked and what it quoted."""

    question: str
    quotes: tuple[QuoteRef, ...] = ()

    @classmethod
    def of(cls, answer: Answer) -> PriorTurn:
        """The turn an Answer makes, as the next question's history."""
        return cls(question=answer.question, quotes=tuple(q.ref() for q in answer.quotes))


MAX_FILTER_ARTICLES = 100  # article ids one filter may name
MAX_FILTER_CHARS = 512  # a source name or an article id
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class Filters(_Frozen):
    """Which articles a question may be answered from: all conditions hold at once.

    `since` and `until` are inclusive and compare with the date part of an article's
    `published` (as written, whatever its time zone); an article without a date fails
    both. `source` is an exact source name; `article` a list of article ids. Blank
    values (an empty form field) mean "no condition". Hashable: part of the answer
    cache key.
    """

    since: date | None = None
    until: date | None = None
    source: str | None = None
    article: tuple[str, ...] = ()

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_day(cls, value: Any) -> Any:
        if value is None or isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be an ISO date (YYYY-MM-DD), not {value!r}")
        text = value.strip()
        if not text:
            return None
        try:
            if _ISO_DAY.fullmatch(text):
                return date.fromisoformat(text)
        except ValueError:
            pass
        raise ValueError(f"must be an ISO date (YYYY-MM-DD), not {text!r}")

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a source name, not {value!r}")
        if len(value) > MAX_FILTER_CHARS:
            raise ValueError(f"is {len(value)} characters long; the limit is {MAX_FILTER_CHARS}")
        return value.strip() or None

    @field_validator("article", mode="before")
    @classmethod
    def _articles(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError("must be a list of article ids")
        if len(value) > MAX_FILTER_ARTICLES:
            raise ValueError(f"names {len(value)} articles; at most {MAX_FILTER_ARTICLES}")
        for n, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"item {n} is not an article id (a non-empty string)")
            if len(item) > MAX_FILTER_CHARS:
                raise ValueError(f"item {n} is longer than {MAX_FILTER_CHARS} characters")
        return tuple(dict.fromkeys(value))  # ids are exact: kept as given, repeats dropped

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    @classmethod
    def of(cls, **values: Any) -> Filters | None:
        """Filters from a face's fields; None when none is set. A bad value is an
        InvalidInput naming the field, in one line."""
        try:
            filters = cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise InvalidInput(f"{where}: {message}" if where else message) from None
        return filters if filters.active else None

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.source or self.article)

    def describe(self) -> str:
        """The conditions in words, for a message."""
        parts = []
        if self.since:
            parts.append(f"published since {self.since}")
        if self.until:
            parts.append(f"published until {self.until}")
        if self.source:
            parts.append(f"source {self.source!r}")
        if self.article:
            shown = ", ".join(repr(a) for a in self.article[:3])
            more = f" and {len(self.article) - 3} more" if len(self.article) > 3 else ""
            parts.append(f"article {shown}{more}")
        return ", ".join(parts) or "no condition"


class SourceStatus(_Frozen):
    """How a source's refreshes go, as `/api/health` shows it (no location: it may be
    an intranet address)."""

    id: int
    name: str
    kind: Literal["web", "folder"]
    status: Literal["new", "ok", "partial", "failed"] = Field(
        description="new: never refreshed; partial: some pages failed; failed: the last "
        "refresh published nothing (see error)."
    )
    last_refresh: str | None = Field(None, description="When the last refresh ended (ISO).")
    next_due: str | None = Field(None, description="When it is next refreshed (ISO).")
    error: str | None = None


class SourceInfo(SourceStatus):
    """One registered source, as `qa sources list` shows it."""

    location: str
    every: str = Field(description='How often it is refreshed, e.g. "30m".')
    articles: int = Field(description="Articles last indexed from it.")


class Health(_Frozen):
    status: str
    articles: int
    chunks: int
    sources: list[SourceStatus] = Field(
        default_factory=list, description="Registered sources and how their refreshes went."
    )
    store: Literal["directory", "milvus"] = Field(
        "directory", description="Which store is served: the index directory, or Milvus."
    )
    store_uri: str | None = Field(
        None, description="The Milvus store's URI (it never carries credentials); null otherwise."
    )


class IndexReport(_Frozen):
    """What one `qa index` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # files whose article is already indexed under another id
    skipped: int = 0
    removed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    problems: list[str] = Field(default_factory=list)


class RefreshReport(_Frozen):
    """What one refresh of one source did; `error` set means nothing was published."""

    source: str
    ok: bool
    error: str | None = None
    listed: int = 0  # article URLs (or files) the source lists
    requested: int = 0  # HTTP requests sent, robots.txt and listings included
    downloaded: int = 0  # answers with a body (200)
    not_modified: int = 0  # 304 answers: unchanged, nothing downloaded
    skipped: int = 0  # over the page cap, disallowed by robots.txt, or unchanged (lastmod)
    index: IndexReport = Field(default_factory=IndexReport)
    problems: list[str] = Field(default_factory=list)  # per page; the run went on
    seconds: float = 0.0
