"""Candidate sentences → scored, verbatim quotes.

In: the question, its ranked `Passages` and an open `Snapshot`. Out: quotes
best first, each the exact article text at its offsets, with a score that
means the same for every question, so one threshold tells answers from "not
found".

Two steps. `ScoreModel`, a linear model over cheap signals (`FEATURES`), ranks
every candidate sentence; then the trained reader (qa/reader.py) reads the
READ best with the question, and `ReaderBlend` turns both logits into the
final score, calibrated as the chance that the quote answers. Both were fitted
by training/fit_scorer.py on SQuAD v1.1 train questions (thousands, over
articles the reader was not trained on, with BBC articles as distractors and a
quarter of each article's paragraphs removed, so on-topic questions without an
answer are part of the fit).

Signals, each about a candidate sentence:
- sentence_cosine: question vs the sentence's own vector;
- passage_cosine: question vs the vector of the passage around it;
- sentence_terms / passage_terms: the share of the question's terms, weighted
  by rarity (IDF), found in the sentence / in its passage and title;
- passage_rank: 1 / (1 + rank) of its passage in the fused retrieval;
- answer_type: +1 when the question asks for a number, date or name and the
  sentence has one, -1 when it has none, 0 for other questions;
- window_cosine: question vs the sentence with its neighbours (the answer to
  "what does X want" often sits one sentence after the one naming X);
- window_terms: the term share over the sentence and its neighbours (a quote
  that says "he said" while the sentence before names the KPBMA);
- number_missing: 1 when the question names a number (a year, an amount) that
  neither the sentence nor its passage contains;
- superlative, date_match, money_match, place_match, reason_match,
  expansion_match, definition_match: what the question asks for (the most,
  when, how much money, where, why, what letters stand for, what X is) against
  what the sentence offers: +1 it has that kind of answer, -1 it has none, 0
  the question is not of that kind;
- novelty: the share of the sentence's terms that are not the question's (a
  sentence that only restates the question does not answer it);
- length: log of its number of terms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from qa.models import ArticleRef, Highlight, Quote
from qa.retrieval import Passages
from qa.spans import SpanRow
from qa.store import Snapshot
from qa.terms import terms

PASSAGES_KEPT = 4  # every sentence of these passages is a candidate (5 or 8: no better)
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
    "date_match",
    "money_match",
    "place_match",
    "reason_match",
    "expansion_match",
    "definition_match",
    "novelty",
    "length",
)


@dataclass(frozen=True)
class ScoreModel:
    """Weights over FEATURES: a ranking (softmax over each question's candidates)
    scaled and shifted into a calibrated logit; see training/fit_scorer.py."""

    weights: tuple[float, ...] = (
        1.997, 2.291, 1.588, 1.864, 0.461, 0.502, 1.775, 1.373, -0.692,
        0.255, 0.552, 0.607, 0.210, 0.346, 0.537, 0.098, -0.603, 0.430,
    )  # fmt: skip
    bias: float = -7.600

    def logit(self, features: np.ndarray) -> np.ndarray:
        return features @ np.asarray(self.weights) + self.bias

    def score(self, features: np.ndarray) -> np.ndarray:
        return _sigmoid(self.logit(features))


@dataclass(frozen=True)
class ReaderBlend:
    """The final score of a candidate the reader read: a logistic model over the
    first score's logit and the reader's, fitted by training/fit_scorer.py on
    the best READ candidates of SQuAD-train questions the reader never saw."""

    first: float = 1.0  # weight of ScoreModel's logit
    reader: float = 0.0  # weight of the reader's relevance logit
    span: float = 0.0  # weight of how sure the reader is of its best answer span
    bias: float = 0.0
    span_min: float = -1e9  # a highlight is shown when its start+end logit reaches this

    def logit(self, first: np.ndarray, reader: np.ndarray, sure: np.ndarray) -> np.ndarray:
        return self.first * first + self.reader * reader + self.span * sure + self.bias


# Fitted by training/fit_scorer.py (--read 2) on 4,000 fit and 2,000 off-topic
# SQuAD-train questions; see training/README.md.
BLEND = ReaderBlend(first=0.406, reader=0.606, span=0.142, bias=-1.484)

# Candidates the reader reads per question, the first score's best. With the
# shipped reader, cross-validated top-1 on the fit set: 1 read 0.721, 2 0.773.
# The four-layer sixth reader gained 0.012 more from 4, but refused less on
# topic (0.633 -> 0.614), and six layers cost ~4-5 ms a candidate with VNNI
# int8; see training/README.md.
READ = 2


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Candidate:
    hit: SpanRow
    article: ArticleRef
    article_text: str
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    score: float = 0.0  # the calibrated score: what "not found" and clients judge by
    order_features: np.ndarray | None = None  # a follow-up's: its own words only
    order: float = 0.0  # what candidates are ranked by (the score, unless a follow-up's)
    span: tuple[int, int] | None = None  # the reader's answering words, article offsets
    before: tuple[int, int] | None = None  # the sentence before, in the same article

    @property
    def before_text(self) -> str:
        return self.article_text[self.before[0] : self.before[1]] if self.before else ""

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
_NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve twenty thirty forty
    fifty hundred thousand million billion dozen half twice first second third january
    february march april may june july august september october november december""".split()
)
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w+")


