"""Questions about the latest state of things → newer quotes first, among equals.

In: a question and its candidate sentences. Out: a ranking bonus per candidate
(logits, for `QuoteSelector.score`), so that "What is the latest on K-SPACE?"
or "Who is the current chairman?" gets the newest of several articles that say
nearly the same thing. Other questions get no bonus and are ranked exactly as
before.

The bonus runs from 0 (the oldest dated candidate, or an undated one) to
`MARGIN` (the newest), by date: only a quote within `MARGIN` of a better one
can pass it, so a clearly better older quote stays first. It moves the ranking
only (the reader then reads the newer near-equals too); the scores shown stay
calibrated. A date counts by its day (`store.published_day`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import numpy as np

from qa.quotes import Candidate
from qa.store import published_day

# Logits of the ranking score. Two parallel sentences of two articles ("The chairman of
# X is A, the company said." / "... is B, ...") were measured 0.9 apart, the second
# article's passage ranking lower; a smaller margin left the newer one second.
MARGIN = 1.0

_LATEST = re.compile(
    r"\b(latest|newest|most recent|recent|recently|current|currently|now|nowadays|today|"
    r"this year|these days|at present|presently|as of now|up to date|so far|any news|"
    r"new developments?|updates?)\b",
    re.I,
)


def asks_for_latest(question: str) -> bool:
    """Does the question ask for the latest or current state of something?"""
    return bool(_LATEST.search(question))


def recency_bonus(candidates: Sequence[Candidate]) -> np.ndarray | None:
    """Each candidate's bonus (see the module docstring); None when fewer than two
    distinct dates are among them, so there is nothing to prefer."""
    days = [published_day(c.article.published) for c in candidates]
    ordinals = {d: date.fromisoformat(d).toordinal() for d in set(days) if d}
    if len(set(ordinals.values())) < 2:
        return None
    oldest, newest = min(ordinals.values()), max(ordinals.values())
    fresh = [(ordinals[d] - oldest) / (newest - oldest) if d else 0.0 for d in days]
    return MARGIN * np.asarray(fresh)


def keep_answered(ranked: list[Candidate], min_score: float) -> list[Candidate]:
    """`ranked` with the candidates that reach `min_score` first, in their order: a
    newer quote under the threshold must not turn an answer into "not found"."""
    if not ranked or ranked[0].score >= min_score:
        return ranked
    sure = [c for c in ranked if c.score >= min_score]
    return sure + [c for c in ranked if c.score < min_score] if sure else ranked
