"""Chunk terms → BM25 scores, with bm25s.

Each index version stores its chunks' terms (qa.terms) in SQLite; on publish
the writer also builds a bm25s index of them and saves it beside them
(`lexical/`: numpy arrays and JSON, loaded without pickle). A question's
scores are then a sum over a few sparse columns in memory, about a tenth of
what the same query cost through SQLite FTS5, and without holding the
database's lock. bm25s numbers documents 0..n-1; `chunk_ids.npy` maps them
back to chunk ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

DIR = "lexical"
IDS_FILE = "chunk_ids.npy"
K1 = 1.2  # FTS5's and Lucene's defaults
B = 0.75


def _bm25s():
    import bm25s

    # bm25s reports progress and empty queries through logging/tqdm; a server keeps quiet.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class LexicalIndex:
    def __init__(self, model, chunk_ids: np.ndarray) -> None:
        self.model = model  # bm25s.BM25, or None for an index with no chunks
        self.chunk_ids = chunk_ids

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> LexicalIndex:
        """From (chunk id, space-separated terms) rows."""
        ids: list[int] = []
        # Documents as lists of vocabulary ids: each list holds references to the
        # vocabulary's own ints, not a new string per token (~70 MB for BBC).
        vocab: dict[str, int] = {}
        corpus: list[list[int]] = []
        for doc, text in rows:
            ids.append(doc)
            corpus.append([vocab.setdefault(t, len(vocab)) for t in text.split()])
        if not ids:
            return cls(None, np.zeros(0, dtype=np.int64))
        model = _bm25s().BM25(k1=K1, b=B, method="lucene")
        model.index((corpus, vocab), show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> list[Path]:
        """Write into `folder` (created); the files written, for the caller to fsync."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / IDS_FILE, self.chunk_ids, allow_pickle=False)
        if self.model is not None:
            self.model.save(str(folder), show_progress=False)
        return sorted(p for p in folder.iterdir() if p.is_file())

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """ValueError or OSError when the folder does not hold a whole index."""
        chunk_ids = np.load(folder / IDS_FILE, allow_pickle=False)
        if len(chunk_ids) == 0:
            return cls(None, chunk_ids)
        model = _bm25s().BM25.load(str(folder), mmap=False, load_corpus=False)
        if model.scores.get("num_docs") != len(chunk_ids):
            raise ValueError(f"{folder}: {len(chunk_ids)} chunk ids for a different index")
        return cls(model, chunk_ids)

    def doc_freq(self, term: str) -> int:
        if self.model is None:
            return 0
        j = self.model.vocab_dict.get(term)
        if j is None:
            return 0
        indptr = self.model.scores["indptr"]
        return int(indptr[j + 1] - indptr[j])

    def search(self, query_terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        """The n best chunks by BM25 over the distinct query terms, best first."""
        if self.model is None or n < 1:
            return []
        known = sorted(t for t in set(query_terms) if t and t in self.model.vocab_dict)
        if not known:
            return []
        scores = self.model.get_scores(known)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > n:
            hits = hits[np.argpartition(-scores[hits], n - 1)[:n]]
        # Best first; equal scores by chunk id, so results do not depend on layout.
        hits = hits[np.lexsort((self.chunk_ids[hits], -scores[hits]))]
        return [(int(self.chunk_ids[j]), float(scores[j])) for j in hits]
