"""Properties of `split_sentences` and `chunk_text` on generated text (hypothesis).

Quotes are slices of the stored text, so the offsets must be exact whatever the
input: spans slice back to trimmed text, are ordered and disjoint, and together
hold every non-space character once; chunks are runs of whole sentences (a
sentence is cut only when it alone is over the limit) within the token bound.

The default run tries 200 examples per property (50 with the real tokenizer);
`-m slow` tries 2,000 (500).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import ChunkerSettings, ChunkSpan, chunk_text, paragraph_spans
from qa.sentences import Span, split_sentences

QUICK, THOROUGH = 200, 2000
EXAMPLES = [
    pytest.param(QUICK, id="quick"),
    pytest.param(THOROUGH, id="thorough", marks=pytest.mark.slow),
]
REAL_EXAMPLES = [
    pytest.param(QUICK // 4, id="quick"),
    pytest.param(THOROUGH // 4, id="thorough", marks=pytest.mark.slow),
]
CHUNKER = ChunkerSettings()
RUNS: Counter[str] = Counter()  # examples tried per property, printed at the end (-s)

# News-text pieces the splitter has rules for, and the ones that trip splitters.
FRAGMENTS = [
    *("Dec.", "Jan. 5,", "U.S.", "U.K.", "Mr.", "Dr.", "Mrs.", "No.", "e.g.", "i.e.", "etc."),
    *("Boston, Mass.,", "Inc.", "vs.", "St.", "John F. Kennedy", "approx.", "a.m.", "p.m."),
    *("$1.13bn", "2.5%", "3.14159", "1.2.3", "v2.0.1", "10.", "No. 1", "1,000.50", "...", "…"),
    *('"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "(", ")", "[", "]", "«", "»"),
    *(".", "!", "?", "?!", "!!", ".)", '."', ".\u201d", ":", ";", ",", " - ", "—", "•", "-"),
    *("\n", "\n\n", "\n \n", "\n\t\n", "\r\n", "\u00a0", "\u2028", "\t", "   "),
    *("é", "Straße", "naïve", "日本語のテキスト。", "中文句子。", "Ελληνικά", "עברית", "مرحبا"),
    *("😀", "👩‍👩‍👧", "e\u0301", "\u200b", "ﬁ", "Ⅻ", "１２３"),
    *("The", "it", "however", "According", "officials", "said", "profits", "rose", "fell"),
    *("1.", "2)", "- item", "* item", "# Heading", "Heading"),
]
WORDS = st.text(alphabet=st.characters(categories=["L", "Nd"]), min_size=1, max_size=12)
LONG_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=60, max_size=400)
SEPARATORS = st.sampled_from([" ", " ", " ", "", "\n", "\n\n", ". ", ", "])
PIECE = st.one_of(st.sampled_from(FRAGMENTS), WORDS, WORDS, LONG_WORDS, st.text(max_size=8))


@st.composite
def news_like(draw: st.DrawFn) -> str:
    """Text built from fragments, words and separators: far more boundary cases per
    example than uniformly random characters."""
    pieces = draw(st.lists(st.tuples(PIECE, SEPARATORS), max_size=120))
    return "".join(p + s for p, s in pieces)


TEXTS = st.one_of(news_like(), st.text(max_size=300))


def cheap_count_tokens(texts: Sequence[str]) -> list[int]:
    """Deterministic stand-in for the word-piece tokenizer, additive over whitespace
    like it: punctuation is one token, words about one per 5 characters, words over
    100 characters one ([UNK]), as BERT's tokenizer does."""

    def word_tokens(word: str) -> int:
        return sum(
            1 if len(m) == 1 and not m.isalnum() else 1 if len(m) > 100 else math.ceil(len(m) / 5)
            for m in re.findall(r"\w+|[^\w\s]", word)
        )

    return [sum(word_tokens(w) for w in t.split()) for t in texts]


def run_property(name: str, strategy: st.SearchStrategy, examples: int, check: Callable) -> None:
    def counted(value) -> None:
        RUNS[name] += 1
        check(value)

    settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(strategy)(counted))()


@pytest.fixture(scope="module", autouse=True)
def _report_examples() -> Iterator[None]:
    yield
    total = sum(RUNS.values())
    print(
        f"\nhypothesis examples: {total} in all; " + ", ".join(f"{k} {v}" for k, v in RUNS.items())
    )


# -- sentences ---------------------------------------------------------------


def assert_sentence_spans(text: str, spans: list[Span], lo: int, hi: int) -> None:
    for a, b in spans:
        assert lo <= a < b <= hi, (a, b)
        piece = text[a:b]
        assert piece == piece.strip() and piece, (a, b, piece)  # trimmed, never empty
    for (_, b1), (a2, _) in itertools.pairwise(spans):
        assert b1 <= a2, spans  # ordered, disjoint
    covered = [0] * len(text)
    for a, b in spans:
        for i in range(a, b):
            covered[i] += 1
    for i in range(lo, hi):
        if not text[i].isspace():
            assert covered[i] == 1, (i, text[i], spans)  # every character, exactly once
    assert all(c == 0 for c in covered[:lo] + covered[hi:])


