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
    cosine: dict[int, float]  # chunk id → cosine to the question
    lexical: dict[int, float]  # chunk id → BM25 / best BM25 of the query, in [0, 1]


def retrieve(snap: Snapshot, qvec: np.ndarray, qterms: list[str]) -> Passages:
    dense = dict(snap.search_chunks(qvec, DENSE_K))
    bm25 = dict(snap.search_terms(qterms, LEXICAL_K))
    ids = sorted(set(dense) | set(bm25))
    # Exact cosines for every candidate: FAISS's inner products for the dense
    # hits (vectors are normalised), computed for the lexical-only ones.
    cosine = dict(dense)
    missing = [cid for cid in ids if cid not in cosine]
    cosine.update(zip(missing, (snap.chunk_vectors(missing) @ qvec).tolist(), strict=True))
    best = max(bm25.values(), default=0.0) or 1.0
    lexical = {cid: score / best for cid, score in bm25.items()}
    fused = {
        cid: DENSE_WEIGHT * cosine[cid] + (1 - DENSE_WEIGHT) * lexical.get(cid, 0.0) for cid in ids
    }
    return Passages(sorted(ids, key=lambda c: (-fused[c], c)), cosine, lexical)
