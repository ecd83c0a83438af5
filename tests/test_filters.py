"""Filters (since, until, source, article) and recency, on real indexes of dated articles.

The filtered property test runs over BBC articles given dates and sources (a few
undated, a few without a source) plus the seed article; the recall test over 40
near-duplicate articles of 2020 and one weaker one of 2024; the recency tests over
two parallel articles whose dates are swapped between two indexes.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answering import Answerer
from qa.errors import InvalidInput
from qa.indexer import index_paths
from qa.models import Filters
from qa.recency import MARGIN, asks_for_latest, recency_bonus
from qa.retrieval import retrieve
from qa.settings import Settings
from qa.terms import terms
from tests.conftest import store_at

from .conftest import BBC_DIR, SEED_FILE

SEED_SOURCE = "Korea Biomedical Review"
CATEGORIES = ("business", "tech", "sport", "politics", "entertainment")
QUESTIONS = (
    "What is K-SPACE?",
    "How much profit did the company make?",
    "Who won the match?",
    "What did the minister say about the election?",
    "Which film won the award?",
    "What did the new phone cost?",
)


def build_index(root: Path, encoder_dir: Path, articles: list[dict]) -> Path:
    """`articles` as a JSON-lines file, indexed as `qa index` would."""
    src = root / "src"
    src.mkdir(parents=True)
    (src / "articles.jsonl").write_text("\n".join(json.dumps(a) for a in articles))
    index = root / "index"
    index.mkdir()
    shutil.copytree(encoder_dir, index / "encoder")
    report = index_paths([src], store_at(index))
    assert report.added == len(articles), report.problems
    return index


def _dated_articles() -> list[dict]:
    """20 BBC articles (4 a category) with dates from 2019 to 2025 and a source per
    category; every fifth undated, every seventh without a source; and the seed."""
    out = []
    for n in range(20):
        category = CATEGORIES[n % len(CATEGORIES)]
        path = sorted((BBC_DIR / category).glob("*.txt"))[n // len(CATEGORIES)]
        title, _, text = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        article = {"id": f"bbc-{category}-{n}", "title": title.strip(), "text": text.strip()}
        if n % 5 != 4:
            article["published"] = date(2019 + n % 7, 1 + n % 12, 1 + (3 * n) % 28).isoformat()
            if n % 3 == 0:  # a time, a time zone: only the day counts
                article["published"] += "T23:30:00-05:00"
        if n % 7 != 6:
            article["source"] = f"BBC {category.title()}"
        out.append(article)
    seed = SEED_FILE.read_text(encoding="utf-8")
    title, _, text = seed.partition("\n")
    out.append(
        {
            "id": "kbr-seed",
            "title": title.strip(),
            "text": text.strip(),
            "published": "2023-06-05",
            "source": SEED_SOURCE,
        }
    )
    return out


DATED = _dated_articles()
IDS = [a["id"] for a in DATED]
SOURCES = sorted({a["source"] for a in DATED if "source" in a})


def satisfies(article: dict, f: Filters) -> bool:
    """The filter's meaning, worked out apart from the store (the oracle)."""
    day = article.get("published", "")[:10]
    return (
        (f.since is None or (bool(day) and day >= f.since.isoformat()))
        and (f.until is None or (bool(day) and day <= f.until.isoformat()))
        and (f.source is None or article.get("source") == f.source)
        and (not f.article or article["id"] in f.article)
    )


@pytest.fixture(scope="module")
def dated_index(tmp_path_factory, encoder_dir) -> Path:
    return build_index(tmp_path_factory.mktemp("dated"), encoder_dir, DATED)


@pytest.fixture(scope="module")
def answerer(dated_index) -> Answerer:
    # min_score 0: every filter that matches an article gets quotes to check.
    return Answerer(Settings(index_dir=dated_index, min_score=0.0))


_days = st.one_of(st.none(), st.dates(date(2018, 6, 1), date(2026, 1, 1)))


@st.composite
def filters(draw) -> Filters:
    since, until = draw(_days), draw(_days)
    if since and until and since > until:
        since, until = until, since
    source = draw(st.one_of(st.none(), st.sampled_from([*SOURCES, "No Such Source"])))
    chosen = draw(st.one_of(st.just([]), st.lists(st.sampled_from(IDS), max_size=4)))
    if chosen and draw(st.booleans()):
        chosen.append("not-an-indexed-id")
    f = Filters(since=since, until=until, source=source, article=chosen)
    return f


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=filters(), question=st.sampled_from(QUESTIONS))
def test_every_quote_of_a_filtered_answer_satisfies_the_filter(answerer, f, question):
    answer = answerer.ask(question, 5, filters=f)
    allowed = {a["id"] for a in DATED if satisfies(a, f)}
    by_id = {a["id"]: a for a in DATED}
    snap = answerer.snapshot()
    for quote in answer.quotes:
        assert quote.article.id in allowed, (f, quote.article)
        assert snap.article(quote.article.id).text[quote.start : quote.end] == quote.text
        assert quote.article.published == by_id[quote.article.id].get("published")
    if f.active:
        # Something to quote whenever an article matches; a clear "nothing matches" if none.
        assert answer.answered == bool(allowed), (f, answer.answer)
        if not allowed:
            assert "No indexed article matches the filter" in answer.answer


