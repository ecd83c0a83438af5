"""The trained reader, shipped as package data: it loads from the installed
package, reads the seed article's candidates, and its highlight is article text."""

from __future__ import annotations

import json

import pytest

from qa.answering import Answerer
from qa.evaluation import EvalQuestion, contains_answer, evaluate, word_f1
from qa.reader import MODEL_DIR, MODEL_FILE, Reader
from qa.settings import Settings
from tests.conftest import store_at

from .conftest import SEED_QUESTIONS

QUESTIONS = [json.loads(line) for line in SEED_QUESTIONS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


@pytest.fixture(scope="module")
def answerer(seed_index):
    return Answerer(Settings(index_dir=seed_index))


def test_the_model_ships_as_int8_onnx_within_25_mb():
    path = MODEL_DIR / MODEL_FILE
    assert path.is_file()
    assert path.stat().st_size <= 25 * 1024 * 1024


def test_reader_prefers_the_sentence_that_answers(reader):
    question = "When was the K-Space Platform established?"
    sentences = [
        "The K-Space Platform aims to create a new drug development ecosystem.",
        "The K-Space Platform was established on Dec. 5, 2022, by the association.",
        "Korea had the second-largest number of companies at the convention.",
    ]
    readings = reader.read(question, sentences, ["", "", ""])
    assert max(range(3), key=lambda i: readings[i].logit) == 1
    a, b = readings[1].span
    assert "2022" in sentences[1][a:b]
    assert len(sentences[1][a:b].split()) <= 6


def test_the_sentence_before_says_what_its_refers_to(reader):
    # News prose names its subject once, then says "its keeper": the reader reads
    # the opening of the sentence before, so this sentence answers about the
    # lighthouse named there and not about another one.
    question = "What colour did the keeper paint the Quillmarsh lighthouse?"
    sentence = (
        "In 1911 its keeper, Edda Thornquist, painted the whole tower vermilion so that "
        "fishing boats could find it in the sea fog."
    )
    (named,) = reader.read(
        question, [sentence], ["The Quillmarsh lighthouse stands on a shingle bank by the harbour."]
    )
    (other,) = reader.read(
        question, [sentence], ["The Ardcorran lighthouse stands on a shingle bank by the harbour."]
    )
    assert named.logit > other.logit + 1.0, (named.logit, other.logit)


def test_answers_carry_highlights_inside_their_quotes(answerer, seed_index):
    snap = store_at(seed_index).open()
    highlighted = 0
    for item in QUESTIONS:
        for quote in answerer.ask(item["question"], k=3).quotes:
            if quote.highlight is None:
                continue
            highlighted += 1
            h = quote.highlight
            assert quote.start <= h.start < h.end <= quote.end
            text = snap.article(quote.article.id).text
            assert text[h.start : h.end] == quote.highlighted
            assert quote.highlighted == quote.highlighted.strip()
    assert highlighted >= 5


def test_the_answer_leads_with_the_words_that_answer(answerer):
    answer = answerer.ask("When was K-SPACE established?")
    assert answer.answered
    top = answer.quotes[0]
    assert "Dec. 5, 2022" in top.text
    assert top.highlighted and "2022" in top.highlighted
    assert answer.answer.startswith(top.highlighted + " — ")
    assert answer.answer.endswith(top.text + " [1]")


def test_without_the_reader_answers_have_no_highlight(seed_index):
    plain = Answerer(Settings(index_dir=seed_index, reader=False))
    answer = plain.ask("When was K-SPACE established?")
    assert answer.answered
    assert all(q.highlight is None for q in answer.quotes)
    assert answer.answer == answer.quotes[0].text + " [1]"


def test_sentence_answers_match_by_word_f1():
    gold = (
        "The black-and-white series originally ran from October 15, 1951, to May 6, 1957, on CBS."
    )
    assert contains_answer(
        "It originally ran from October 15, 1951, to May 6, 1957, on CBS.", (gold,)
    )
    assert not contains_answer("The show starred Lucille Ball and Desi Arnaz.", (gold,))
    assert word_f1("Dec. 5, 2022", "Dec. 5, 2022") == 1.0
    assert word_f1("on Dec. 5", "Dec. 5, 2022") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))


def test_eval_splits_refusal_on_and_off_topic(answerer, seed_index):
    snap = store_at(seed_index).open()
    title = snap.articles()[0].title
    questions = [
        EvalQuestion("When was K-SPACE established?", ("Dec. 5, 2022",), title),
        EvalQuestion("What is the capital of Australia?", (), title),  # on topic, no answer
        EvalQuestion("When was K-SPACE established?", ("Dec. 5, 2022",), "Some other article"),
    ]
    report = evaluate(answerer, questions)
    assert report.answerable == 1 and report.unanswerable == 2
    assert report.top1_accuracy == 1.0
    assert report.refusal_on_topic == 1.0
    assert report.refusal_off_topic == 0.0  # answered, though its article is not indexed
    assert report.highlight_f1 is not None
