"""Candidate sentences → scored, verbatim quotes.

In: the question, its ranked `Passages` and an open `Snapshot`. Out: quotes
best first, each the exact article text at its offsets, scored by
`ScoreModel`: a logistic model over absolute signals, so a score means the
same for every question and one threshold can tell answers from "not found".

Signals (`FEATURES`), each about a candidate sentence:
- sentence_cosine: question vs the sentence's own vector;
- passage_cosine: question vs the vector of the passage around it;
- sentence_terms / passage_terms: the share of the question's terms, weighted
  by rarity (IDF), found in the sentence / in its passage and title;
- passage_rank: 1 / (1 + rank) of its passage in the fused retrieval;
- answer_type: +1 when the question asks for a number, date or name and the
  sentence has one, -1 when it has none, 0 for other questions;
- superlative: the same for questions about "the most", "the largest"...;
- window_cosine: question vs the sentence with its neighbours (the answer to
  "what does X want" often sits one sentence after the one naming X);
- window_terms: the term share over the sentence and its neighbours (a quote
  that says "he said" while the sentence before names the KPBMA);
- number_missing: 1 when the question names a number (a year, an amount) that
  neither the sentence nor its passage contains.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from qa.encoder import DIM
from qa.models import ArticleRef, Quote
from qa.retrieval import Passages
from qa.store import Snapshot, SpanRow
from qa.terms import terms

PASSAGES_KEPT = 5  # every sentence of these passages is a candidate (8 gave no better top 1)
MERGE_WITHIN = 4  # a neighbour joins a quote only if it is among the best candidates
MERGE_RATIO = 0.5  # ... and scores at least this share of the quote's own score

FEATURES = (
    "sentence_cosine",
    "passage_cosine",
    "sentence_terms",
    "passage_terms",
    "passage_rank",
    "answer_type",
    "window_cosine",
    "window_terms",
    "number_missing",
    "superlative",
)


@dataclass(frozen=True)
class ScoreModel:
    """Logistic weights over FEATURES, fitted by bench/tune_scoring.py on the
    XQuAD dev questions with the BBC articles as distractors."""

    weights: tuple[float, ...] = (3.0, 2.25, 3.25, 2.5, 1.0, 0.55, 1.0, 0.5, -1.0, 0.5)
    bias: float = -5.0

    def score(self, features: np.ndarray) -> np.ndarray:
        z = features @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Candidate:
    hit: SpanRow
    article: ArticleRef
    article_text: str
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.article_text[self.hit.start : self.hit.end]


_NUMERIC_Q = re.compile(
    r"^\s*(how (many|much|long|old|far|often|large|big|tall|high|fast|deep|wide)|"
    r"what (percentage|percent|proportion|number|amount|fraction|year|date|time|age)|"
    r"when|in what year|in which year|what decade|what century)\b",
    re.I,
)
_NAME_Q = re.compile(r"^\s*(who|whom|whose|which (person|company|team|country|city))\b", re.I)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half|twice|first|second|third|"
    r"january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\b",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


_SUPERLATIVE = re.compile(
    r"\b(most|least|best|worst|first|biggest|largest|smallest|highest|lowest|"
    r"longest|shortest|greatest|oldest|youngest|top|leading|record|\w+est)\b",
    re.I,
)
_NOT_SUPERLATIVE = {
    "interest",
    "test",
    "request",
    "suggest",
    "latest",
    "west",
    "rest",
    "honest",
    "forest",
    "protest",
    "contest",
    "guest",
    "nest",
    "chest",
    "invest",
    "harvest",
    "modest",
    "digest",
    "arrest",
    "quest",
    "manifest",
    "earnest",
    "est",
}


def _superlatives(text: str) -> set[str]:
    return {m.group().lower() for m in _SUPERLATIVE.finditer(text)} - _NOT_SUPERLATIVE


_HOW_MANY = re.compile(r"\bhow (?:many|much)((?:\s+[\w'-]+){1,3})", re.I)


@dataclass(frozen=True)
class QuestionCues:
    """What a question asks for, worked out once and checked against each sentence."""

    numeric: bool  # a number, amount or date ("how many", "when", "what year")
    units: frozenset[str]  # for "how many X": the terms of X
    name: bool  # a person, company, place ("who", "which country")
    asked_names: frozenset[str]  # capitalised words the question already has
    superlative: bool  # "the most", "the largest"...
    numbers: frozenset[str]  # numbers the question names (a year, an amount)

    @classmethod
    def of(cls, question: str) -> QuestionCues:
        numeric = bool(_NUMERIC_Q.search(question))
        unit = _HOW_MANY.search(question) if numeric else None
        # The counted thing is among the next few words ("how many official
        # business meetings"); stop words ("did", "were") drop out in terms().
        units = frozenset(terms(unit.group(1))) if unit else frozenset()
        return cls(
            numeric=numeric,
            units=units,
            name=not numeric and bool(_NAME_Q.search(question)),
            asked_names=frozenset(re.findall(r"[A-Z][a-z]+", question)),
            superlative=bool(_superlatives(question)),
            numbers=frozenset(_DIGITS.findall(question)),
        )

    def answer_type(self, sentence: str) -> float:
        """Does the sentence hold the kind of thing asked for? For "how many X" /
        "how much X": +1 for a number next to X ("394 official business meetings"),
        0.5 for a number elsewhere; for other number or date questions, and for
        name questions, +1 when the sentence has one. -1 when it has none; 0 for
        other questions."""
        if self.numeric:
            if not _NUMBER.search(sentence):
                return -1.0
            if not self.units:
                return 1.0
            words = sentence.split()
            for i, word in enumerate(words):
                if self.units & set(terms(word)) and any(
                    _NUMBER.search(w) for w in words[max(0, i - 4) : i]
                ):
                    return 1.0
            return 0.5
        if self.name:
            names = {m.group() for m in _NAME.finditer(sentence)}
            return 1.0 if names - self.asked_names else -1.0
        return 0.0

    def superlative_match(self, sentence: str) -> float:
        """+1 when a question about "the most", "the largest"... meets a sentence with
        a superlative of its own, -1 when the sentence has none, 0 for other questions."""
        if not self.superlative:
            return 0.0
        return 1.0 if _superlatives(sentence) else -1.0


class QuoteSelector:
    def __init__(self, model: ScoreModel | None = None) -> None:
        self.model = model or ScoreModel()

    def candidates(
        self,
        snap: Snapshot,
        question: str,
        qvec: np.ndarray,
        qterms: list[str],
        passages: Passages,
    ) -> list[Candidate]:
        """Every candidate sentence with its features (unscored)."""
        # A global search over sentence vectors added candidates outside these
        # passages; it cost a 69 MB scan per question on the BBC index for 0.002
        # of XQuAD top-1 accuracy, so the passages alone supply the candidates.
        hits = {s.id: s for s in snap.sentences_of_chunks(passages.ranked[:PASSAGES_KEPT])}
        if not hits:
            return []
        sents = list(hits.values())
        chunk_ids = sorted({s.chunk_id for s in sents})
        chunk_cos = dict(passages.cosine)
        unknown = [c for c in chunk_ids if c not in chunk_cos]
        if unknown:
            chunk_cos.update(
                zip(unknown, (snap.chunk_vectors(unknown) @ qvec).tolist(), strict=True)
            )
        rank = {cid: i for i, cid in enumerate(passages.ranked)}
        sent_cos = (snap.sentence_vectors([s.id for s in sents]) @ qvec).tolist()
        texts = snap.article_texts(sorted({s.article_id for s in sents}))
        spans = {c.id: c for c in snap.chunks_by_id(chunk_ids)}

        df = snap.doc_freqs(qterms)
        idf = _idf(snap.n_chunks, df, qterms)
        total = sum(idf.values()) or 1.0
        cues = QuestionCues.of(question)
        neighbours = _neighbours(snap, sents)
        windows = _window_vectors(snap, sents, neighbours) @ qvec

        def share(words: set[str]) -> float:
            return sum(v for t, v in idf.items() if t in words) / total

        def window(s: SpanRow) -> set[str]:
            near = (neighbours.get(j) for j in (s.id - 1, s.id, s.id + 1))
            return set().union(
                *(
                    sentence_terms[h.id]
                    for h in near
                    if h is not None and h.article_id == s.article_id
                )
            )

        sentence_terms = {
            h.id: set(terms(texts[h.article_id][1][h.start : h.end]))
            for h in neighbours.values()
            if h.article_id in texts
        }
        # Chunks are whole sentences, and every sentence of these chunks is a
        # candidate: a passage's terms are its sentences' terms plus its title's.
        title_terms = {a: set(terms(ref.title)) for a, (ref, _) in texts.items()}
        passage_words: dict[int, set[str]] = {}
        for s in sents:
            passage_words.setdefault(s.chunk_id, set(title_terms[s.article_id])).update(
                sentence_terms[s.id]
            )
        chunk_terms = {cid: share(words) for cid, words in passage_words.items()}
        chunk_numbers: dict[int, set[str]] = {}
        out = []
        for s, cs, wc in zip(sents, sent_cos, windows.tolist(), strict=True):
            ref, text = texts[s.article_id]
            if s.chunk_id not in chunk_numbers:
                c = spans[s.chunk_id]
                chunk_numbers[s.chunk_id] = set(
                    _DIGITS.findall(ref.title + "\n" + text[c.start : c.end])
                )
            sentence = text[s.start : s.end]
            feats = np.array(
                [
                    cs,
                    chunk_cos[s.chunk_id],
                    share(sentence_terms[s.id]),
                    chunk_terms[s.chunk_id],
                    1.0 / (1.0 + rank[s.chunk_id]) if s.chunk_id in rank else 0.0,
                    cues.answer_type(sentence),
                    wc,
                    share(window(s)),
                    1.0 if cues.numbers - chunk_numbers[s.chunk_id] else 0.0,
                    cues.superlative_match(sentence),
                ]
            )
            out.append(Candidate(s, ref, text, feats))
        return out

    def score(self, candidates: list[Candidate]) -> list[Candidate]:
        """Scored candidates, best first (ties by position in the index)."""
        if candidates:
            scores = self.model.score(np.stack([c.features for c in candidates]))
            for c, s in zip(candidates, scores.tolist(), strict=True):
                c.score = s
        return sorted(candidates, key=lambda c: (-c.score, c.hit.id))

    @staticmethod
    def quotes(ranked: list[Candidate], k: int) -> list[Quote]:
        """The k best distinct sentences as quotes, each joined with an adjacent
        sentence of its passage when that one is nearly as strong (an answer split
        across two sentences: "Asked about X, he said:" + the quote itself)."""
        by_id = {c.hit.id: c for c in ranked}
        strong = {c.hit.id for c in ranked[:MERGE_WITHIN]}
        quotes: list[Quote] = []
        seen: set[str] = set()
        used: set[int] = set()
        for c in ranked:
            if c.hit.id in used:
                continue
            key = " ".join(c.text.split()).lower()
            if key in seen:
                continue  # the same sentence printed twice (captions, pull quotes, copies)
            seen.add(key)
            start, end = c.hit.start, c.hit.end
            used.add(c.hit.id)
            for nid in (c.hit.id - 1, c.hit.id + 1):
                n = by_id.get(nid)
                if (
                    n is not None
                    and nid in strong
                    and nid not in used
                    and n.hit.chunk_id == c.hit.chunk_id
                    and n.score >= MERGE_RATIO * c.score
                ):
                    start, end = min(start, n.hit.start), max(end, n.hit.end)
                    used.add(nid)
                    seen.add(" ".join(n.text.split()).lower())
                    break
            quotes.append(
                Quote(
                    text=c.article_text[start:end],
                    score=round(c.score, 4),
                    article=c.article,
                    start=start,
                    end=end,
                )
            )
            if len(quotes) == k:
                break
        return quotes


_DIGITS = re.compile(r"\d[\d,.]*\d|\d")


def _idf(n_chunks: int, df: dict[str, int], qterms: list[str]) -> dict[str, float]:
    """Rarity of each question term; one absent from every article counts as rarest."""
    n = max(n_chunks, 1)
    return {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in set(qterms)}


def _neighbours(snap: Snapshot, sents: list[SpanRow]) -> dict[int, SpanRow]:
    """The candidates and the sentences either side of them. Sentence ids are
    consecutive within an article, so neighbours are id ± 1 (checked by article)."""
    wanted = sorted({i for s in sents for i in (s.id - 1, s.id, s.id + 1)})
    return {h.id: h for h in snap.sentences_by_id(wanted)}


def _window_vectors(snap: Snapshot, sents: list[SpanRow], rows: dict[int, SpanRow]) -> np.ndarray:
    """Each sentence's vector plus half its neighbours' in the same article, normalised."""
    ids = sorted(rows)
    vecs = dict(zip(ids, snap.sentence_vectors(ids), strict=True))
    out = np.zeros((len(sents), DIM), dtype=np.float32)
    for row, s in enumerate(sents):
        v = vecs[s.id].copy()
        for j in (s.id - 1, s.id + 1):
            if j in rows and rows[j].article_id == s.article_id:
                v += 0.5 * vecs[j]
        out[row] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out
