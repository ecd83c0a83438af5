"""The one settings object. Every knob is here, read from QA_* environment variables.

CLI flags override fields; the web app gets the object from its factory; tests
build their own. `tests/test_docs.py` fails when a field is missing from the
README's settings table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.errors import QAError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Where the index lives.")
    store: str | None = Field(
        None,
        description="A store other than the index directory: milvus://HOST:PORT (a Milvus "
        "server) or milvus:///ABSOLUTE/PATH.db (Milvus Lite), optionally ?prefix=NAME; unset: "
        "the index directory. Sources and the encoder stay in the index directory.",
    )
    k: int = Field(3, ge=1, le=20, description="Quotes per answer by default.")
    # Chosen by training/fit_scorer.py: the final score is the chance that the top
    # quote answers; this cut refuses 95% of SQuAD-train questions asked of the BBC
    # articles alone (none answerable there). See bench/RESULTS.md.
    min_score: float = Field(
        0.133,
        ge=0.0,
        le=1.0,
        description="Answers whose best quote scores below this are 'not found'.",
    )
    reader: bool = Field(
        True,
        description="Read the best candidate sentences with the trained reader model "
        "(better quotes, highlights); off: the first score alone.",
    )
    answer_cache: int = Field(
        1024, ge=0, description="Answers kept per index version for repeated questions (0: off)."
    )
    max_question_chars: int = Field(1000, ge=10, description="Longest question accepted.")
    host: str = Field("127.0.0.1", description="Address `qa serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `qa serve` listens on.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call /api from a browser ('*' for any).",
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted.")
    encoder: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="Question encoder: the index's ONNX copy when present (auto), or "
        "sentence-transformers (torch).",
    )
    export_onnx: bool = Field(
        True,
        description="Store an ONNX copy of the encoder in the index (torch-free queries).",
    )
    # -- ingest over HTTP and its limits ------------------------------------------------
    api_key: SecretStr | None = Field(
        None,
        description="Key for POST/DELETE /api/articles (Bearer or X-API-Key); unset: ingest "
        "over HTTP is disabled.",
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted by POST /api/articles (uploads).",
    )
    fetch_max_bytes: int = Field(
        5_000_000, ge=1024, description="Largest page fetched for POST /api/articles {url}."
    )
    fetch_timeout: float = Field(
        10.0, gt=0, description="Seconds a URL fetch may take in all, redirects included."
    )
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests per minute per client IP under /api (0: no limit)."
    )
    ann_min_chunks: int = Field(
        20_000,
        ge=1,
        description="Chunks from which a new index version also gets an approximate (HNSW) "
        "dense index; below, the dense search is exact.",
    )
    max_concurrent: int = Field(8, ge=1, description="Questions answered at the same time.")
    queue_timeout: float = Field(
        2.0,
        ge=0,
        description="Seconds a question waits for a free answering slot before a 503.",
    )
    # -- sources: feeds, sitemaps and folders kept in sync (qa.sources) --------------------
    fetch_allow: list[str] = Field(
        default_factory=list,
        description="Private hosts or ranges that may be fetched on purpose (JSON list: "
        "'10.0.0.0/8', '127.0.0.1:8080', 'feeds.intranet'); all else private stays refused.",
    )
    crawl_delay: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds between two requests to one host while reading a source "
        "(a longer robots.txt Crawl-delay wins, up to 60).",
    )
    crawl_max_pages: int = Field(
        500, ge=1, description="Pages requested at most per source per refresh."
    )
    refresh_sources: bool = Field(
        True, description="`qa serve` refreshes due sources in the background."
    )

    @field_validator("store", mode="before")
    @classmethod
    def _store_uri_parses(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # QA_STORE= (empty): the index directory
        if isinstance(value, str):
            from qa.stores.uri import parse_store_uri

            try:
                parse_store_uri(value)
            except QAError as exc:  # pydantic reports a ValueError as the field's error
                raise ValueError(exc.message) from None
        return value

    @field_validator("fetch_allow")
    @classmethod
    def _allow_list_parses(cls, value: list[str]) -> list[str]:
        if value:  # qa.fetch pulls in httpx: ~0.2 s a cold `qa ask` need not pay
            from qa.fetch import AllowList

            AllowList.parse(value)  # a ValueError names the bad entry
        return value
