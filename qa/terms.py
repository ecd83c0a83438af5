"""Words → search terms: lower-cased, stop words dropped, Snowball-stemmed.

The same function feeds the lexical index at indexing time and the question at
query time, so both sides always agree on what a term is.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Recorded in each index's manifest: changing the analysis means re-indexing.
TERMS_VERSION = "snowball-en/3"

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*", re.UNICODE)

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t also said says say tell told many much
    """.split()
    # Verbs that frame a question rather than carry its subject ("What does X want
    # to do?", "What is Y called?"): matching them says nothing about the answer.
    + """want wants wanted wanting called call named known happen happened happens
    take took taken give gave given get got make made use used uses using go went
    come came become became """.split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


_POSSESSIVE = re.compile(r"['’]s$")


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """One word → its term ("" for a stop word). Cached: a corpus's vocabulary is
    small next to the number of times sentences are analysed at query time."""
    word = _POSSESSIVE.sub("", word.lower())
    if not word.isascii():
        word = unicodedata.normalize("NFKD", word)
        word = "".join(c for c in word if not unicodedata.combining(c))
    # "K-SPACE" → "kspace", "U.S." → "us"; "2,000" stays apart from "2000" on purpose.
    word = word.replace("’", "").replace("'", "").replace("-", "").replace(".", "")
    if not word or word in STOP_WORDS:
        return ""
    return _stemmer().stemWord(word)


def terms(text: str) -> list[str]:
    # findall + map keeps the per-word work in C: answering analyses ~100 sentences.
    return [t for t in map(_term, _WORD.findall(text)) if t]
