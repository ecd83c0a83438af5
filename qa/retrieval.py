"""Question → ranked passages: dense and BM25 retrieval, fused.

In: the question's vector and terms, and an open `Snapshot`. Out: `Passages`,
the candidate chunk ids best first with each one's cosine to the question.
The fusion normalises BM25 within the query (its scale varies with the
question), so it only ranks; absolute confidence is the quote scorer's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.store import Snapshot

DENSE_K = 30
LEXICAL_K = 30
DENSE_WEIGHT = 0.6  # the rest goes to BM25 (normalised by the query's best)


@dataclass(frozen=True)
class Passages:
    ranked: list[int]  # chunk ids, best first
    cosine: list[float]  # their cosines to the question, in the same order


def retrieve(snap: Snapshot, qvec: np.ndarray, qterms: list[str]) -> Passages:
    dense_ids, dense_cos = snap.nearest_chunks(qvec, DENSE_K)
    bm25_ids, bm25 = snap.best_by_terms(qterms, LEXICAL_K)
    ids = np.union1d(dense_ids, bm25_ids)  # sorted, so ties go to the lower id
    # Exact cosines for every candidate: FAISS's inner products for the dense
    # hits (vectors are normalised), computed for the lexical-only ones.
    cosine = np.full(len(ids), np.nan)
    cosine[np.searchsorted(ids, dense_ids)] = dense_cos
    missing = np.isnan(cosine)
    if missing.any():
        cosine[missing] = snap.chunk_vectors(ids[missing].tolist()) @ qvec
    lexical = np.zeros(len(ids))
    if len(bm25):
        lexical[np.searchsorted(ids, bm25_ids)] = bm25.astype(np.float64) / (
            float(bm25.max()) or 1.0
        )
    fused = DENSE_WEIGHT * cosine + (1 - DENSE_WEIGHT) * lexical
    order = np.lexsort((ids, -fused))
    return Passages(ids[order].tolist(), cosine[order].tolist())
