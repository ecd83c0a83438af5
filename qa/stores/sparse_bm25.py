"""Chunk terms → BM25 weights as sparse vectors, for a store that searches them by inner product.

In: every chunk of one index version as (chunk id, space-separated terms, as
qa.terms made them). Out: a `SparseBM25` holding the version's vocabulary
(term → id, document frequency) and, per chunk, {term id: weight}.

The weight of term t in chunk d is the whole Lucene BM25 contribution, the
variant the embedded index (qa.lexical, bm25s "lucene") uses:

    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    w(t, d) = idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))

so a query written as {term id: 1.0} for its distinct known terms scores each
chunk, by inner product, exactly as `LexicalIndex.top` does. The weights
depend on the whole version (N, df, avglen): a store rewrites them all when it
publishes, as the directory store rebuilds its bm25s index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from qa.lexical import K1, B, lucene_idf


@dataclass(frozen=True)
class SparseBM25:
    term_ids: dict[str, int]  # the version's vocabulary, numbered in sorted order
    doc_freqs: dict[str, int]  # chunks holding each term
    weights: dict[int, dict[int, float]]  # chunk id → {term id: BM25 weight}

    @property
    def n_chunks(self) -> int:
        return len(self.weights)


def bm25_weights(rows: Iterable[tuple[int, str]]) -> SparseBM25:
    """Every chunk's BM25 weights, from (chunk id, terms) rows of one version."""
    counts: dict[int, Counter[str]] = {}
    lengths: dict[int, int] = {}
    doc_freqs: Counter[str] = Counter()
    for chunk_id, text in rows:
        tokens = text.split()
        tf = Counter(tokens)
        counts[int(chunk_id)] = tf
        lengths[int(chunk_id)] = len(tokens)
        doc_freqs.update(tf.keys())
    n = len(counts)
    avg_len = (sum(lengths.values()) / n) if n else 0.0
    term_ids = {t: i for i, t in enumerate(sorted(doc_freqs))}
    idf = {t: lucene_idf(n, df) for t, df in doc_freqs.items()}
    weights: dict[int, dict[int, float]] = {}
    for chunk_id, tf in counts.items():
        # avg_len > 0 whenever a chunk holds a term; an empty chunk has no weights.
        norm = K1 * (1 - B + B * lengths[chunk_id] / avg_len) if tf else 0.0
        weights[chunk_id] = {term_ids[t]: idf[t] * c / (c + norm) for t, c in tf.items()}
    return SparseBM25(term_ids, dict(doc_freqs), weights)