def test_a_filter_narrows_an_answer_that_would_come_from_elsewhere(answerer):
    alone = answerer.ask("What is K-SPACE?", 3)
    assert alone.quotes[0].article.id == "kbr-seed"
    business = answerer.ask("What is K-SPACE?", 3, filters=Filters(source="BBC Business"))
    assert business.quotes and {q.article.id for q in business.quotes} <= {
        a["id"] for a in DATED if a.get("source") == "BBC Business"
    }


def test_date_filters_leave_out_undated_articles(answerer):
    undated = [a["id"] for a in DATED if "published" not in a]
    wide = Filters(since=date(1900, 1, 1), article=undated)
    answer = answerer.ask("Who won the match?", 3, filters=wide)
    assert not answer.answered and "published since 1900-01-01" in answer.answer
    # The same articles without the date filter are quoted.
    assert answerer.ask("Who won the match?", 3, filters=Filters(article=undated)).answered


def test_the_day_of_a_published_time_is_the_day_as_written(answerer):
    late = next(a for a in DATED if a.get("published", "").endswith("-05:00"))
    day = date.fromisoformat(late["published"][:10])
    only = Filters(since=day, until=day, article=[late["id"]])
    assert answerer.ask("What happened?", 1, filters=only).answered


def test_an_unfiltered_question_is_answered_as_before(answerer):
    none = answerer.ask("What is K-SPACE?", 3, filters=Filters())
    assert none == answerer.ask("What is K-SPACE?", 3).model_copy(update={"took_ms": none.took_ms})


def test_filtered_answers_are_cached_apart(answerer):
    seed = answerer.ask("What is K-SPACE?", 3, filters=Filters(source=SEED_SOURCE))
    other = answerer.ask("What is K-SPACE?", 3, filters=Filters(source="BBC Tech"))
    assert seed.quotes[0].article.id == "kbr-seed"
    assert all(q.article.id != "kbr-seed" for q in other.quotes)


def test_a_follow_up_keeps_to_the_filter(answerer):
    from qa.models import PriorTurn

    first = answerer.ask("What is K-SPACE?", 3)
    tech = Filters(source="BBC Tech")
    follow = answerer.ask("When was it established?", 3, [PriorTurn.of(first)], tech)
    assert follow.quotes and all(q.article.id.startswith("bbc-tech") for q in follow.quotes)


@pytest.mark.parametrize(
    "values, words",
    [
        ({"since": "2024-13-01"}, "since: must be an ISO date"),
        ({"until": "01/02/2024"}, "until: must be an ISO date"),
        ({"since": "2024-02-01", "until": "2024-01-01"}, "is after until"),
        ({"article": [""]}, "article: item 0 is not an article id"),
        ({"article": ["a"] * 101}, "at most 100"),
        ({"article": "one-id"}, "must be a list of article ids"),
        ({"source": "x" * 600}, "source: is 600 characters long"),
    ],
)
def test_bad_filters_are_one_clear_line(values, words):
    with pytest.raises(InvalidInput) as err:
        Filters.of(**values)
    assert words in err.value.message and "\n" not in err.value.message


def test_blank_fields_are_no_filter():
    assert Filters.of(since="", until=" ", source="", article=[]) is None


# -- recall within the filter -------------------------------------------------------------------
def _toll_articles() -> list[dict]:
    """40 near-duplicates of 2020 that answer squarely, and one of 2024 that answers in
    other words (a "charge", the bridge named loosely)."""
    out = [
        {
            "id": f"toll-2020-{n}",
            "title": f"Marlow Bridge toll rises (report {n})",
            "text": f"The toll on the Marlow Bridge will rise to {4 + n % 3} dollars from "
            f"March, the regional transport office said on day {n + 1}. Drivers who cross "
            "the Marlow Bridge toll gates every day can buy a monthly pass for the toll.",
            "published": f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}",
            "source": "Marlow Courier",
        }
        for n in range(40)
    ]
    out.append(
        {
            "id": "toll-2024",
            "title": "Driving across the river gets dearer",
            "text": "The charge on the old bridge at Marlow is now nine dollars each way, "
            "transport officials said this spring. Commuters complained about the queues.",
            "published": "2024-04-02",
            "source": "Marlow Courier",
        }
    )
    return out


