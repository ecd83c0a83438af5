"""Question → Answer: hybrid retrieval, sentence scoring, verbatim quotes.

In: a question and an open index. Out: an `Answer` whose quotes are whole
sentences sliced from the stored article text, best first, each scored on a
scale that means the same for every question, so one threshold (settings'
`min_score`) separates answers from "not found".

Steps:
1. candidate passages: dense search over chunk vectors, BM25 over chunk terms,
   fused (each normalised within the query: it only ranks candidates);
2. candidate sentences: every sentence of the best passages, plus the
   sentences nearest the question by their own vectors;
3. each sentence scored by absolute signals only (cosine to the question, of
   the sentence and of its passage, and the share of the question's rare
   terms it contains), squashed to [0, 1];
4. the top k distinct sentences become quotes; below the threshold, none do.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from qa.encoder import Encoder, load_encoder
from qa.errors import IndexEmpty, InvalidInput
from qa.models import Answer, Quote
from qa.settings import Settings
from qa.store import IndexStore, Snapshot
from qa.terms import terms

PASSAGES_DENSE = 30
PASSAGES_LEXICAL = 30
PASSAGES_KEPT = 8
SENTENCES_DENSE = 30

NOT_FOUND = "The indexed articles do not appear to answer this question."


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of the sentence score, and the logistic that maps it to [0, 1]."""

    sentence_cosine: float = 0.45
    passage_cosine: float = 0.25
    term_overlap: float = 0.30
    centre: float = 0.40
    steepness: float = 12.0


class Answerer:
    """Answers questions over an index directory, following its live version."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder | None = None,
        weights: ScoreWeights = ScoreWeights(),
    ) -> None:
        self.settings = settings
        self.store = IndexStore(settings.index_dir)
        self.weights = weights
        self._snapshot: Snapshot | None = None
        self._encoder = encoder
        self._lock = threading.Lock()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.store.encoder_dir)
        return self._encoder

    def snapshot(self) -> Snapshot:
        """The live version, reopened when a writer has published a new one."""
        current = self.store.current_version()
        snap = self._snapshot
        if snap is None or snap.version != current:
            with self._lock:
                snap = self._snapshot
                if snap is None or snap.version != current:
                    snap = self.store.open()
                    self._snapshot = snap  # the old one is closed by the GC when unused
        return snap

    def validate(self, question: str, k: int | None) -> tuple[str, int]:
        q = " ".join((question or "").split())
        if not q:
            raise InvalidInput("the question is empty: ask something about the articles")
        if len(q) > self.settings.max_question_chars:
            raise InvalidInput(
                f"the question is {len(q)} characters long; the limit is "
                f"{self.settings.max_question_chars}"
            )
        k = self.settings.k if k is None else k
        if not 1 <= k <= 20:
            raise InvalidInput(f"k must be between 1 and 20, not {k}")
        return q, k

    def ask(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        q, k = self.validate(question, k)
        snap = self.snapshot()
        if snap.n_chunks == 0:
            raise IndexEmpty(
                f"the index at {self.store.root} has no articles: add some with `qa index PATH`"
            )
        scored, _ = self._score_sentences(snap, q)
        quotes = self._quotes(scored, k)
        answered = bool(quotes) and quotes[0].score >= self.settings.min_score
        if not answered:
            quotes = []
        text = f"{quotes[0].text} [1]" if answered else NOT_FOUND
        return Answer(
            question=q,
            answered=answered,
            answer=text,
            quotes=quotes,
            took_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    # -- scoring ------------------------------------------------------------------
    def passages(self, question: str, n: int = 5) -> list[tuple[str, int, int]]:
        """The best passages as (article id, start, end): what `qa eval` calls recall."""
        q, _ = self.validate(question, None)
        snap = self.snapshot()
        _, ranked = self._score_sentences(snap, q)
        rows = snap.chunks_by_id(ranked[:n])
        return [(r.article_id, r.start, r.end) for r in rows]

    def _score_sentences(self, snap: Snapshot, q: str) -> tuple[list, list[int]]:
        """Candidate sentences as (score, SentenceHit, (ArticleRef, text)), best first,
        and the passages (chunk ids) ranked by the fused retrieval score."""
        qvec = self.encoder.embed([q])[0]
        qterms = terms(q)

        dense = dict(snap.search_chunks(qvec, PASSAGES_DENSE))
        lexical = dict(snap.search_terms(qterms, PASSAGES_LEXICAL))
        passage_ids = sorted(set(dense) | set(lexical))
        passage_vecs = snap.chunk_vectors(passage_ids)
        passage_cos = dict(zip(passage_ids, (passage_vecs @ qvec).tolist(), strict=True))
        top_lex = max(lexical.values(), default=0.0) or 1.0
        fused = {
            cid: 0.6 * passage_cos[cid] + 0.4 * lexical.get(cid, 0.0) / top_lex
            for cid in passage_ids
        }
        ranked = sorted(fused, key=fused.get, reverse=True)
        kept = ranked[:PASSAGES_KEPT]

        candidates = {s.id: s for s in snap.sentences_of_chunks(kept)}
        near = [sid for sid, _ in snap.search_sentences(qvec, SENTENCES_DENSE)]
        for s in snap.sentences_by_id([sid for sid in near if sid not in candidates]):
            candidates[s.id] = s
        if not candidates:
            return [], ranked
        sents = list(candidates.values())
        missing = sorted({s.chunk_id for s in sents} - set(passage_cos))
        if missing:
            passage_cos.update(
                zip(missing, (snap.chunk_vectors(missing) @ qvec).tolist(), strict=True)
            )
        sent_cos = snap.sentence_vectors([s.id for s in sents]) @ qvec

        texts = snap.article_texts(sorted({s.article_id for s in sents}))
        idf = self._idf(snap, qterms)
        total = sum(idf.values()) or 1.0
        w = self.weights
        out = []
        for s, cs in zip(sents, sent_cos.tolist(), strict=True):
            present = set(terms(texts[s.article_id][1][s.start : s.end]))
            overlap = sum(v for t, v in idf.items() if t in present) / total
            raw = (
                w.sentence_cosine * cs
                + w.passage_cosine * passage_cos[s.chunk_id]
                + w.term_overlap * overlap
            )
            score = 1.0 / (1.0 + math.exp(-w.steepness * (raw - w.centre)))
            out.append((score, s, texts[s.article_id]))
        out.sort(key=lambda item: (-item[0], item[1].id))
        return out, ranked

    @staticmethod
    def _idf(snap: Snapshot, qterms: list[str]) -> dict[str, float]:
        """Rarity of each question term; one absent from every article counts as rarest."""
        n = max(snap.n_chunks, 1)
        df = snap.doc_freqs(qterms)
        return {
            t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in set(qterms)
        }

    @staticmethod
    def _quotes(scored: list, k: int) -> list[Quote]:
        quotes: list[Quote] = []
        seen: set[str] = set()
        for score, s, (ref, text) in scored:
            quote_text = text[s.start : s.end]
            key = " ".join(quote_text.split()).lower()
            if key in seen:
                continue  # the same sentence printed twice (captions, pull quotes)
            seen.add(key)
            quotes.append(
                Quote(text=quote_text, score=round(score, 4), article=ref, start=s.start, end=s.end)
            )
            if len(quotes) == k:
                break
        return quotes


def answer_question(settings: Settings, question: str, k: int | None = None) -> Answer:
    return Answerer(settings).ask(question, k)


__all__ = ["NOT_FOUND", "Answerer", "ScoreWeights", "answer_question"]
