"""Sentence spans of one index version, held in memory as arrays.

Answering asks, for every question, for the sentences of a few chunks and of
their neighbours. Reading them from SQLite cost ~0.1 ms a question (a query
plus a row object per sentence); from these arrays it is a binary search and a
slice. The arrays take about 50 bytes a sentence (2 MB for the BBC corpus),
are saved with each version and memory-mapped when it is opened.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


class SpanRow(NamedTuple):
    """A stored sentence (or, from `Snapshot.chunks_by_id`, a chunk: then
    chunk_id == id). A named tuple: answering makes a few dozen per question,
    and a frozen dataclass costs several times as much to build."""

    id: int
    chunk_id: int
    article_id: str
    start: int
    end: int


@dataclass(frozen=True)
class SpanTable:
    """A few sentences as columns, in id order: what quote selection computes
    over, without an object per sentence."""

    ids: np.ndarray
    chunks: np.ndarray
    article_codes: np.ndarray  # index into article_names
    article_names: list[str]
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[SpanRow]) -> SpanTable:
        names: dict[str, int] = {}
        codes = [names.setdefault(r.article_id, len(names)) for r in rows]
        return cls(
            np.array([r.id for r in rows], dtype=np.int64),
            np.array([r.chunk_id for r in rows], dtype=np.int64),
            np.array(codes, dtype=np.int32),
            list(names),
            np.array([r.start for r in rows], dtype=np.int64),
            np.array([r.end for r in rows], dtype=np.int64),
        )


SPANS_DIR = "spans"
_ARRAYS = ("ids", "chunks", "articles", "starts", "ends", "_run_chunk", "_run_begin", "_run_end")


_ROWS_PER_READ = 65_536


class SentenceSpans:
    """Every sentence's id, chunk, article and offsets, in id order.

    Built from SQLite when a version is written and saved beside it (`spans/`,
    numpy arrays), so opening a version maps them instead of reading every
    sentence row: ~0.3 s of a cold `qa ask` over BBC, and seconds at a million
    sentences. A version saved before `spans/` existed is read from SQLite."""

    @classmethod
    def open(cls, folder: Path, db: sqlite3.Connection) -> SentenceSpans:
        """The saved arrays of a version folder (memory-mapped), else SQLite's rows.
        ValueError or OSError when the saved arrays are damaged."""
        saved = folder / SPANS_DIR
        if not (saved / "article_ids.json").exists():
            return cls(db)
        spans = cls.__new__(cls)
        for name in _ARRAYS:
            setattr(spans, name, np.load(saved / f"{name}.npy", allow_pickle=False, mmap_mode="r"))
        spans.article_ids = json.loads((saved / "article_ids.json").read_text(encoding="utf-8"))
        n = len(spans.ids)
        if any(len(getattr(spans, a)) != n for a in _ARRAYS[:5]) or not isinstance(
            spans.article_ids, list
        ):
            raise ValueError(f"{saved}: sentence span arrays of different lengths")
        spans.consistent = bool(np.all(np.diff(spans._run_chunk) > 0))
        return spans

    def save(self, folder: Path) -> list[Path]:
        """Write the arrays into `folder / spans` (created); the files written."""
        saved = folder / SPANS_DIR
        saved.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(saved / f"{name}.npy", np.asarray(getattr(self, name)), allow_pickle=False)
        (saved / "article_ids.json").write_text(json.dumps(self.article_ids), encoding="utf-8")
        return sorted(p for p in saved.iterdir() if p.is_file())

    def __init__(self, db: sqlite3.Connection) -> None:
        cursor = db.cursor()
        cursor.row_factory = None
        n = cursor.execute("SELECT count(*) FROM sentences").fetchone()[0]
        self.ids, self.chunks, self.starts, self.ends = (np.zeros(n, np.int64) for _ in range(4))
        self.articles = np.zeros(n, np.int32)
        articles: dict[str, int] = {}
        # A block of rows at a time: every row as Python tuples at once held ~250
        # bytes a sentence (220 MB at 56,000 Wikipedia articles) while publishing.
        cursor.execute('SELECT id, chunk_id, article_id, start, "end" FROM sentences ORDER BY id')
        lo = 0
        while rows := cursor.fetchmany(_ROWS_PER_READ):
            hi = lo + len(rows)
            self.ids[lo:hi] = [r[0] for r in rows]
            self.chunks[lo:hi] = [r[1] for r in rows]
            self.articles[lo:hi] = [articles.setdefault(r[2], len(articles)) for r in rows]
            self.starts[lo:hi] = [r[3] for r in rows]
            self.ends[lo:hi] = [r[4] for r in rows]
            lo = hi
        self.article_ids = list(articles)
        # The writer gives a chunk's sentences consecutive ids, so each chunk is
        # one run of rows: where each run begins and ends, sorted by chunk id.
        begins = np.flatnonzero(np.diff(self.chunks, prepend=-1)) if n else np.zeros(0, np.int64)
        ends = np.append(begins[1:], n)
        order = np.argsort(self.chunks[begins], kind="stable")
        self._run_chunk = self.chunks[begins][order]
        self._run_begin = begins[order]
        self._run_end = ends[order]
        # A chunk split over two runs would break that rule; it never happens,
        # but if it did, lookups by chunk would miss rows, so say so instead.
        self.consistent = bool(np.all(np.diff(self._run_chunk) > 0))

    def of_chunks(self, chunk_ids: Sequence[int]) -> list[SpanRow]:
        """The sentences of these chunks, by id."""
        return self._spans(self._rows_of_chunks(chunk_ids, 0))

    def table_of_chunks(self, chunk_ids: Sequence[int], widen: int = 0) -> SpanTable:
        """The sentences of these chunks, with `widen` more rows either side of
        each chunk (its neighbours in id order, whatever their article), by id."""
        rows = self._rows_of_chunks(chunk_ids, widen)
        codes, local = np.unique(self.articles[rows], return_inverse=True)
        return SpanTable(
            self.ids[rows],
            self.chunks[rows],
            local.astype(np.int32).reshape(-1),
            [self.article_ids[c] for c in codes.tolist()],
            self.starts[rows],
            self.ends[rows],
        )

    def _rows_of_chunks(self, chunk_ids: Sequence[int], widen: int) -> np.ndarray:
        if not len(chunk_ids) or not len(self._run_chunk):
            return np.zeros(0, np.int64)
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._run_chunk, wanted), len(self._run_chunk) - 1)
        at = at[self._run_chunk[at] == wanted]
        begins = np.maximum(self._run_begin[at] - widen, 0)
        ends = np.minimum(self._run_end[at] + widen, len(self.ids))
        runs = [np.arange(b, e) for b, e in zip(begins.tolist(), ends.tolist(), strict=True)]
        return np.unique(np.concatenate(runs)) if runs else np.zeros(0, np.int64)

    def _spans(self, rows: np.ndarray) -> list[SpanRow]:
        names = self.article_ids
        return list(
            map(
                SpanRow._make,
                zip(
                    self.ids[rows].tolist(),
                    self.chunks[rows].tolist(),
                    [names[a] for a in self.articles[rows].tolist()],
                    self.starts[rows].tolist(),
                    self.ends[rows].tolist(),
                    strict=True,
                ),
            )
        )
