"""Request and error bodies of the HTTP API (answers and articles are `qa.models`)."""

from __future__ import annotations

import re

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from qa.models import IndexReport


class AskRequest(BaseModel):
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
