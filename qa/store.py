"""The index directory: versioned, crash-safe storage of articles, chunks and vectors.

Layout (see index/README.md):

    INDEX/
      CURRENT            name of the live version, switched with os.replace
      LOCK               held (flock) by the one writer
      encoder/           ONNX copy of the model + tokenizer (immutable once written)
      versions/vNNNNNN/  manifest.json, store.sqlite, dense/ (chunk and sentence
                         vectors as numpy arrays, and from a size on an HNSW graph:
                         see qa/dense.py), lexical/ (a bm25s index of the chunk terms
                         in store.sqlite, and each sentence's terms as vocabulary ids)

A write copies the live version into a new folder, changes the copy, fsyncs
it, then points CURRENT at it; a crash at any moment leaves the old version
live and whole. Readers open one version and never see a mix; they map its
vectors and BM25 arrays into memory rather than reading them, so opening is
quick and cheap at any size. Nothing is pickled: metadata is SQLite, vectors
and the bm25s index numpy arrays (loaded with allow_pickle=False) and JSON,
the approximate index FAISS's own format, manifests JSON. Versions written
before dense/ (chunks.faiss, sentences.faiss) are still read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from qa.chunking import ChunkerSettings
from qa.dense import ANN_MIN_CHUNKS, DenseIndex, DenseWriter
from qa.encoder import DIM, MODEL_NAME
from qa.errors import (
    ArticleNotFound,
    IndexBusy,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
)
from qa.lexical import DIR as LEXICAL_DIR
from qa.lexical import LexicalIndex
from qa.models import ArticleDetail, ArticleRef, ArticleSummary, Filters
from qa.spans import SPANS_DIR, SentenceSpans, SpanRow, SpanTable
from qa.terms import TERMS_VERSION, terms

FORMAT_VERSION = 1
ARTICLE_CACHE_CHARS = 8_000_000  # article text kept in memory per open version (~8-32 MB)
FILTER_CACHE = 32  # filters whose chunk ids an open version keeps (a page reuses its filter)
# SQL here is built only from "?" placeholders and fixed table names; values are
# always parameters, so those lines carry an exemption from bandit's check B608.

# Pre-stemmed terms per sentence: the source of lexical/'s sentence arrays, which
# quote selection reads instead of analysing candidate sentences per question.
_SENTENCE_TERMS_TABLE = """
CREATE TABLE sentence_terms (id INTEGER PRIMARY KEY, terms TEXT NOT NULL);
"""

_SCHEMA = (
    """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT, published TEXT, author TEXT,
    source TEXT, text TEXT NOT NULL, origin TEXT, content_hash TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX articles_hash ON articles(content_hash);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE INDEX chunks_article ON chunks(article_id);
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY, chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    article_id TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE INDEX sentences_chunk ON sentences(chunk_id);
CREATE INDEX sentences_article ON sentences(article_id);
-- Pre-stemmed terms (qa.terms) per chunk: the source of lexical/ (BM25). chunk_vocab
-- is no longer read; it stays so that versions keep one schema.
CREATE VIRTUAL TABLE chunk_terms USING fts5(terms, tokenize = 'unicode61');
CREATE VIRTUAL TABLE chunk_vocab USING fts5vocab(chunk_terms, 'row');
"""
    + _SENTENCE_TERMS_TABLE
)


def published_day(published: str | None) -> str | None:
    """The date part (YYYY-MM-DD) of a stored `published` value, as written (no time
    zone conversion); None for no date or one that is not ISO (the readers drop those)."""
    if not published:
        return None
    value = published.strip()
    probe = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        return datetime.fromisoformat(probe).date().isoformat()
    except ValueError:
        return None


def expected_manifest(chunker: ChunkerSettings) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "model": MODEL_NAME,
        "dim": DIM,
        "chunker": chunker.as_dict(),
        "terms": TERMS_VERSION,
    }


@dataclass(frozen=True)
class StoredArticle:
    id: str
    title: str
    text: str
    content_hash: str
    url: str | None = None
    published: str | None = None
    author: str | None = None
    source: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with its sentences, ready to store (ids assigned by the store)."""

    start: int
    end: int
    terms: str
    sentences: tuple[tuple[int, int], ...]
    sentence_terms: tuple[str, ...]  # one space-separated string per sentence


