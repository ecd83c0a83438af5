"""Chunk terms → BM25 scores, in memory.

Each index version stores its chunks' terms (qa.terms) in SQLite; on publish
the writer also saves this precomputed form beside them (`lexical.npz`): for
every term, the chunks holding it and that term's BM25 weight in each. A
question's BM25 scores are then a sum of a few short arrays, about a tenth
of what the same query costs through SQLite FTS5, without holding the
database's lock. The formula is FTS5's own (k1 = 1.2, b = 0.75, its IDF), so
rankings match the FTS5 query this replaced.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

FILE = "lexical.npz"
K1 = 1.2
B = 0.75


class LexicalIndex:
    def __init__(
        self, vocab: list[str], indptr: np.ndarray, docs: np.ndarray, weights: np.ndarray
    ) -> None:
        self.terms = vocab
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.indptr = indptr
        self.docs = docs
        self.weights = weights

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> LexicalIndex:
        """From (chunk id, space-separated terms) rows. Postings are gathered in
        typed arrays, not Python tuples: a whole-corpus build stays a few MB."""
        ids: dict[str, int] = {}
        term_col, doc_col, tf_col = array("i"), array("q"), array("i")
        lengths: dict[int, int] = {}
        for doc, text in rows:
            words = text.split()
            lengths[doc] = len(words)
            for term, tf in Counter(words).items():
                term_col.append(ids.setdefault(term, len(ids)))
                doc_col.append(doc)
                tf_col.append(tf)
        vocab = sorted(ids)
        # Renumber terms alphabetically, then group postings by term.
        rank = np.empty(len(ids), dtype=np.int64)
        rank[[ids[t] for t in vocab]] = np.arange(len(vocab))
        term = rank[np.frombuffer(term_col, dtype=np.int32)] if ids else np.zeros(0, np.int64)
        order = np.argsort(term, kind="stable")
        term = term[order]
        docs = np.frombuffer(doc_col, dtype=np.int64)[order]
        tf = np.frombuffer(tf_col, dtype=np.int32)[order].astype(np.float64)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=len(vocab)), out=indptr[1:])
        n = len(lengths)
        df = np.diff(indptr).astype(np.float64)
        idf = np.log((n - df + 0.5) / (df + 0.5))
        idf = np.where(idf > 0, idf, 1e-6)  # as FTS5: a very common term still counts a little
        avgdl = (sum(lengths.values()) / n) if n else 1.0
        dl = np.array([lengths[int(d)] for d in docs], dtype=np.float64)
        weights = idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
        return cls(vocab, indptr, docs.copy(), weights.astype(np.float32))

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(
                fh,
                vocab=np.frombuffer("\n".join(self.terms).encode(), dtype=np.uint8),
                indptr=self.indptr,
                docs=self.docs,
                weights=self.weights,
            )

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """ValueError or OSError when the file is not a whole lexical index."""
        with np.load(path, allow_pickle=False) as data:
            raw = data["vocab"].tobytes().decode()
            vocab = raw.split("\n") if raw else []
            indptr, docs, weights = data["indptr"], data["docs"], data["weights"]
        if (
            len(indptr) != len(vocab) + 1
            or int(indptr[-1]) != len(docs)
            or len(docs) != len(weights)
        ):
            raise ValueError(f"{path}: arrays of inconsistent sizes")
        return cls(vocab, indptr, docs, weights)

    def doc_freq(self, term: str) -> int:
        i = self.vocab.get(term)
        return 0 if i is None else int(self.indptr[i + 1] - self.indptr[i])

    def search(self, query_terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        """The n best chunks by BM25 over the distinct query terms, best first."""
        spans = [
            (self.indptr[i], self.indptr[i + 1])
            for i in (self.vocab.get(t) for t in sorted(set(query_terms)))
            if i is not None
        ]
        if not spans or n < 1:
            return []
        docs = np.concatenate([self.docs[a:b] for a, b in spans])
        weights = np.concatenate([self.weights[a:b] for a, b in spans])
        ids, inverse = np.unique(docs, return_inverse=True)
        scores = np.bincount(inverse, weights=weights)
        top = np.argpartition(-scores, n - 1)[:n] if len(ids) > n else np.arange(len(ids))
        # Best first; equal scores by chunk id, so results do not depend on layout.
        top = top[np.lexsort((ids[top], -scores[top]))]
        return [(int(ids[j]), float(scores[j])) for j in top]