@pytest.mark.parametrize("examples", EXAMPLES)
def test_sentence_spans_slice_back_in_order_and_lose_no_text(examples):
    def check(text: str) -> None:
        spans = split_sentences(text)
        assert_sentence_spans(text, spans, 0, len(text))
        # What is outside the sentences is whitespace only: nothing lost.
        rest = list(text)
        for a, b in spans:
            rest[a:b] = [" "] * (b - a)
        assert "".join(rest).strip() == ""

    run_property("sentences", TEXTS, examples, check)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_sentence_spans_of_a_window_stay_inside_it(examples):
    @st.composite
    def text_and_window(draw: st.DrawFn) -> tuple[str, int, int]:
        text = draw(TEXTS)
        lo = draw(st.integers(0, len(text)))
        return text, lo, draw(st.integers(lo, len(text)))

    def check(value: tuple[str, int, int]) -> None:
        text, lo, hi = value
        assert_sentence_spans(text, split_sentences(text, lo, hi), lo, hi)

    run_property("sentence windows", text_and_window(), examples, check)


# -- chunks ------------------------------------------------------------------


def paragraph_sentences(text: str) -> list[Span]:
    """The sentences chunk_text starts from: split within each paragraph."""
    return [s for a, b in paragraph_spans(text) for s in split_sentences(text, a, b)]


def assert_chunks(text: str, chunks: list[ChunkSpan], count: Callable) -> None:
    sentences = paragraph_sentences(text)
    pieces = [s for c in chunks for s in c.sentences]
    for c in chunks:
        assert c.sentences and (c.start, c.end) == (c.sentences[0][0], c.sentences[-1][1])
        assert text[c.start : c.end] == text[c.start : c.end].strip()
    spans = [(c.start, c.end) for c in chunks]
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 <= s2, spans  # chunks ordered and disjoint
    for (_, e1), (s2, _) in itertools.pairwise(pieces):
        assert e1 <= s2, pieces

    # Every piece is a whole sentence, or a cut of a sentence that alone is over
    # the limit; the cuts of a sentence hold all its characters, in order.
    whole = set(sentences)
    counts = dict(zip(sentences, count([text[a:b] for a, b in sentences]), strict=True))
    cut_of: dict[Span, list[Span]] = {}
    for piece in pieces:
        if piece in whole:
            continue
        parent = next((s for s in sentences if s[0] <= piece[0] and piece[1] <= s[1]), None)
        assert parent is not None, f"piece {piece} {text[piece[0] : piece[1]]!r} crosses sentences"
        assert counts[parent] > CHUNKER.max_tokens, (parent, counts[parent])
        cut_of.setdefault(parent, []).append(piece)
    for (a0, b0), cuts in cut_of.items():
        assert "".join("".join(text[a:b].split()) for a, b in cuts) == "".join(text[a0:b0].split())
    kept = [s for s in sentences if s in set(pieces)] + list(cut_of)
    assert sorted(kept) == sentences, "a sentence is missing from the chunks"


def words_fit(text: str, count: Callable) -> bool:
    """The bound is reachable: chunks are cut at spaces, so every word must fit."""
    words = text.split()
    return not words or max(count(words)) <= CHUNKER.max_tokens


@pytest.mark.parametrize("examples", EXAMPLES)
def test_chunks_are_whole_sentences_in_order_within_the_bound(examples):
    def check(text: str) -> None:
        chunks = chunk_text(text, cheap_count_tokens)
        assert_chunks(text, chunks, cheap_count_tokens)
        if words_fit(text, cheap_count_tokens):
            sizes = cheap_count_tokens([text[c.start : c.end] for c in chunks])
            assert max(sizes, default=0) <= CHUNKER.max_tokens, sizes

    run_property("chunks (cheap counter)", TEXTS, examples, check)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_long_texts_chunk_within_the_bound(examples):
    """Many sentences and paragraphs, some over the limit alone: the packing paths."""
    long_texts = st.lists(news_like(), min_size=3, max_size=12).map("\n\n".join)

    def check(text: str) -> None:
        chunks = chunk_text(text, cheap_count_tokens)
        assert_chunks(text, chunks, cheap_count_tokens)
        if words_fit(text, cheap_count_tokens):
            sizes = cheap_count_tokens([text[c.start : c.end] for c in chunks])
            assert max(sizes, default=0) <= CHUNKER.max_tokens, sizes

    run_property("long texts (cheap counter)", long_texts, examples // 4, check)


@pytest.mark.parametrize("examples", REAL_EXAMPLES)
def test_chunks_with_the_real_tokenizer(examples, encoder):
    def count(texts: Sequence[str]) -> list[int]:
        return encoder.count_tokens(texts)

    def check(text: str) -> None:
        chunks = chunk_text(text, count)
        assert_chunks(text, chunks, count)
        if words_fit(text, count):
            sizes = count([text[c.start : c.end] for c in chunks])
            assert max(sizes, default=0) <= CHUNKER.max_tokens, sizes

    long_texts = st.lists(news_like(), min_size=1, max_size=8).map("\n\n".join)
    run_property("chunks (real tokenizer)", long_texts, examples, check)


# A run of characters with no space that is over the limit by itself: the chunker
# can only cut at spaces, so the chunk passes max_tokens and the model (which
# truncates at 256) never sees its end. Chinese and Japanese text has no spaces,
# and the splitter does not end sentences at "。", so a whole paragraph is one word.
UNSPLITTABLE = {
    "chinese paragraph": "这是一个很长的中文句子。" * 40,
    "digits with dots": "Codes: " + "1.2." * 150,
    "punctuation run": "See " + "-/" * 200 + " now.",
}


@pytest.mark.parametrize("text", list(UNSPLITTABLE.values()), ids=list(UNSPLITTABLE))
def test_space_free_runs_over_the_limit_are_cut_too(text, encoder):
    chunks = chunk_text(text, encoder.count_tokens)
    sizes = encoder.count_tokens([text[c.start : c.end] for c in chunks])
    assert max(sizes) <= CHUNKER.max_tokens, sizes