def check_vectors(
    chunks: Sequence[ChunkRecord], chunk_vectors: np.ndarray, sentence_vectors: np.ndarray
) -> None:
    """Every store's `put` first: one vector a chunk and one a sentence, or nothing is written."""
    n_sents = sum(len(c.sentences) for c in chunks)
    if chunk_vectors.shape != (len(chunks), DIM) or sentence_vectors.shape != (n_sents, DIM):
        raise ValueError("vector counts do not match chunks and sentences")


class ArticleTextCache:
    """The articles quoted recently, citation and full text, kept in memory per
    open version (a version never changes them), least recently used first out
    once they pass ARTICLE_CACHE_CHARS of text. Shared by every store's reader."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[ArticleRef, str]] = OrderedDict()
        self.chars = 0
        self._lock = threading.Lock()

    def get(
        self,
        ids: Sequence[str],
        fetch: Callable[[list[str]], dict[str, tuple[ArticleRef, str]]],
    ) -> dict[str, tuple[ArticleRef, str]]:
        """The articles of `ids` that exist: from memory, the others by `fetch`."""
        found: dict[str, tuple[ArticleRef, str]] = {}
        with self._lock:
            for i in ids:
                if (hit := self._items.get(i)) is not None:
                    self._items.move_to_end(i)
                    found[i] = hit
        missing = [i for i in ids if i not in found]
        if not missing:
            return found
        fetched = fetch(missing)
        with self._lock:
            for i, item in fetched.items():
                if i not in self._items:
                    self._items[i] = item
                    self.chars += len(item[1])
            while self.chars > ARTICLE_CACHE_CHARS and self._items:
                _, (_, text) = self._items.popitem(last=False)
                self.chars -= len(text)
        return found | fetched


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class IndexStore:
    """An index directory: open the live version, or write a new one."""

    def __init__(
        self,
        root: Path,
        chunker: ChunkerSettings | None = None,
        *,
        ann_min_chunks: int = ANN_MIN_CHUNKS,
    ) -> None:
        self.root = Path(root)
        self.chunker = chunker or ChunkerSettings()
        self.ann_min_chunks = ann_min_chunks  # versions from this size get an HNSW graph

    @property
    def encoder_dir(self) -> Path:
        return self.root / "encoder"

    @property
    def location(self) -> str:
        """The store as messages name it."""
        return str(self.root)

    def close(self) -> None:
        """Nothing is held open between calls (a Milvus store closes its client)."""

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def current_version(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorrupt(f"cannot read {self.root / 'CURRENT'}: {exc}") from exc
        return name or None

    def exists(self) -> bool:
        return self.current_version() is not None

    def open(self) -> Snapshot:
        version = self.current_version()
        if version is None:
            raise IndexMissing(
                f"no index at {self.root}: run `qa index PATH` to add articles first"
            )
        return Snapshot(self.versions_dir / version, self.chunker)

    @contextlib.contextmanager
    def writer(self, fresh: bool = False) -> Iterator[Writer]:
        """Lock, copy the live version, yield a Writer; publish on success, discard on error.

        `fresh` starts from an empty version instead (a rebuild); the live one
        need not be compatible, only its articles readable (`stored_articles`).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "LOCK", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexBusy(f"another process is writing the index at {self.root}") from exc
            base = None if fresh else self.current_version()
            self.versions_dir.mkdir(exist_ok=True)
            new_name = self._next_version_name()
            work = self.versions_dir / (new_name + ".tmp")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            try:  # copying the live version also checks it: a damaged one is not built on
                writer = Writer(
                    work,
                    self.versions_dir / base if base else None,
                    self.chunker,
                    ann_min_chunks=self.ann_min_chunks,
                )
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            writer.changed = fresh  # a rebuild publishes even when it holds nothing
            try:
                yield writer
                if writer.changed:
                    writer.finish()
            except BaseException:
                writer.abandon()
                shutil.rmtree(work, ignore_errors=True)
                raise
            if not writer.changed:
                writer.abandon()
                shutil.rmtree(work, ignore_errors=True)
                return  # nothing to publish: the live version (if any) stays
            previous = self.current_version()  # the rollback target, kept by _prune
            final = self.versions_dir / new_name
            os.replace(work, final)
            _fsync_dir(self.versions_dir)
            pointer = self.root / "CURRENT.tmp"
            pointer.write_text(new_name + "\n")
            _fsync_file(pointer)
            os.replace(pointer, self.root / "CURRENT")
            _fsync_dir(self.root)
            self._prune(keep={new_name, previous})

    def stored_articles(self) -> Iterator[StoredArticle]:
        """Every article of the live version, read from its SQLite file alone, so
        an index built by another version of qa can still be rebuilt."""
        version = self.current_version()
        if version is None:
            raise IndexMissing(f"no index at {self.root}: nothing to rebuild")
        path = self.versions_dir / version / "store.sqlite"
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            rows = db.execute(
                "SELECT id, title, text, content_hash, url, published, author, source, origin "
                "FROM articles ORDER BY id"
            ).fetchall()
            db.close()
        except sqlite3.Error as exc:
            raise IndexCorrupt(f"cannot read the articles in {path}: {exc}") from exc
        for row in rows:
            yield StoredArticle(*row)

    def _next_version_name(self) -> str:
        numbers = [
            int(p.name[1:7])
            for p in self.versions_dir.iterdir()
            if p.name.startswith("v") and p.name[1:7].isdigit()
        ]
        return f"v{max(numbers, default=0) + 1:06d}"

    def _prune(self, keep: set[str | None]) -> None:
        """Delete every version but the live one and the one it replaced: older ones,
        work folders of dead writers, and versions a killed writer renamed into place
        but never made live."""
        for path in self.versions_dir.iterdir():
            if path.name.startswith("v") and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


