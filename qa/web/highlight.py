"""Article text → paragraphs of plain-text segments, with the quoted span marked.

The page renders segments as escaped text and one `<mark id="quote">`, so the
highlight is server-side (no JavaScript needed) and the article is never
parsed as HTML. Offsets are the contract's: indexes into the stored text.

A quote may run across a paragraph break (the core joins adjacent sentences),
and `<mark>` cannot hold a `<p>`: the paragraphs it touches are then rendered
as one block, with the break kept as text inside the mark and shown by a
spacer element, so the mark's text is still exactly the quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool = False

    @property
    def pieces(self) -> list[str]:
        """The text cut where each paragraph break begins (the breaks stay in the text)."""
        cuts = [0, *(m.start() for m in _PARAGRAPH_BREAK.finditer(self.text)), len(self.text)]
        return [self.text[a:b] for a, b in pairwise(cuts) if b > a]


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
    """Each paragraph as segments; the paragraphs `span` touches form one block with a mark."""
    bounds = paragraph_bounds(text)
    touched = [i for i, (a, b) in enumerate(bounds) if span and a < span[1] and span[0] < b]
    if not span or not touched:
        return [[Segment(text[a:b])] for a, b in bounds]
    first, last = touched[0], touched[-1]
    lo, hi = min(bounds[first][0], span[0]), max(bounds[last][1], span[1])
    block = [
        Segment(text[lo : span[0]]),
        Segment(text[span[0] : span[1]], marked=True),
        Segment(text[span[1] : hi]),
    ]
    return (
        [[Segment(text[a:b])] for a, b in bounds[:first]]
        + [[s for s in block if s.text]]
        + [[Segment(text[a:b])] for a, b in bounds[last + 1 :]]
    )
