"""The sentence splitter on the abbreviations news text is full of."""

from __future__ import annotations

import itertools

import pytest

from qa.sentences import split_sentences

from .conftest import SEED_FILE


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It opened on Dec. 5, 2022. It grew.", ["It opened on Dec. 5, 2022.", "It grew."]),
        (
            "Korea came second after the U.S. According to BIO, it grew.",
            ["Korea came second after the U.S.", "According to BIO, it grew."],
        ),
        ("U.S. officials agreed. Talks ended.", ["U.S. officials agreed.", "Talks ended."]),
        (
            "He spoke in Boston, Mass., on Thursday. Then he left.",
            ["He spoke in Boston, Mass., on Thursday.", "Then he left."],
        ),
        ("Mr. Noh met Dr. Lee. They talked.", ["Mr. Noh met Dr. Lee.", "They talked."]),
        (
            "Profits rose to $1.13bn. Sales fell 2.5%.",
            ["Profits rose to $1.13bn.", "Sales fell 2.5%."],
        ),
        (
            '"We won," he said. "Now we rest!" Really?',
            ['"We won," he said.', '"Now we rest!"', "Really?"],
        ),
        ("A heading\n\nBody text here.", ["A heading", "Body text here."]),
        ("John F. Kennedy spoke. Crowds cheered.", ["John F. Kennedy spoke.", "Crowds cheered."]),
    ],
)
def test_splits_where_a_reader_would(text, expected):
    assert sentences(text) == expected


def test_seed_article_sentence_about_k_space_is_whole():
    text = SEED_FILE.read_text()
    found = [s for s in sentences(text) if s.startswith("The K-Space Platform")]
    assert found == [
        "The K-Space Platform, established on Dec. 5, 2022, aims to create a new drug "
        "development ecosystem by promoting open innovation in the pharmaceutical and "
        "biotechnology industry."
    ]


def test_spans_slice_back_and_cover_all_text():
    text = SEED_FILE.read_text()
    spans = split_sentences(text)
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())
