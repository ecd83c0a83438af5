"""Question → ranked passages: dense and BM25 retrieval, fused.

In: the question's vector and terms, and an open `Snapshot`. Out: `Passages`,
the candidate chunk ids best first with each one's cosine to the question.
The fusion normalises BM25 within the query (its scale varies with the
question), so it only ranks; absolute confidence is the quote scorer's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.store import Snapshot

DENSE_K = 30
LEXICAL_K = 30
DENSE_WEIGHT = 0.6  # the rest goes to BM25 (normalised by the query's best)
PREFERRED_KEPT = 8  # a follow-up also considers this many best passages of the article
PREFER_BONUS = 0.5  # ... being discussed, and ranks them this much higher (fused scale)


@dataclass(frozen=True)
class Passages:
    ranked: list[int]  # chunk ids, best first
    cosine: list[float]  # their cosines to the question, in the same order


def retrieve(
    snap: Snapshot,
    qvec: np.ndarray,
    qterms: list[str],
    prefer: Sequence[str] = (),
    among: np.ndarray | None = None,
) -> Passages:
    """`prefer`: articles a follow-up question is about (those the previous answer
    quoted); their best passages join the candidates and rank a little higher.
    `among`: the only chunk ids (sorted) allowed, a filter's; both searches run
    inside them, so the best passages within the filter are found however many
    better ones lie outside it."""
    dense_ids, dense_cos = snap.nearest_chunks(qvec, DENSE_K, among)
    bm25_ids, bm25 = snap.best_by_terms(qterms, LEXICAL_K, among)
    ids = np.union1d(dense_ids, bm25_ids)  # sorted, so ties go to the lower id
    discussed = snap.chunks_of_articles(prefer) if prefer else np.zeros(0, np.int64)
    if among is not None and len(discussed):
        discussed = np.intersect1d(discussed, among)  # a discussed article outside the filter
    if len(discussed):
        own = snap.chunk_vectors(discussed) @ qvec
        best = np.argsort(-own, kind="stable")[:PREFERRED_KEPT]
        ids = np.union1d(ids, discussed[best])
    # Exact cosines for every candidate: FAISS's inner products for the dense
    # hits (vectors are normalised), the ones just computed for the discussed
    # article's passages, computed for the lexical-only ones.
    cosine = np.full(len(ids), np.nan)
    if len(discussed):
        cosine[np.searchsorted(ids, discussed[best])] = own[best]
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
    if len(discussed):
        fused += PREFER_BONUS * np.isin(ids, discussed)
    order = np.lexsort((ids, -fused))
    return Passages(ids[order].tolist(), cosine[order].tolist())
