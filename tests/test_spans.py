"""A version's sentence spans and recent articles are served from memory; they
must say exactly what its SQLite rows say."""

from __future__ import annotations

import json

import pytest

import qa.store
from qa.answering import Answerer
from qa.indexer import index_paths, remove_articles
from qa.settings import Settings
from tests.conftest import store_at

from .conftest import SAMPLES, SEED_DIR, SHARED

SEED_QUESTIONS = [
    json.loads(line)["question"]
    for line in (SHARED / "eval/seed-questions.jsonl").read_text().splitlines()
    if line.strip()
]


@pytest.fixture
def gapped_index(index_dir):
    """Seed article and samples, then one sample removed: sentence ids have a gap."""
    store = store_at(index_dir)
    index_paths([SEED_DIR, SAMPLES], store)
    victim = next(a for a in store.open().articles() if "solar" in a.title.lower())
    assert remove_articles(store, [victim.id]) == [victim.id]
    return index_dir


@pytest.mark.directory_store
def test_sentences_of_chunks_from_memory_equal_the_sqlite_rows(gapped_index):
    snap = store_at(gapped_index).open()
    chunk_ids = [r[0] for r in snap._db.execute("SELECT id FROM chunks ORDER BY id")]
    assert snap.spans.consistent
    for n in (1, 3, 7):
        picked = [*chunk_ids[::n][:9], 10**9]  # and one id the version lacks
        assert snap.sentences_of_chunks(picked) == snap._sentences("chunk_id", picked)
    assert snap.sentences_of_chunks([]) == []


@pytest.mark.directory_store
def test_answers_are_the_same_from_memory_and_from_sqlite(gapped_index):
    """The in-memory path and the SQL path it replaced (still used should a
    version break the one-run-per-chunk rule) give the same quotes."""
    memory = Answerer(Settings(index_dir=gapped_index, answer_cache=0))
    sqlite = Answerer(Settings(index_dir=gapped_index, answer_cache=0))
    sqlite.snapshot().spans.consistent = False
    for q in SEED_QUESTIONS:
        a, b = memory.ask(q), sqlite.ask(q)
        assert (a.answered, a.quotes) == (b.answered, b.quotes), q


@pytest.mark.directory_store
def test_recent_articles_kept_in_memory_stay_within_their_bound(index_dir, monkeypatch):
    store = store_at(index_dir)
    index_paths([SEED_DIR, SAMPLES], store)
    snap = store.open()
    ids = [a.id for a in snap.articles()]
    expected = store.open().article_texts(ids)
    bound = max(len(text) for _, text in expected.values()) + 1
    monkeypatch.setattr(qa.store, "ARTICLE_CACHE_CHARS", bound)
    for _ in range(2):  # the second pass mixes kept and re-read articles
        for i in ids:
            assert snap.article_texts([i]) == {i: expected[i]}
            assert snap._cached_chars <= bound
    assert snap.article_texts([*ids, "no-such-id"]) == expected


@pytest.mark.directory_store
def test_spans_are_saved_with_the_version_and_mapped_when_it_opens(gapped_index):
    """Opening a version maps the span arrays written with it (no read of every
    sentence row); they equal what SQLite holds, and a version without them (one
    written before they were saved) is still read, from SQLite."""
    import shutil

    import numpy as np

    from qa.spans import SPANS_DIR, SentenceSpans

    snap = store_at(gapped_index).open()
    assert (snap.folder / SPANS_DIR / "ids.npy").exists()
    assert isinstance(snap.spans.starts, np.memmap)
    rows = SentenceSpans(snap._db)
    for name in ("ids", "chunks", "articles", "starts", "ends"):
        assert np.array_equal(getattr(snap.spans, name), getattr(rows, name)), name
    assert snap.spans.article_ids == rows.article_ids
    # Rows are read a block at a time; blocks of 7 rows give the same arrays.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("qa.spans._ROWS_PER_READ", 7)
        small = SentenceSpans(snap._db)
    for name in ("ids", "chunks", "articles", "starts", "ends", "_run_chunk", "_run_begin"):
        assert np.array_equal(getattr(small, name), getattr(rows, name)), name
    assert small.article_ids == rows.article_ids
    shutil.rmtree(snap.folder / SPANS_DIR)
    older = store_at(gapped_index).open()
    assert not isinstance(older.spans.starts, np.memmap)
    assert np.array_equal(older.spans.ends, rows.ends)