def _check_manifest(folder: Path, chunker: ChunkerSettings) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"index version {folder} has no manifest.json") from exc
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"cannot read {folder / 'manifest.json'}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"{folder / 'manifest.json'} is not a JSON object")
    want = expected_manifest(chunker)
    for key, value in want.items():
        if manifest.get(key) != value:
            raise IndexIncompatible(
                f"the index at {folder.parent.parent} was built with {key}={manifest.get(key)!r}, "
                f"this qa uses {value!r}: run `qa index --rebuild` to rebuild it from its articles"
            )
    return manifest


def _load_dense(
    folder: Path, db: sqlite3.Connection, graph: bool = True
) -> tuple[DenseIndex, int, int]:
    """A version's vectors (memory-mapped), checked against its metadata rows: a
    version whose vector and row counts differ is corrupt, whoever opens it.
    `graph`: see DenseIndex.open."""
    try:
        n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        n_sents = db.execute("SELECT count(*) FROM sentences").fetchone()[0]
        dense = DenseIndex.open(folder, graph)
    except (sqlite3.Error, RuntimeError, OSError, ValueError, KeyError) as exc:
        raise IndexCorrupt(f"index version {folder} cannot be read: {exc}") from exc
    if len(dense.chunks) != n_chunks or len(dense.sentences) != n_sents:
        raise IndexCorrupt(
            f"index version {folder} is inconsistent: {len(dense.chunks)} chunk vectors "
            f"for {n_chunks} chunks, {len(dense.sentences)} sentence vectors for "
            f"{n_sents} sentences"
        )
    return dense, n_chunks, n_sents


def _has_sentence_terms(db: sqlite3.Connection) -> bool:
    return bool(
        db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sentence_terms'"
        ).fetchone()
    )


def _sentence_term_rows(db: sqlite3.Connection) -> Iterator[tuple[int, str]]:
    """(sentence id, terms) for every sentence: stored, or, in a version written
    before they were, analysed from the article text."""
    if _has_sentence_terms(db):
        yield from db.execute("SELECT id, terms FROM sentence_terms")
        return
    for article_id, text in db.execute("SELECT id, text FROM articles").fetchall():
        for sid, start, end in db.execute(
            'SELECT id, start, "end" FROM sentences WHERE article_id = ?', (article_id,)
        ).fetchall():
            yield sid, " ".join(terms(text[start:end]))


