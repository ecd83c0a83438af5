"""Article text → sentence-aligned chunks sized in the model's own tokens.

In: the article text and a token counter (the encoder's tokenizer). Out:
`ChunkSpan`s, each a run of whole sentences `text[start:end]` with the
sentence spans inside it. Chunks aim at `target_tokens` word pieces and never
pass `max_tokens` (all-MiniLM-L6-v2 silently truncates past 256, so anything
longer would be invisible to search). A chunk ends at a paragraph end when the
next paragraph would overflow it; a paragraph is split only when it alone is
too long, and a single sentence only when it alone is too long.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.sentences import Span, split_sentences

TokenCounter = Callable[[Sequence[str]], list[int]]

_PARAGRAPHS = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class ChunkerSettings:
    target_tokens: int = 128
    max_tokens: int = 200

    def as_dict(self) -> dict[str, int | str]:
        return {
            "splitter": "qa.sentences/1",
            "target_tokens": self.target_tokens,
            "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    sentences: tuple[Span, ...]


def paragraph_spans(text: str) -> list[Span]:
    spans, pos = [], 0
    for m in _PARAGRAPHS.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def chunk_text(
    text: str, count_tokens: TokenCounter, settings: ChunkerSettings = ChunkerSettings()
) -> list[ChunkSpan]:
    # Sentences per paragraph, each with its token count (one batched call).
    paragraphs = [split_sentences(text, a, b) for a, b in paragraph_spans(text)]
    flat = [s for para in paragraphs for s in para]
    counts = count_tokens([text[a:b] for a, b in flat]) if flat else []
    tokens = dict(zip(flat, counts, strict=True))

    # Over-long sentences become word-bounded pieces that fit.
    pieces: list[list[tuple[Span, int]]] = []
    for para in paragraphs:
        row: list[tuple[Span, int]] = []
        for span in para:
            if tokens[span] <= settings.max_tokens:
                row.append((span, tokens[span]))
            else:
                row.extend(_split_long(text, span, count_tokens, settings.target_tokens))
        pieces.append(row)

    chunks: list[ChunkSpan] = []
    current: list[Span] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        if current:
            chunks.append(ChunkSpan(current[0][0], current[-1][1], tuple(current)))
        current, size = [], 0

    for para in pieces:
        para_tokens = sum(n for _, n in para)
        # A paragraph that does not fit what is left starts a fresh chunk.
        if current and size + para_tokens > settings.target_tokens:
            flush()
        for span, n in para:
            if current and size + n > settings.target_tokens:
                flush()
            current.append(span)
            size += n
    flush()
    return chunks


def _split_long(
    text: str, span: Span, count_tokens: TokenCounter, budget: int
) -> list[tuple[Span, int]]:
    """Cut one over-long sentence at spaces into pieces of about `budget` tokens."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[span[0] : span[1]])]
    words = [(span[0] + a, span[0] + b) for a, b in words]
    counted = list(zip(words, count_tokens([text[a:b] for a, b in words]), strict=True))
    # A "word" over the budget by itself (CJK text, "1.2.1.2...") is cut between characters.
    fitted: list[tuple[Span, int]] = []
    for (a, b), n in counted:
        fitted.extend(
            [((a, b), n)] if n <= budget else _split_word(text, a, b, count_tokens, budget)
        )
    out: list[tuple[Span, int]] = []
    lo, size = 0, 0
    for i, (_, n) in enumerate(fitted):
        if i > lo and size + n > budget:
            out.append(((fitted[lo][0][0], fitted[i - 1][0][1]), size))
            lo, size = i, 0
        size += n
    out.append(((fitted[lo][0][0], fitted[-1][0][1]), size))
    return out


def _split_word(
    text: str, a: int, b: int, count_tokens: TokenCounter, budget: int
) -> list[tuple[Span, int]]:
    """Cut text[a:b] (no spaces) into the longest runs of at most `budget` tokens."""
    out: list[tuple[Span, int]] = []
    while a < b:
        lo, hi = a + 1, b  # binary search for the longest run that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_tokens([text[a:mid]])[0] <= budget:
                lo = mid
            else:
                hi = mid - 1
        out.append(((a, lo), count_tokens([text[a:lo]])[0]))
        a = lo
    return out