@pytest.fixture(scope="module")
def toll_index(tmp_path_factory, encoder_dir) -> Path:
    return build_index(tmp_path_factory.mktemp("toll"), encoder_dir, _toll_articles())


def test_the_best_passage_within_the_filter_is_found_past_30_better_ones(toll_index):
    answerer = Answerer(Settings(index_dir=toll_index))
    question = "How much is the toll on the Marlow Bridge?"
    snap = answerer.snapshot()
    newer = snap.chunks_of_articles(["toll-2024"]).tolist()
    # Unfiltered, the 2024 article is not even among the candidate passages...
    everything = retrieve(snap, answerer.encoder.embed([question])[0], terms(question))
    assert len(everything.ranked) >= 30 and not set(newer) & set(everything.ranked)
    # ... and with since=2024 it is the answer.
    answer = answerer.ask(question, 3, filters=Filters(since=date(2024, 1, 1)))
    assert answer.answered, answer.answer
    assert answer.quotes[0].article.id == "toll-2024"
    assert "nine dollars" in answer.quotes[0].text


# -- recency ----------------------------------------------------------------------------------
def _chairman_articles(old: str, new: str) -> list[dict]:
    """Two articles that say the same thing of two people; `old`/`new` date them."""
    return [
        {
            "id": "okafor",
            "title": "Ridgeway Pharma names a chairman",
            "published": old,
            "text": "Ridgeway Pharma held its annual meeting in Busan on Tuesday.\n\n"
            "The chairman of Ridgeway Pharma is Daniel Okafor, the company said. "
            "He has led drug development there for years.\n\n"
            "Shares rose slightly after the meeting.",
        },
        {
            "id": "seo",
            "title": "Ridgeway Pharma board meets",
            "published": new,
            "text": "The board of Ridgeway Pharma met in Seoul this week to discuss its "
            "pipeline.\n\nThe chairman of Ridgeway Pharma is Mirae Seo, the company said. "
            "She has led its oncology unit for years.\n\n"
            "The company plans two new trials next year.",
        },
    ]


@pytest.fixture(scope="module")
def chairman_indexes(tmp_path_factory, encoder_dir) -> dict[str, Answerer]:
    """The same two articles twice: Okafor's older in one index, newer in the other."""
    out = {}
    for newest, (okafor, seo) in {
        "seo": ("2021-04-12", "2024-03-02"),
        "okafor": ("2024-03-02", "2021-04-12"),
    }.items():
        root = tmp_path_factory.mktemp(f"chair-{newest}")
        index = build_index(root, encoder_dir, _chairman_articles(okafor, seo))
        out[newest] = Answerer(Settings(index_dir=index))
    return out


@pytest.mark.parametrize("newest", ["seo", "okafor"])
def test_a_question_about_the_current_state_quotes_the_newest_article_first(
    chairman_indexes, newest
):
    answer = chairman_indexes[newest].ask("Who is the current chairman of Ridgeway Pharma?")
    assert answer.answered and answer.quotes[0].article.id == newest


def test_other_questions_do_not_depend_on_the_dates(chairman_indexes):
    tops = {
        newest: answerer.ask("Who is the chairman of Ridgeway Pharma?").quotes[0].text
        for newest, answerer in chairman_indexes.items()
    }
    assert tops["seo"] == tops["okafor"]


def test_a_clearly_better_older_quote_stays_first(chairman_indexes):
    # Okafor's article is the older here; only it speaks of Busan.
    answer = chairman_indexes["seo"].ask("What is the latest on the Ridgeway meeting in Busan?")
    assert answer.answered and answer.quotes[0].article.id == "okafor"
    assert "Busan" in answer.quotes[0].text


@pytest.mark.parametrize(
    "question, latest",
    [
        ("What is the latest on K-SPACE?", True),
        ("Who is the current chairman?", True),
        ("What is the most recent figure?", True),
        ("Who leads it now?", True),
        ("What happened this year?", True),
        ("Who is the chairman?", False),
        ("When was the company known as Ridgeway?", False),
        ("What is a nowcast?", False),
    ],
)
def test_questions_about_the_latest_state_are_told_by_their_words(question, latest):
    assert asks_for_latest(question) is latest


def test_the_recency_bonus_is_bounded_and_follows_the_dates(chairman_indexes):
    answerer = chairman_indexes["seo"]
    ranked, _ = answerer.analyse("Who is the current chairman of Ridgeway Pharma?")
    bonus = recency_bonus(ranked)
    assert bonus is not None and bonus.min() == 0.0 and bonus.max() == MARGIN
    for c, b in zip(ranked, bonus, strict=True):
        assert b == (MARGIN if c.article.id == "seo" else 0.0)
