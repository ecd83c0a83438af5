"""Domain errors: raised by the core, translated once at each edge.

Every error carries a stable machine `code`, a one-line human `message` and the
HTTP status it maps to, so the CLI prints the message and exits non-zero while
the API answers `{"error": {"code", "message"}}` with the status.
"""

from __future__ import annotations


class QAError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(QAError):
    """The caller asked for something malformed (empty question, bad k)."""

    code = "invalid_input"
    status = 422


class PayloadTooLarge(QAError):
    code = "payload_too_large"
    status = 413


class UnreadableFile(QAError):
    """A file could not be read or parsed as an article; indexing skips it."""

    code = "unreadable_file"
    status = 422


class ArticleNotFound(QAError):
    code = "article_not_found"
    status = 404


class IndexMissing(QAError):
    code = "index_missing"
    status = 503


class IndexEmpty(QAError):
    code = "index_empty"
    status = 503


class IndexCorrupt(QAError):
    code = "index_corrupt"
    status = 503


class IndexIncompatible(QAError):
    """The index was built by another model, chunker or format version."""

    code = "index_incompatible"
    status = 503


class IndexBusy(QAError):
    """Another writer holds the index lock."""

    code = "index_busy"
    status = 503


class StoreUnavailable(QAError):
    """A store named by a URI cannot be used: pymilvus missing, or the server unreachable."""

    code = "store_unavailable"
    status = 503


class EncoderUnavailable(QAError):
    code = "encoder_unavailable"
    status = 503


class Unauthorized(QAError):
    """A write route was called without the API key, or with a wrong one."""

    code = "unauthorized"
    status = 401


class IngestDisabled(QAError):
    """Ingest over HTTP needs an API key configured (QA_API_KEY)."""

    code = "ingest_disabled"
    status = 403


class FetchRefused(QAError):
    """A URL that must not be fetched (scheme, address, type or size), or a page not ingested."""

    code = "fetch_refused"
    status = 422


class FetchFailed(QAError):
    """The page could not be fetched: network error, timeout, or an error status."""

    code = "fetch_failed"
    status = 502

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status  # the remote server's error status, when it sent one


class SourceUnreadable(QAError):
    """A source (feed, sitemap, page or folder) could not be read at all: nothing is
    published from that refresh."""

    code = "source_unreadable"
    status = 502


class SourceNotFound(QAError):
    code = "source_not_found"
    status = 404


class RateLimited(QAError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerBusy(QAError):
    """Every answering slot stayed busy for the whole wait."""

    code = "server_busy"
    status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
