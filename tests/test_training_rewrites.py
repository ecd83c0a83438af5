"""The rules that make on-topic questions without an answer for fitting the scorer
(training/perturb.py): each rewrite must ask something its paragraph does not say."""

import random

from training.perturb import antonym, name_swap, negation, number_swap, rewrite

PARAGRAPH = (
    "The first bridge over the river was built by Roman engineers in 1124. "
    "It was paid for by the Duke of Burgundy."
)
ARTICLE_NAMES = ["Duke of Burgundy", "Roman", "Lyon", "Count of Savoy"]


def test_an_antonym_is_one_the_paragraph_does_not_use():
    rng = random.Random(0)
    made = {antonym("When was the first bridge built?", PARAGRAPH, rng) for _ in range(20)}
    assert made == {"When was the last bridge built?", "When was the first bridge demolished?"}
    # "before" and "after" both appear: nothing to swap.
    assert antonym("What came before the war?", "Before and after the war.", rng) is None


def test_a_swapped_name_comes_from_the_article_and_is_absent_from_the_paragraph():
    rng = random.Random(0)
    made = name_swap("Who paid for the bridge, the Duke of Burgundy?", PARAGRAPH,
                     ARTICLE_NAMES, [], rng)  # fmt: skip
    assert made == "Who paid for the bridge, the Count of Savoy?"


def test_a_name_swap_is_dropped_when_another_paragraph_may_answer_it():
    rng = random.Random(0)
    other = "The Count of Savoy paid for the second bridge, which crossed the river at Lyon."
    made = name_swap("Who paid for the bridge, the Duke of Burgundy?", PARAGRAPH,
                     ["Count of Savoy"], [other], rng)  # fmt: skip
    assert made is None


def test_a_number_moves_to_one_the_article_never_mentions():
    for seed in range(20):
        made = number_swap("What was built in 1124?", PARAGRAPH, random.Random(seed))
        year = made.split()[-1].rstrip("?")
        assert year != "1124" and year not in PARAGRAPH


def test_negation_goes_after_the_copula_and_never_twice():
    assert negation("Who was the architect of the bridge?") == (
        "Who was not the architect of the bridge?"
    )
    assert negation("Who was not paid?") is None
    assert negation("When did the bridge open?") is None


def test_rewrite_returns_a_different_question_or_none():
    rng = random.Random(3)
    kind, text = rewrite("When was the first bridge built?", PARAGRAPH, ARTICLE_NAMES, [], rng)
    assert kind in {"antonym", "negation", "name", "number"}
    assert text != "When was the first bridge built?"
    assert rewrite("Why?", PARAGRAPH, [], [], rng) is None
