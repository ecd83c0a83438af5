"""Follow-up questions in the core: the real model over the real seed index."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answering import Answerer
from qa.conversation import name_spans
from qa.errors import InvalidInput
from qa.models import PriorTurn, QuoteRef
from qa.settings import Settings


@pytest.fixture(scope="module")
def answerer(seed_index) -> Answerer:
    return Answerer(Settings(index_dir=seed_index, answer_cache=0))


def converse(answerer: Answerer, *questions: str):
    """Ask the questions in a row, each with the answers before it as history."""
    history: list[PriorTurn] = []
    answers = []
    for q in questions:
        answer = answerer.ask(q, 3, history)
        answers.append(answer)
        history.append(PriorTurn.of(answer))
    return answers


def top(answer) -> str:
    assert answer.answered, answer
    return answer.quotes[0].text


def test_a_pronoun_follow_up_is_searched_with_the_previous_subject(answerer):
    first, follow = converse(answerer, "What is K-SPACE?", "When was it established?")
    assert first.standalone_question == "What is K-SPACE?"
    assert follow.question == "When was it established?"
    assert "K-SPACE" in follow.standalone_question
    assert "Dec. 5, 2022" in top(follow)


def test_the_same_follow_up_without_history_is_searched_as_typed(answerer):
    alone = answerer.ask("When was it established?")
    assert alone.standalone_question == "When was it established?"


def test_a_fragment_borrows_the_previous_question(answerer):
    _, follow = converse(answerer, "What is K-SPACE?", "And K-MELLODY?")
    assert follow.standalone_question == "What is K-MELLODY?"
    assert "AI-based drug development platform" in top(follow)


@pytest.fixture(scope="module")
def who_then_he(answerer):
    """The follow-up of a who-question, asked once for the two tests below."""
    return converse(
        answerer,
        "Who is the chairman of the Korea Pharmaceutical and Bio-Pharma Manufacturers Association?",
        "What does he want to establish?",
    )[-1]


def test_he_after_a_who_question_is_the_person_the_answer_named(who_then_he):
    assert "Noh Yun-hong" in who_then_he.standalone_question


def test_the_follow_up_about_him_quotes_his_goal(who_then_he):
    # The scorer fitted on SQuAD train ranks "Our goal is to establish pharmaceutical
    # sovereignty" below a sentence with "establishing itself" (see test_answering's
    # KNOWN_MISSES); the reader, reading two, puts it among the three quotes (the
    # reader of run 3 did not: a known miss until run 6, training/README.md).
    assert any("pharmaceutical sovereignty" in q.text for q in who_then_he.quotes)


def test_a_question_about_the_answer_is_searched_with_that_answer(answerer):
    first, follow = converse(
        answerer, "How many visitors came to Celltrion's booth?", "Who said that?"
    )
    assert "613" in top(first)
    assert follow.standalone_question.startswith("Who said that")
    # Searched with the answer's own rare words, so it stays with that passage.
    added = follow.standalone_question.removeprefix("Who said that").strip(" ()?")
    assert added and all(w.strip(",") in top(first) for w in added.split())
    assert follow.answered and "613" in top(follow)


def test_a_topic_switch_is_answered_exactly_as_alone(answerer):
    question = "How many visitors came to Celltrion's booth?"
    *_, switched = converse(answerer, "What is K-SPACE?", "When was it established?", question)
    alone = answerer.ask(question)
    assert switched.standalone_question == question
    assert switched.quotes == alone.quotes
    assert "613" in top(switched)


def test_history_quotes_are_read_from_the_index_not_trusted(answerer):
    first = answerer.ask("What is K-SPACE?")
    good = PriorTurn.of(first)
    forged = PriorTurn(
        question="What is K-SPACE?",
        quotes=(
            QuoteRef(article_id="no-such-article", start=0, end=10),
            QuoteRef(article_id=first.quotes[0].article.id, start=5, end=10**9),
            *good.quotes,
        ),
    )
    follow = answerer.ask("When was it established?", 3, [forged])
    assert "Dec. 5, 2022" in top(follow)
    # Only bad references: the subject still comes from the question.
    bad_only = PriorTurn(question=forged.question, quotes=forged.quotes[:2])
    assert "Dec. 5, 2022" in top(answerer.ask("When was it established?", 3, [bad_only]))


def test_hostile_history_questions_are_only_words(answerer):
    history = [PriorTurn(question="<script>alert(1)</script> What is K-SPACE?")]
    answer = answerer.ask("When was it established?", 3, history)
    assert answer.quotes and all("<script>" not in q.text for q in answer.quotes)


def test_more_than_twenty_earlier_turns_is_refused(answerer):
    history = [PriorTurn(question="What is K-SPACE?")] * 21
    with pytest.raises(InvalidInput, match="at most 20"):
        answerer.ask("When was it established?", 3, history)


def test_cached_answers_keep_follow_ups_apart(seed_index):
    cached = Answerer(Settings(index_dir=seed_index))
    alone = cached.ask("When was it established?")
    _, follow = converse(cached, "What is K-SPACE?", "When was it established?")
    again = cached.ask("When was it established?")
    assert follow.standalone_question != alone.standalone_question
    assert again.standalone_question == alone.standalone_question
    assert again.quotes == alone.quotes


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("What is K-SPACE?", ["K-SPACE"]),
        (
            "Who chairs the Korea Pharmaceutical and Bio-Pharma Manufacturers Association?",
            ["Korea Pharmaceutical and Bio-Pharma Manufacturers Association"],
        ),
        ("When did it open?", []),
        ("Where was BIO 2023 held?", ["BIO 2023"]),
    ],
)
def test_named_things_in_a_question(text, names):
    assert [text[s:e] for s, e in name_spans(text)] == names


# Words that steer the reader: pronouns, fragments' openers, names, numbers, symbols.
_WORDS = st.sampled_from(
    "it its he she they their this that there those what who when how many much and "
    "about K-SPACE Noh KPBMA Pfizer 2022 $411 the platform company said why ? ! . , "
    "'s <script> & é 東京 \u200b".split()
)
_TEXT = st.lists(_WORDS | st.text(max_size=12), max_size=14).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    question=_TEXT.filter(lambda q: q.strip()),
    earlier=st.lists(
        st.tuples(_TEXT, st.lists(st.tuples(st.integers(-5, 10**4), st.integers(-5, 10**4)))),
        max_size=4,
    ),
)
def test_any_question_with_any_history_gets_an_answer(answerer, question, earlier):
    """Whatever the turns hold (offsets out of range, symbols, empty questions), the
    reader never fails, and a topic it does not use leaves the question as asked."""
    article = answerer.snapshot().articles()[0].id
    history = [
        PriorTurn(
            question=q, quotes=tuple(QuoteRef(article_id=article, start=s, end=e) for s, e in spans)
        )
        for q, spans in earlier
    ]
    answer = answerer.ask(question, 3, history)
    assert answer.standalone_question.strip()
    assert answer.question == " ".join(question.split())
    if not answer.answered:
        assert answer.quotes == []
