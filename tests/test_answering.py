"""Answers over the real seed article with the real model and index."""

from __future__ import annotations

import json

import pytest

from qa.answering import Answerer
from qa.errors import IndexEmpty, InvalidInput
from qa.settings import Settings
from tests.conftest import store_at

from .conftest import SEED_QUESTIONS

QUESTIONS = [json.loads(line) for line in SEED_QUESTIONS.read_text().splitlines() if line.strip()]
# Seed questions the scorer gets wrong. "The most companies" is answered by
# "Korea had the second-largest number of companies ... after the U.S.", which
# takes comparative reasoning. Strict: the day one passes, its marker must go
# (as "What does the KPBMA want to establish?"'s did with the twelfth reader).
KNOWN_MISSES = {
    "Which country had the most companies at the convention?": "needs comparative reasoning",
}
ANSWERABLE = [
    pytest.param(q, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[q["question"]]))
    if q["question"] in KNOWN_MISSES
    else q
    for q in QUESTIONS
    if q["answers"]
]
UNANSWERABLE = [q for q in QUESTIONS if not q["answers"]]


@pytest.fixture(scope="module")
def answerer(seed_index):
    return Answerer(Settings(index_dir=seed_index))


@pytest.mark.parametrize("item", ANSWERABLE, ids=[q["question"] for q in QUESTIONS if q["answers"]])
def test_top_quote_contains_a_gold_answer(answerer, item):
    answer = answerer.ask(item["question"])
    assert answer.answered, answer
    assert any(gold in answer.quotes[0].text for gold in item["answers"]), answer.quotes[0].text


@pytest.mark.parametrize("item", UNANSWERABLE, ids=[q["question"] for q in UNANSWERABLE])
def test_questions_the_article_does_not_cover_are_not_answered(answerer, item):
    answer = answerer.ask(item["question"])
    assert not answer.answered
    assert answer.quotes == []
    assert "do not" in answer.answer


def test_every_quote_is_verbatim_article_text_at_its_offsets(answerer, seed_index):
    snap = store_at(seed_index).open()
    checked = answered = 0
    for item in QUESTIONS:
        answer = answerer.ask(item["question"], k=5)
        answered += answer.answered
        for quote in answer.quotes:
            text = snap.article(quote.article.id).text
            assert text[quote.start : quote.end] == quote.text
            checked += 1
    assert answered >= len(ANSWERABLE) - len(KNOWN_MISSES)
    assert checked == 5 * answered


def test_quotes_are_best_first_distinct_and_at_most_k(answerer):
    answer = answerer.ask("What is K-SPACE?", k=4)
    scores = [q.score for q in answer.quotes]
    assert scores == sorted(scores, reverse=True)
    assert len(answer.quotes) <= 4
    assert len({q.text for q in answer.quotes}) == len(answer.quotes)
    assert answer.answer.endswith("[1]") and answer.quotes[0].text in answer.answer


def test_scores_separate_answers_from_non_answers(answerer):
    # The comparative one is left out: the article never says "the U.S. had the
    # most", and the scorer now calls it "not found" rather than quote a guess.
    questions = [q["question"] for q in QUESTIONS if q["answers"]]
    answered = [q for q in questions if answerer.ask(q).answered]
    assert set(questions) - set(answered) <= {
        "Which country had the most companies at the convention?"
    }


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(answerer, question):
    with pytest.raises(InvalidInput, match="empty"):
        answerer.ask(question)


@pytest.mark.parametrize("question", ["What is it?", "Why?", '\u0088\u00ec"', "?!"])
def test_a_question_with_no_searchable_words_gets_an_answer_not_an_error(answerer, question):
    """Stop words, punctuation and stray symbols only: no term to match, so only
    the dense side speaks, and nothing it finds is convincing."""
    answer = answerer.ask(question)
    assert not answer.answered and answer.quotes == []


def test_overlong_question_and_bad_k_are_refused(answerer):
    with pytest.raises(InvalidInput, match="limit"):
        answerer.ask("why " * 400)
    with pytest.raises(InvalidInput, match="k must be"):
        answerer.ask("What is K-SPACE?", k=0)


def test_empty_index_says_how_to_add_articles(index_dir):
    from qa.indexer import index_paths, remove_articles

    from .conftest import SEED_DIR

    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    remove_articles(store, [a.id for a in store.open().articles()])
    with pytest.raises(IndexEmpty, match="qa index"):
        Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
