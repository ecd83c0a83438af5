"""Bodies of the OpenAI-compatible routes under /v1 (chat completions and models).

Only what `qa` reads is declared; everything else a client sends (`temperature`,
`max_tokens`, `tools`, ...) is accepted and ignored, so any chat-completions
client works unchanged. The replies carry the full `Answer` in the extension
field `qa`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from qa.models import Answer
from qa.web.schemas import MAX_QUOTES, FilterFields, HistoryQuote

MODEL_ID = "qa"


# -- request -------------------------------------------------------------------------------
class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class AnswerEcho(BaseModel):
    """The `qa` field of an earlier reply, sent back on its assistant message: its quotes
    become that turn's quotes (article id and offsets only; the rest is ignored)."""

    quotes: list[HistoryQuote] = Field(default_factory=list, max_length=MAX_QUOTES)


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="`user` messages are the questions; system and developer messages are "
        "ignored; an assistant message may carry its reply's `qa` field back."
    )
    content: str | list[TextPart] | None = Field(
        None, description="A string, or a list of text parts (joined by new lines)."
    )
    qa: AnswerEcho | None = Field(None, description="The `qa` field of the reply it repeats.")

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatCompletionRequest(FilterFields):
    """The last user message is the question; the user messages before it, each with the
    quotes of the assistant reply that followed it, are the conversation so far (the
    last 20 turns). Extensions: `k`, and the filters of `POST /api/ask` (`since`,
    `until`, `source`, `article`)."""

    model: str = Field(MODEL_ID, max_length=256, description=f"Any name; `{MODEL_ID}` answers.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = Field(False, description="Send the reply as server-sent events.")
    stream_options: StreamOptions | None = None
    # Strict: JSON `true` is not the number 1 (as in POST /api/ask).
    k: StrictInt | None = Field(
        None, ge=1, le=20, description="Extension: quotes at most (default: the server's k)."
    )


# -- replies -------------------------------------------------------------------------------
class Usage(BaseModel):
    """Word counts: `qa` has no tokenizer of its own to count with."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    qa: Answer = Field(description="Extension: the Answer object, quotes and all.")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed reply; the last one with a choice carries `qa`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    qa: Answer | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- errors ----------------------------------------------------------------------------------
class OpenAIErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    message: str
    type: str = Field(description="e.g. `invalid_request_error`, `server_error`.")
    param: str | None = None
    code: str | None = Field(None, description="The same code /api would give.")


class OpenAIErrorResponse(BaseModel):
    """The OpenAI error shape, used by every /v1 route: `{"error": {"message", "type",
    "param", "code"}}`."""

    model_config = ConfigDict(frozen=True)

    error: OpenAIErrorDetail


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def openai_error(status: int, code: str, message: str) -> tuple[int, OpenAIErrorResponse]:
    """(status, body) of an error on /v1. Invalid requests are 400 there, as the OpenAI
    API answers them (and its clients raise BadRequestError), not /api's 422."""
    if status == 422:
        status = 400
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return status, OpenAIErrorResponse(
        error=OpenAIErrorDetail(message=message, type=kind, code=code)
    )