def _has_number(text: str) -> bool:
    """A digit, or a number, ordinal or month spelt out as a word of its own.
    (One regex alternation of all these words cost ~16 µs a sentence.)"""
    return bool(_DIGIT.search(text)) or not _NUMBER_WORDS.isdisjoint(_WORD.findall(text.lower()))


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


_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WHEN_Q = re.compile(
    r"^\s*when\b|\b(what|which|in what|in which) (year|date|day|month|decade|century|era|"
    r"period|time)\b|\bhow long ago\b|\bsince when\b",
    re.I,
)
_DATE = re.compile(
    rf"\b(1\d{{3}}|20\d{{2}})s?\b|\b({_MONTHS})\b\.?|\b(century|centuries|decade|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday|ago|bc|ad|bce)\b",
    re.I,
)
_MONEY_Q = re.compile(
    r"\bhow much\b.*\b(cost|costs|gross|grossed|earn|earned|earns|pay|paid|worth|price|"
    r"revenue|budget|spend|spent|sell|sold|raise|raised|make|made|charge|fund|value)|"
    r"\b(what|how much) (was|is|were|are) the (cost|price|budget|revenue|value|fee|salary)\b",
    re.I,
)
_MONEY = re.compile(
    r"[$£€¥]\s?\d|\b\d[\d,.]*\s?(bn|m|k)\b|\b(dollars?|pounds?|euros?|yen|yuan|won|"
    r"usd|gbp|eur|million|billion|trillion|cents?)\b",
    re.I,
)
_WHERE_Q = re.compile(
    r"^\s*where\b|\b(what|which) (country|city|state|place|town|region|continent|county|"
    r"province|location|area|island|nation|village|capital)\b|\bwhere (is|was|are|were|do|"
    r"does|did)\b",
    re.I,
)
_PLACE = re.compile(r"\b(in|at|from|near|to|of|across|outside|inside)\s+(the\s+)?[A-Z][a-z]+")
_WHY_Q = re.compile(
    r"\bwhy\b|\b(what|which) (caused|causes|cause|led|leads|prompted|reason|reasons)\b|"
    r"\bfor what reason\b|\bhow come\b",
    re.I,
)
_REASON = re.compile(
    r"\b(because|due to|owing to|as a result|result(s|ed)? (in|from)|in order to|so that|"
    r"led to|leads to|cause[sd]?|causing|reasons?|thanks to|therefore|hence|since|"
    r"consequently|blamed|attributed)\b",
    re.I,
)
_EXPANSION_Q = re.compile(
    r"\b(stand|stands|stood) for\b|\bacronym\b|\babbreviat|\bshort for\b|"
    r"\bfull (name|form)\b|\bwhat does [A-Z0-9.&-]{2,} mean\b",
    re.I,
)
_EXPANSION = re.compile(
    r"\b(stand|stands|stood|acronym|abbreviat\w*|short for|initials|named after|"
    r"known as)\b|\([A-Z][\w .&-]*\)|\(\w+\)",
    re.I,
)
_DEFINITION_Q = re.compile(
    r"^\s*(what|who)\s*(is|are|was|were|'s)\s+(an?\s+|the\s+)?[\w.&'-]+(\s+[\w.&'-]+){0,3}"
    r"\s*\??\s*$|^\s*(define|definition of|meaning of|what does .* mean)\b",
    re.I,
)
_COPULA = re.compile(
    r"\b(is|are|was|were)\s+(an?|the|one of)\b|\brefers? to\b|\bmeans\b|\bdefined as\b|"
    r"\bis (a|an) \w+|\b(known|described) as\b",
    re.I,
)


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
    when: bool = False  # a date or a year
    money: bool = False  # an amount of money
    where: bool = False  # a place
    why: bool = False  # a reason or a cause
    expansion: bool = False  # what letters stand for
    definition: bool = False  # "What is X?": what X is

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
            when=bool(_WHEN_Q.search(question)),
            money=bool(_MONEY_Q.search(question)),
            where=bool(_WHERE_Q.search(question)),
            why=bool(_WHY_Q.search(question)),
            expansion=bool(_EXPANSION_Q.search(question)),
            definition=bool(_DEFINITION_Q.search(question)),
        )

    def offers(self, sentence: str) -> list[float]:
        """For each finer kind of question (date, money, place, reason, expansion,
        definition): +1 when the sentence offers that kind of answer, -1 when it
        does not, 0 when the question is not of that kind."""

        def match(asked: bool, pattern: re.Pattern[str]) -> float:
            if not asked:
                return 0.0
            return 1.0 if pattern.search(sentence) else -1.0

        return [
            match(self.when, _DATE),
            match(self.money, _MONEY),
            match(self.where, _PLACE),
            match(self.why, _REASON),
            match(self.expansion, _EXPANSION),
            match(self.definition, _COPULA),
        ]

    def answer_type(self, sentence: str, has_unit: bool = True) -> float:
        """Does the sentence hold the kind of thing asked for? For "how many X" /
        "how much X": +1 for a number next to X ("394 official business meetings"),
        0.5 for a number elsewhere; for other number or date questions, and for
        name questions, +1 when the sentence has one. -1 when it has none; 0 for
        other questions. `has_unit` False says the sentence has none of X's terms
        (known from the index), which spares looking for them word by word."""
        if self.numeric:
            if not _has_number(sentence):
                return -1.0
            if not self.units:
                return 1.0
            if not has_unit:
                return 0.5
            # A unit term among the 4 words after a number (numbers are the rarer).
            words = sentence.split()
            for i, word in enumerate(words):
                if _has_number(word) and any(
                    self.units.intersection(terms(w)) for w in words[i + 1 : i + 5]
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
    def __init__(
        self, model: ScoreModel | None = None, reader=None, blend: ReaderBlend | None = None
    ) -> None:
        self.model = model or ScoreModel()
        self.reader = reader  # qa.reader.Reader, or None: the first score alone
        self.blend = blend or ReaderBlend()

    def candidates(
        self,
        snap: Snapshot,
        question: str,
        qvec: np.ndarray,
        qterms: list[str],
        passages: Passages,
        borrowed: frozenset[str] = frozenset(),
    ) -> list[Candidate]:
        """Every sentence of the best passages, with its features (unscored)."""
        # A global search over sentence vectors added candidates outside these
        # passages; it cost a 69 MB scan per question on the BBC index for 0.002
        # of XQuAD top-1 accuracy, so the passages alone supply the candidates.
        kept = passages.ranked[:PASSAGES_KEPT]
        table = snap.sentences_around_chunks(kept)  # candidates and their neighbours
        # Which kept passage (by rank) each row belongs to; rows of none are neighbours.
        in_passage = table.chunks[:, None] == np.asarray(kept, dtype=np.int64)[None, :]
        here = np.flatnonzero(in_passage.any(axis=1))  # the candidates' rows
        if not len(here):
            return []
        rank = in_passage[here].argmax(axis=1)
        # Each candidate's neighbour rows in the same article, or -1 for none.
        ids, codes = table.ids, table.article_codes
        adjacent = (ids[1:] == ids[:-1] + 1) & (codes[1:] == codes[:-1])
        before = np.where(np.concatenate(([False], adjacent))[here], here - 1, -1)
        after = np.where(np.concatenate((adjacent, [False]))[here], here + 1, -1)

        # Dense signals: each sentence's cosine, and its window's.
        vecs = snap.sentence_vectors(ids)
        cos = vecs @ qvec
        window_cos = _window_cosines(vecs, cos, here, before, after)

        # Lexical signals: the IDF-weighted share of the question's terms held by
        # the sentence, by its window, and by its passage with the article title.
        qt = sorted(set(qterms))
        idf = _idf(snap.n_chunks, snap.doc_freqs(qt), qt)
        weights = np.array([idf[t] for t in qt]) / (sum(idf.values()) or 1.0)
        # For a follow-up, the words borrowed from earlier turns (the subject put in
        # for "it") name what the whole preferred article is about: they count for
        # the score, but the question's own words order the sentences.
        lent = np.array([t in borrowed for t in qt], dtype=bool)
        own_weights = None
        if lent.any() and not lent.all():
            own = np.where(lent, 0.0, weights)
            own_weights = own / own.sum()
        has = snap.term_presence(ids, qt)
        has = np.vstack([has, np.zeros((1, len(qt)), dtype=bool)])  # row -1: no neighbour
        sentence_has = has[here]
        window_has = sentence_has | has[before] | has[after]
        # A chunk is whole sentences, all of them candidates, consecutive in id
        # order: its terms are theirs plus its title's, its text runs from first
        # to last. `first` is where each chunk's candidates begin.
        chunk_of = table.chunks[here]
        first = np.flatnonzero(np.concatenate(([True], chunk_of[1:] != chunk_of[:-1])))
        sizes = np.diff(np.append(first, len(here)))
        names = [table.article_names[c] for c in codes[here].tolist()]
        texts = snap.article_texts(sorted(set(names)))
        title_has = {
            name: np.array([t in title for t in qt], dtype=bool)
            for name, title in ((n, set(terms(texts[n][0].title))) for n in set(names))
        }
        titles = np.array([title_has[names[i]] for i in first.tolist()])
        titles = titles.reshape(len(first), len(qt))
        chunk_has = np.logical_or.reduceat(sentence_has, first, axis=0) if len(qt) else titles
        passage_has = np.repeat(chunk_has | titles, sizes, axis=0)

        starts, ends = table.starts[here].tolist(), table.ends[here].tolist()
        before_spans = [
            (int(table.starts[b]), int(table.ends[b])) if b >= 0 else None for b in before.tolist()
        ]
        sentences = [texts[n][1][s:e] for n, s, e in zip(names, starts, ends, strict=True)]
        cues = QuestionCues.of(question)
        # For a question naming a number (a year, an amount): passages lacking it.
        lacks_number = np.zeros(len(first))
        if cues.numbers:
            for g, (i, size) in enumerate(zip(first.tolist(), sizes.tolist(), strict=True)):
                ref, text = texts[names[i]]
                found = _DIGITS.findall(ref.title + "\n" + text[starts[i] : ends[i + size - 1]])
                lacks_number[g] = 1.0 if cues.numbers - set(found) else 0.0
        has_unit = sentence_has[:, [t in cues.units for t in qt]].any(axis=1).tolist()
        # What the sentence says beyond the question's own words: a sentence that
        # only restates the question cannot hold its answer.
        counts = snap.term_counts(ids[here]).astype(np.float64)
        novelty = 1.0 - sentence_has.sum(axis=1) / np.maximum(counts, 1.0)
        features = np.column_stack(
            [
                cos[here],
                np.asarray(passages.cosine[: len(kept)])[rank],
                sentence_has @ weights,
                passage_has @ weights,
                1.0 / (1.0 + rank),
                [cues.answer_type(t, u) for t, u in zip(sentences, has_unit, strict=True)],
                window_cos,
                window_has @ weights,
                np.repeat(lacks_number, sizes),
                [cues.superlative_match(t) for t in sentences],
                np.array([cues.offers(t) for t in sentences]).reshape(len(sentences), 6),
                np.where(counts > 0, novelty, 0.0),
                np.log1p(counts) / 4.0,
            ]
        )
        if own_weights is None:
            ordering = [None] * len(features)
        else:
            ordering = features.copy()
            ordering[:, FEATURES.index("sentence_terms")] = sentence_has @ own_weights
            ordering[:, FEATURES.index("window_terms")] = window_has @ own_weights
        hits = zip(ids[here].tolist(), chunk_of.tolist(), names, starts, ends, strict=True)
        return [
            Candidate(SpanRow(*hit), *texts[hit[2]], f, order_features=o, before=b)
            for hit, f, o, b in zip(hits, features, ordering, before_spans, strict=True)
        ]

    def score(
        self, candidates: list[Candidate], question: str = "", bonus: np.ndarray | None = None
    ) -> list[Candidate]:
        """Scored candidates, best first (ties by position in the index). With a
        reader, the first score's READ best are read, and their final score
        blends both; the others keep the first score, kept below theirs. `bonus`
        (logits, one per candidate) moves candidates in the ranking only, before
        and after reading; their scores stay calibrated (qa.recency's)."""
        if not candidates:
            return []
        first = self.model.logit(np.stack([c.features for c in candidates]))
        order = first
        if candidates[0].order_features is not None:
            order = self.model.logit(np.stack([c.order_features for c in candidates]))
        score, rank = first.copy(), order.copy()
        lift = np.zeros(len(candidates)) if bonus is None else bonus
        rank += lift
        if self.reader is not None and question:
            best = np.lexsort(([c.hit.id for c in candidates], -rank))[:READ]
            picked = [candidates[i] for i in best.tolist()]
            readings = self.reader.read(
                question, [c.text for c in picked], [c.before_text for c in picked]
            )
            logits = np.array([r.logit for r in readings])
            sure = np.array([r.span_logit for r in readings])
            read_score = self.blend.logit(first[best], logits, sure)
            read_rank = self.blend.logit(order[best], logits, sure) + lift[best]
            # Unread candidates stay below every read one, in their first order.
            floor_s, floor_r = read_score.min(), read_rank.min()
            score = np.minimum(score, floor_s - 1e-3)
            rank = np.minimum(rank, floor_r - 1e-3)
            score[best], rank[best] = read_score, read_rank
            for c, r in zip(picked, readings, strict=True):
                if r.span is not None and r.span_logit >= self.blend.span_min:
                    c.span = (c.hit.start + r.span[0], c.hit.start + r.span[1])
        for c, s, o in zip(
            candidates, _sigmoid(score).tolist(), _sigmoid(rank).tolist(), strict=True
        ):
            c.score, c.order = s, o
        return sorted(candidates, key=lambda c: (-c.order, c.hit.id))

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
            # A follow-up's quotes are ranked by its own words, but show the calibrated
            # score, never above the quote ranked before.
            score = min(c.score, quotes[-1].score) if quotes else c.score
            quotes.append(
                Quote(
                    text=c.article_text[start:end],
                    score=round(score, 4),
                    article=c.article,
                    start=start,
                    end=end,
                    highlight=_highlight(c.article_text, c.span),
                )
            )
            if len(quotes) == k:
                break
        return quotes


_DIGITS = re.compile(r"\d[\d,.]*\d|\d")
_EDGE = " \t\n,;:.!?\"'()[]“”‘’—–-"


def _highlight(text: str, span: tuple[int, int] | None) -> Highlight | None:
    """The reader's span, trimmed of surrounding spaces and punctuation (a full
    stop after "2022" is not part of the answer); None when nothing is left."""
    if span is None:
        return None
    a, b = span
    while a < b and text[a] in _EDGE:
        a += 1
    while b > a and text[b - 1] in _EDGE:
        b -= 1
    # Keep a closing bracket or a final abbreviation's period that belongs to the words.
    if b < span[1] and text[b] == ")" and "(" in text[a:b]:
        b += 1
    return Highlight(start=a, end=b) if b > a else None


def _window_cosines(
    vecs: np.ndarray, cos: np.ndarray, here: np.ndarray, before: np.ndarray, after: np.ndarray
) -> np.ndarray:
    """Cosine to the question of w = v + b/2 + a/2 for each row in `here`: the
    sentence plus half of each neighbour (rows `before`/`after`, -1 for none).
    Worked out from dot products, q.w / |w| with |w|^2 expanded over the Gram
    matrix, instead of building and normalising each window vector."""
    gram = vecs @ vecs.T
    b, a = np.maximum(before, 0), np.maximum(after, 0)
    hb, ha = 0.5 * (before >= 0), 0.5 * (after >= 0)
    norm2 = (
        gram[here, here]
        + hb * hb * gram[b, b]
        + ha * ha * gram[a, a]
        + 2 * hb * gram[here, b]
        + 2 * ha * gram[here, a]
        + 2 * hb * ha * gram[b, a]
    )
    return (cos[here] + hb * cos[b] + ha * cos[a]) / np.maximum(
        np.sqrt(np.maximum(norm2, 0.0)), 1e-9
    )


def _idf(n_chunks: int, df: dict[str, int], qterms: list[str]) -> dict[str, float]:
    """Rarity of each question term; one absent from every article counts as rarest."""
    n = max(n_chunks, 1)
    return {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in set(qterms)}
