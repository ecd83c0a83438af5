"""The store boundary: what answering reads and what indexing writes.

Two stores implement it: the index directory (qa.store: `IndexStore`,
`Snapshot`, `Writer`) and Milvus (qa.stores.milvus). The protocols are named
after the directory store's own methods, so it conforms as it is
(tests/test_milvus_store.py checks both by their signatures).

- `Store`: where versions live. `open()` gives the live version as a
  `ReadView`; `writer()` is a context manager yielding a `WriteSession` whose
  changes become one new version, published whole on a clean exit and thrown
  away on an error (a killed writer leaves only an unpublished version, which
  the next writer cleans up).
- `ReadView`: one published version, never changing under its reader.
- `WriteSession`: changes for the next version.

Chunk and sentence ids are ints the writer assigns and never reuses within a
store, so an id names one chunk (or sentence) in every version that holds it.
`among`, where taken, is a sorted array of the chunk ids a search may return
(a filter's allowed chunks); None allows all.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from qa.models import ArticleDetail, ArticleRef, ArticleSummary
from qa.spans import SpanRow, SpanTable
from qa.store import ChunkRecord, StoredArticle


@runtime_checkable
class ReadView(Protocol):
    version: str  # the published version's name: a change means reopen
    n_articles: int
    n_chunks: int
    n_sentences: int

    # -- search ---------------------------------------------------------------
    def nearest_chunks(
        self, qvec: np.ndarray, n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n chunks nearest the question vector: ids and cosines, best first."""
        ...

    def best_by_terms(
        self, query_terms: Sequence[str], n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n best chunks by BM25 over the distinct query terms: ids and scores."""
        ...

    def doc_freqs(self, query_terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term; terms in none are left out."""
        ...

    def chunk_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def sentence_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray: ...

    # -- spans and terms --------------------------------------------------------
    def sentences_of_chunks(self, chunk_ids: Sequence[int]) -> list[SpanRow]: ...

    def sentences_around_chunks(self, chunk_ids: Sequence[int]) -> SpanTable:
        """These chunks' sentences plus the sentence just before and after each
        chunk in id order, by id (quote selection reads the neighbours only when
        they are adjacent ids of the same article)."""
        ...

    def chunks_of_articles(self, article_ids: Sequence[str]) -> np.ndarray: ...

    def chunks_by_id(self, ids: Sequence[int]) -> list[SpanRow]: ...

    def term_presence(self, sentence_ids: Sequence[int], query_terms: Sequence[str]) -> np.ndarray:
        """Which query terms each sentence holds: rows sentences, columns terms."""
        ...

    def term_counts(self, sentence_ids: Sequence[int]) -> np.ndarray: ...

    # -- articles ---------------------------------------------------------------
    def article_texts(self, ids: Sequence[str]) -> dict[str, tuple[ArticleRef, str]]: ...

    def article(self, article_id: str) -> ArticleDetail: ...

    def articles(self) -> list[ArticleSummary]: ...

    def close(self) -> None: ...


@runtime_checkable
class WriteSession(Protocol):
    manifest: dict[str, Any]  # written with the version (indexing records its encoder here)
    changed: bool  # a session that changed nothing publishes nothing

    def content_hash(self, article_id: str) -> str | None:
        """The stored article's content hash, or None when it is not stored."""
        ...

    def id_with_hash(self, content_hash: str) -> str | None:
        """An article already stored with this content, if any (duplicates)."""
        ...

    def put(
        self,
        article: StoredArticle,
        chunks: Sequence[ChunkRecord],
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> None:
        """Insert or replace one article with its chunks, sentences and vectors."""
        ...

    def remove(self, article_id: str) -> bool:
        """Remove an article and all its rows; False when it was not stored."""
        ...

    def finish(self) -> None:
        """Complete the version so the store's `writer()` can publish it whole."""
        ...

    def abandon(self) -> None:
        """Give the version up: nothing of it is ever seen by a reader."""
        ...


@runtime_checkable
class Store(Protocol):
    def current_version(self) -> str | None: ...

    def exists(self) -> bool: ...

    def open(self) -> ReadView: ...

    def writer(self, fresh: bool = False) -> AbstractContextManager[WriteSession]: ...

    def stored_articles(self) -> Any:
        """Every article of the live version (an iterator of StoredArticle)."""
        ...
