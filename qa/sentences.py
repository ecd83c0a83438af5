"""Sentence boundaries with exact character offsets.

In: a text (and optionally a start/end window of it). Out: `(start, end)` spans
such that `text[start:end]` is one sentence, trimmed of surrounding
whitespace, in order, never overlapping, together covering every non-space
character of the window.

Rule-based, because quotes must slice back to the stored text exactly and the
news text we see is full of periods that do not end sentences: "Dec. 5",
"U.S. officials", "Boston, Mass., on Thursday", "Mr. Noh", "$1.13bn", "No. 1".
"""

from __future__ import annotations

import re

Span = tuple[int, int]

# Words that take a period without ending a sentence when a name or number follows.
_TITLES = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "rev",
    "gen",
    "gov",
    "sen",
    "rep",
    "lt",
    "col",
    "capt",
    "cpt",
    "sgt",
    "maj",
    "adm",
    "cmdr",
    "pres",
    "supt",
    "insp",
    "hon",
    "messrs",
    "mt",
    "ft",
    "fig",
    "figs",
    "vol",
    "vols",
    "no",
    "nos",
    "art",
    "sec",
    "ch",
    "pp",
    "p",
    "ed",
    "eds",
    "approx",
    "est",
    "dept",
    "univ",
    "assn",
    "bros",
    "vs",
    "v",
    "cf",
    "al",
    "etc",
    "ave",
    "blvd",
    "rd",
    "inc",
    "ltd",
    "co",
    "corp",
    "plc",
    "llc",
}
_MONTHS = {
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
_STATES = {
    "ala",
    "ariz",
    "ark",
    "calif",
    "colo",
    "conn",
    "del",
    "fla",
    "ga",
    "ill",
    "ind",
    "kan",
    "ky",
    "la",
    "md",
    "mass",
    "mich",
    "minn",
    "miss",
    "mo",
    "mont",
    "neb",
    "nev",
    "okla",
    "ore",
    "pa",
    "tenn",
    "tex",
    "va",
    "vt",
    "wis",
    "wyo",
}
# After an initialism such as "U.S." a sentence usually goes on ("U.S. officials"),
# unless the next word is one that typically opens a sentence.
_OPENERS = {
    "a",
    "an",
    "the",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "he",
    "she",
    "they",
    "we",
    "i",
    "you",
    "there",
    "but",
    "and",
    "however",
    "in",
    "on",
    "at",
    "according",
    "as",
    "after",
    "before",
    "while",
    "when",
    "if",
    "his",
    "her",
    "their",
    "our",
    "meanwhile",
    "also",
    "for",
    "so",
    "yet",
    "still",
    "what",
    "how",
    "why",
    "who",
    "some",
    "many",
    "most",
}

# A run of sentence-final punctuation, any closing quotes/brackets, then whitespace.
_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)|[.!?]+[\"'\u201d\u2019)\]]*$")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_INITIALISM = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]?$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_NEXT_WORD = re.compile(r"\s*([\"'\u201c\u2018(\[]*)(\S*)")
_BULLET = re.compile(r"[-*\u2022]\s|\d+[.)]\s")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of `text[start:end]`, as offsets into `text`."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cut = start
    for boundary in _boundaries(text, start, end):
        _emit(text, cut, boundary, spans)
        cut = boundary
    _emit(text, cut, end, spans)
    return spans


def _emit(text: str, lo: int, hi: int, spans: list[Span]) -> None:
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    if hi > lo:
        spans.append((lo, hi))


def _boundaries(text: str, start: int, end: int):
    window = text[start:end]
    candidates: list[int] = []
    for m in _END.finditer(window):
        if _ends_sentence(window, m.start(), m.end()):
            candidates.append(start + m.end())
    for m in re.finditer(r"\n", window):
        if _line_break_ends_sentence(window, m.start()):
            candidates.append(start + m.start())
    # A blank line always ends a sentence, punctuated or not (headings, captions).
    candidates.extend(start + m.start() for m in _PARAGRAPH_BREAK.finditer(window))
    return sorted(set(candidates))


def _next_word(text: str, pos: int) -> str:
    m = _NEXT_WORD.match(text, pos)
    return m.group(2) if m else ""


def _ends_sentence(text: str, p_start: int, p_end: int) -> bool:
    after = text[p_end:]
    stripped = after.lstrip()
    if not stripped:
        return True
    if "\n\n" in after[: len(after) - len(stripped)]:
        return True  # a paragraph break always ends a sentence
    nxt = _next_word(text, p_end)
    if not nxt:
        return True
    first = nxt[0]
    if not (first.isupper() or first.isdigit() or not first.isalnum()):
        return False  # "e.g. something", "approx. ten": a lowercase word goes on
    punct = text[p_start:p_end]
    if not punct.startswith(".") or punct.startswith(".."):
        return True  # "!", "?", or an ellipsis before a capital
    m = _WORD_BEFORE.search(text, 0, p_start + 1)
    if not m:
        return True
    word = m.group(1)
    low = word.lower().rstrip(".")
    if _INITIALISM.match(word + "."):
        if len(word) == 1:
            return False  # a middle initial: "John F. Kennedy"
        return nxt.strip("\"'\u201c\u2018(").lower() in _OPENERS
    if low in _TITLES:
        return False
    if low in _MONTHS:
        return not first.isdigit()  # "Dec. 5, 2022"
    if low in _STATES:
        return nxt.lower() in _OPENERS
    return True


def _line_break_ends_sentence(text: str, pos: int) -> bool:
    """A single newline inside a paragraph: a boundary for headings, list items
    and short lines, but not for hard-wrapped prose."""
    line_start = text.rfind("\n", 0, pos) + 1
    line = text[line_start:pos].rstrip()
    if not line:
        return False
    nxt = text[pos + 1 :].lstrip(" \t")
    if not nxt or nxt.startswith("\n"):
        return False  # the paragraph break is handled by punctuation/emit
    if _BULLET.match(nxt) or _BULLET.match(line):
        return True
    if line[-1] in '.!?:;"\u201d':
        return True
    return len(line) < 50
