"""Request and error bodies of the HTTP API (answers and articles are `qa.models`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AskRequest(BaseModel):
    """Body of `POST /api/ask`. Unknown fields are ignored so clients can send extras."""

    question: str = Field(
        description="The question, in plain words.", examples=["What is K-SPACE?"]
    )
    k: int | None = Field(
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
