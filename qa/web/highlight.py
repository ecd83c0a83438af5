"""Article text → paragraphs of plain-text segments, with the quoted span marked.

The page renders segments as escaped text and `<mark>`, so the highlight is
server-side (no JavaScript needed) and the text itself is never parsed as HTML.
Offsets are the contract's: indexes into the stored article text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool = False
    anchor: bool = False  # the first marked segment carries id="quote"


def parse_span(start: str | None, end: str | None, length: int) -> tuple[int, int] | None:
    """The span [start, end) when both are integers inside the text and start < end."""
    try:
        s, e = int(start or ""), int(end or "")
    except ValueError:
        return None
    if 0 <= s < e <= length:
        return s, e
    return None


def paragraph_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph: runs of text between blank lines."""
    bounds: list[tuple[int, int]] = []
    pos = 0
    for brk in _PARAGRAPH_BREAK.finditer(text):
        bounds.append((pos, brk.start()))
        pos = brk.end()
    bounds.append((pos, len(text)))
    return [(a, b) for a, b in bounds if text[a:b].strip()]


def paragraphs(text: str, span: tuple[int, int] | None = None) -> list[list[Segment]]:
    """Each paragraph as segments; the part of each inside `span` is marked."""
    out: list[list[Segment]] = []
    anchored = False
    for a, b in paragraph_bounds(text):
        if span is None or span[1] <= a or span[0] >= b:
            out.append([Segment(text[a:b])])
            continue
        lo, hi = max(a, span[0]), min(b, span[1])
        segs = []
        if a < lo:
            segs.append(Segment(text[a:lo]))
        segs.append(Segment(text[lo:hi], marked=True, anchor=not anchored))
        anchored = True
        if hi < b:
            segs.append(Segment(text[hi:b]))
        out.append(segs)
    return out