def _load_lexical(folder: Path, db: sqlite3.Connection) -> LexicalIndex:
    """The version's BM25 index and sentence terms; built from its SQLite rows
    for a version written before they were saved beside them."""
    path = folder / LEXICAL_DIR
    try:
        if not path.is_dir():
            return LexicalIndex.build(
                db.execute("SELECT rowid, terms FROM chunk_terms"), _sentence_term_rows(db)
            )
        lexical = LexicalIndex.load(path)
        if not lexical.has_sentences:
            lexical = lexical.with_sentences(_sentence_term_rows(db))
        return lexical
    except (ValueError, OSError, EOFError, KeyError, sqlite3.Error) as exc:
        raise IndexCorrupt(f"index version {folder} cannot be read: {exc}") from exc


class Snapshot:
    """One version of the index, read-only, safe to share between threads."""

    def __init__(self, folder: Path, chunker: ChunkerSettings) -> None:
        self.folder = folder
        self.version = folder.name
        self.manifest = _check_manifest(folder, chunker)
        try:
            uri = f"file:{folder / 'store.sqlite'}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.create_function("published_day", 1, published_day, deterministic=True)
            self.n_articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            self.spans = SentenceSpans.open(folder, self._db)
        except (sqlite3.Error, ValueError, OSError) as exc:
            raise IndexCorrupt(f"index version {folder} cannot be read: {exc}") from exc
        self.dense, n_chunks, n_sents = _load_dense(folder, self._db)
        self.n_chunks = n_chunks
        self.n_sentences = n_sents
        self._lock = threading.Lock()
        self.lexical = _load_lexical(folder, self._db)
        self._texts = ArticleTextCache()
        self._cache_lock = threading.Lock()
        self._filtered: OrderedDict[Filters, np.ndarray] = OrderedDict()

    def close(self) -> None:
        self._db.close()

    # -- search ---------------------------------------------------------------
    def nearest_chunks(
        self, qvec: np.ndarray, n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n chunks nearest the question: ids and (exact) cosines, best first.
        Exact search, or from a size on the HNSW graph re-scored (qa/dense.py).
        `among`: only these chunk ids (sorted) are searched (see `chunks_matching`)."""
        return self.dense.search(qvec, n, among)

    def search_terms(self, query_terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        """BM25 over chunk terms; higher is better."""
        return self.lexical.search(query_terms, n)

    def best_by_terms(
        self, query_terms: Sequence[str], n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`search_terms` as arrays: chunk ids and BM25 scores, best first; `among`
        as in `nearest_chunks`."""
        return self.lexical.top(query_terms, n, among)

    def chunks_matching(self, filters: Filters) -> np.ndarray:
        """The ids (sorted) of the chunks of the articles that satisfy `filters`."""
        with self._cache_lock:
            hit = self._filtered.get(filters)
            if hit is not None:
                self._filtered.move_to_end(filters)
                return hit
        where, params = [], []
        if filters.since:
            where.append("published_day(published) >= ?")
            params.append(filters.since.isoformat())
        if filters.until:
            where.append("published_day(published) <= ?")
            params.append(filters.until.isoformat())
        if filters.source:
            where.append("source = ?")
            params.append(filters.source)
        if filters.article:
            where.append(f"id IN ({','.join('?' * len(filters.article))})")
            params.extend(filters.article)
        # The conditions are fixed strings; every value is a parameter.
        sql = (
            "SELECT id FROM chunks WHERE article_id IN "  # nosec B608
            f"(SELECT id FROM articles WHERE {' AND '.join(where) or '1'}) ORDER BY id"
        )
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None
            found = np.fromiter((r[0] for r in cursor.execute(sql, params)), np.int64)
        with self._cache_lock:
            self._filtered[filters] = found
            while len(self._filtered) > FILTER_CACHE:
                self._filtered.popitem(last=False)
        return found

    def sources(self) -> list[str]:
        """The distinct source names of the indexed articles, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL "
                "ORDER BY source COLLATE NOCASE"
            ).fetchall()
        return [r[0] for r in rows]

    def doc_freqs(self, query_terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term (terms in none are left out)."""
        found = {t: self.lexical.doc_freq(t) for t in set(query_terms)}
        return {t: n for t, n in found.items() if n}

    def sentence_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.dense.sentences.get(np.asarray(ids, dtype=np.int64))

    def chunk_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.dense.chunks.get(np.asarray(ids, dtype=np.int64))

    # -- metadata -------------------------------------------------------------
    def sentences_of_chunks(self, chunk_ids: Sequence[int]) -> list[SpanRow]:
        if self.spans.consistent:
            return self.spans.of_chunks(chunk_ids)
        return self._sentences("chunk_id", chunk_ids)

    def _sentences(self, column: str, values: Sequence[int]) -> list[SpanRow]:
        if not values:
            return []
        marks = ",".join("?" * len(values))
        return self._spans(
            f'SELECT id, chunk_id, article_id, start, "end" FROM sentences '  # nosec B608
            f"WHERE {column} IN ({marks}) ORDER BY id",
            [int(v) for v in values],
        )

    def _spans(self, sql: str, params: list) -> list[SpanRow]:
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples, not sqlite3.Row: made straight into spans
            rows = cursor.execute(sql, params).fetchall()
        return list(map(SpanRow._make, rows))

    def sentences_around_chunks(self, chunk_ids: Sequence[int]) -> SpanTable:
        """The sentences of these chunks plus the one before and after each chunk
        (which may belong to another article), by id. A chunk's sentences have
        consecutive ids, so each chunk is one id range, widened by one."""
        if self.spans.consistent:
            return self.spans.table_of_chunks(chunk_ids, widen=1)
        if not chunk_ids:
            return SpanTable.of([])
        marks = ",".join("?" * len(chunk_ids))
        return SpanTable.of(
            self._spans(
                'SELECT DISTINCT s.id, s.chunk_id, s.article_id, s.start, s."end" '  # nosec B608
                "FROM (SELECT min(id) - 1 AS lo, max(id) + 1 AS hi FROM sentences "
                f"WHERE chunk_id IN ({marks}) GROUP BY chunk_id) AS r "
                "JOIN sentences AS s ON s.id BETWEEN r.lo AND r.hi ORDER BY s.id",
                [int(c) for c in chunk_ids],
            )
        )

    def chunks_of_articles(self, article_ids: Sequence[str]) -> np.ndarray:
        """The ids of these articles' chunks (unknown ids have none)."""
        if not article_ids:
            return np.zeros(0, np.int64)
        marks = ",".join("?" * len(article_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM chunks WHERE article_id IN ({marks}) ORDER BY id",  # nosec B608
                list(article_ids),
            ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def term_presence(self, sentence_ids: Sequence[int], query_terms: Sequence[str]) -> np.ndarray:
        """Which of the query terms each sentence holds (rows: sentences, columns: terms)."""
        return self.lexical.presence(sentence_ids, query_terms)

    def term_counts(self, sentence_ids: Sequence[int]) -> np.ndarray:
        """How many terms (with repeats) each sentence holds."""
        return self.lexical.term_counts(sentence_ids)

    def chunks_by_id(self, ids: Sequence[int]) -> list[SpanRow]:
        """Chunks in the order asked, as spans (id, chunk_id=id, article, start, end)."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._spans(
            f'SELECT id, id, article_id, start, "end" FROM chunks WHERE id IN ({marks})',  # nosec B608
            [int(i) for i in ids],
        )
        by_id = {r.id: r for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def article_texts(self, ids: Sequence[str]) -> dict[str, tuple[ArticleRef, str]]:
        """Each article's citation and full text; the ones quoted recently are kept
        in memory (ArticleTextCache)."""
        return self._texts.get(ids, self._read_texts)

    @property
    def _cached_chars(self) -> int:
        return self._texts.chars

    def _read_texts(self, ids: list[str]) -> dict[str, tuple[ArticleRef, str]]:
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, title, url, published, text FROM articles WHERE id IN ({marks})",  # nosec B608
                ids,
            ).fetchall()
        return {
            r["id"]: (
                ArticleRef(id=r["id"], title=r["title"], url=r["url"], published=r["published"]),
                r["text"],
            )
            for r in rows
        }

    def article(self, article_id: str) -> ArticleDetail:
        with self._lock:
            r = self._db.execute(
                "SELECT id, title, url, published, author, source, text FROM articles WHERE id = ?",
                (article_id,),
            ).fetchone()
        if r is None:
            raise ArticleNotFound(f"no article with id {article_id!r} in the index")
        return ArticleDetail(**dict(r))

    def articles(self) -> list[ArticleSummary]:
        with self._lock:
            rows = self._db.execute(
                "SELECT a.id, a.title, a.url, a.published, count(c.id) AS chunks "
                "FROM articles a LEFT JOIN chunks c ON c.article_id = a.id "
                "GROUP BY a.id ORDER BY a.title COLLATE NOCASE, a.id"
            ).fetchall()
        return [ArticleSummary(**dict(r)) for r in rows]


class Writer:
    """Changes to a private copy of the live version; published by IndexStore.writer."""

    def __init__(
        self,
        work: Path,
        base: Path | None,
        chunker: ChunkerSettings,
        *,
        ann_min_chunks: int = ANN_MIN_CHUNKS,
    ) -> None:
        self.work = work
        self.chunker = chunker
        self.ann_min_chunks = ann_min_chunks
        self.changed = False
        db_path = work / "store.sqlite"
        if base is not None:
            self.manifest = _check_manifest(base, chunker)
            self.db = sqlite3.connect(db_path)
            try:
                src = sqlite3.connect(f"file:{base / 'store.sqlite'}?mode=ro", uri=True)
                src.backup(self.db)
                src.close()
            except sqlite3.Error as exc:
                self.db.close()
                raise IndexCorrupt(f"index version {base} cannot be read: {exc}") from exc
            try:
                base_dense, _, _ = _load_dense(base, self.db, graph=False)
            except IndexCorrupt:
                self.db.close()
                raise
            self.dense = DenseWriter(work, base_dense)
            if not _has_sentence_terms(self.db):  # a version written before they were kept
                rows = list(_sentence_term_rows(self.db))
                self.db.executescript(_SENTENCE_TERMS_TABLE)
                self.db.executemany("INSERT INTO sentence_terms (id, terms) VALUES (?, ?)", rows)
                self.db.commit()
        else:
            self.db = sqlite3.connect(db_path)
            self.db.executescript(_SCHEMA)
            self.dense = DenseWriter(work, None)
            self.manifest = {**expected_manifest(chunker), "created": time.time()}
        self.db.execute("PRAGMA journal_mode = OFF")  # the whole file is a throwaway copy
        self.db.execute("PRAGMA synchronous = OFF")  # fsynced once, in finish()
        self.db.execute("BEGIN")

    # -- reads for change detection ---------------------------------------------
    def content_hash(self, article_id: str) -> str | None:
        r = self.db.execute(
            "SELECT content_hash FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return r[0] if r else None

    def id_with_hash(self, content_hash: str) -> str | None:
        r = self.db.execute(
            "SELECT id FROM articles WHERE content_hash = ? LIMIT 1", (content_hash,)
        ).fetchone()
        return r[0] if r else None

    # -- changes ----------------------------------------------------------------
    def remove(self, article_id: str) -> bool:
        chunk_ids = [
            r[0]
            for r in self.db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))
        ]
        sent_ids = [
            r[0]
            for r in self.db.execute("SELECT id FROM sentences WHERE article_id = ?", (article_id,))
        ]
        cur = self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        if cur.rowcount == 0:
            return False
        self.db.execute("DELETE FROM sentences WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.executemany("DELETE FROM chunk_terms WHERE rowid = ?", [(i,) for i in chunk_ids])
        self.db.executemany("DELETE FROM sentence_terms WHERE id = ?", [(i,) for i in sent_ids])
        self.dense.remove("chunk", chunk_ids)
        self.dense.remove("sentence", sent_ids)
        self.changed = True
        return True

    def put(
        self,
        article: StoredArticle,
        chunks: Sequence[ChunkRecord],
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> None:
        """Insert or replace one article with its chunks, sentences and vectors."""
        check_vectors(chunks, chunk_vectors, sentence_vectors)
        self.remove(article.id)
        self.db.execute(
            "INSERT INTO articles (id, title, url, published, author, source, text, origin, "
            "content_hash, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                article.id,
                article.title,
                article.url,
                article.published,
                article.author,
                article.source,
                article.text,
                article.origin,
                article.content_hash,
                time.time(),
            ),
        )
        next_chunk = self._next_id("chunks")
        next_sent = self._next_id("sentences")
        chunk_ids, sent_ids = [], []
        for chunk in chunks:
            cid = next_chunk
            next_chunk += 1
            chunk_ids.append(cid)
            self.db.execute(
                'INSERT INTO chunks (id, article_id, start, "end") VALUES (?,?,?,?)',
                (cid, article.id, chunk.start, chunk.end),
            )
            self.db.execute(
                "INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", (cid, chunk.terms)
            )
            for (s, e), sentence_terms in zip(chunk.sentences, chunk.sentence_terms, strict=True):
                self.db.execute(
                    'INSERT INTO sentences (id, chunk_id, article_id, start, "end") '
                    "VALUES (?,?,?,?,?)",
                    (next_sent, cid, article.id, s, e),
                )
                self.db.execute(
                    "INSERT INTO sentence_terms (id, terms) VALUES (?, ?)",
                    (next_sent, sentence_terms),
                )
                sent_ids.append(next_sent)
                next_sent += 1
        if chunk_ids:  # appended to files in the work folder, not kept in memory
            self.dense.add("chunk", np.asarray(chunk_ids, dtype=np.int64), chunk_vectors)
            self.dense.add("sentence", np.asarray(sent_ids, dtype=np.int64), sentence_vectors)
        self.changed = True

    def _next_id(self, table: str) -> int:
        # Ids are never reused within a lineage of versions, so a vector id always
        # means one chunk: max over the table, or the manifest's high-water mark.
        r = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0]  # nosec B608
        mark = self.manifest.get("next_ids", {}).get(table, 1)
        return max((r or 0) + 1, mark)

    # -- publish ----------------------------------------------------------------
    def finish(self) -> None:
        self.db.commit()
        self.manifest["next_ids"] = {t: self._next_id(t) for t in ("chunks", "sentences")}
        counts = {
            t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # nosec B608
            for t in ("articles", "chunks", "sentences")
        }
        # Built straight into its files from the rows, a block at a time (qa/lexical.py).
        lexical_files = LexicalIndex.write(
            self.work / LEXICAL_DIR,
            self.db.execute("SELECT rowid, terms FROM chunk_terms ORDER BY rowid"),
            self.db.execute("SELECT id, terms FROM sentence_terms ORDER BY id"),
        )
        span_files = SentenceSpans(self.db).save(self.work)
        self.db.close()
        try:
            self.dense.base.load_graph()  # left on disk until now (DenseIndex.open)
        except (RuntimeError, OSError, ValueError) as exc:
            raise IndexCorrupt(f"the live version's HNSW graph cannot be read: {exc}") from exc
        dense_files = self.dense.finish(self.ann_min_chunks)
        self.manifest.update(counts=counts, updated=time.time())
        (self.work / "manifest.json").write_text(json.dumps(self.manifest, indent=2))
        for path in [*lexical_files, *dense_files, *span_files]:
            _fsync_file(path)
        _fsync_dir(self.work / LEXICAL_DIR)
        _fsync_dir(self.work / SPANS_DIR)
        _fsync_dir(self.dense.folder)
        for name in ("store.sqlite", "manifest.json"):
            _fsync_file(self.work / name)
        _fsync_dir(self.work)

    def abandon(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        if hasattr(self, "dense"):
            self.dense.abandon()
