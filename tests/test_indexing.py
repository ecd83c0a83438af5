"""Indexing keeps the index whole: idempotent, edits replace, removals remove, bad files skip."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from qa.answering import Answerer
from qa.errors import IndexCorrupt, IndexIncompatible, IndexMissing
from qa.indexer import index_paths, remove_articles
from qa.settings import Settings
from qa.terms import terms
from tests.conftest import store_at

from .conftest import SAMPLES, SEED_DIR


def counts(index_dir):
    snap = store_at(index_dir).open()
    return snap.n_articles, snap.n_chunks, snap.n_sentences


def test_indexing_the_same_folder_twice_changes_nothing(index_dir):
    store = store_at(index_dir)
    first = index_paths([SAMPLES], store)
    version = store.current_version()
    before = counts(index_dir)
    second = index_paths([SAMPLES], store)
    assert first.added == 6 and first.chunks > 0
    assert (second.added, second.updated, second.unchanged) == (0, 0, 6)
    assert counts(index_dir) == before
    assert store.current_version() == version  # nothing to publish


def test_a_copy_of_an_article_elsewhere_is_not_duplicated(index_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(SEED_DIR, copy)
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    report = index_paths([copy], store)
    assert report.duplicates == 1 and counts(index_dir)[0] == 1


def test_edited_article_replaces_its_old_chunks(index_dir, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    article = folder / "harbour.txt"
    article.write_text(
        "Harbour news\n\nThe new ferry is called the Silver Gull. It carries 80 cars.\n"
    )
    store = store_at(index_dir)
    index_paths([folder], store)
    answerer = Answerer(Settings(index_dir=index_dir))
    assert "Silver Gull" in answerer.ask("What is the new ferry called?").quotes[0].text

    article.write_text(
        "Harbour news\n\nThe new ferry is called the Blue Heron. It carries 95 cars.\n"
    )
    report = index_paths([folder], store)
    assert (report.added, report.updated) == (0, 1)
    assert counts(index_dir)[0] == 1
    answer = answerer.ask("What is the new ferry called?", k=5)
    assert "Blue Heron" in answer.quotes[0].text
    assert not any("Silver Gull" in q.text for q in answer.quotes)


def test_removing_an_article_removes_its_chunks(index_dir):
    store = store_at(index_dir)
    index_paths([SAMPLES], store)
    n_articles, n_chunks, _ = counts(index_dir)
    target = next(a for a in store.open().articles() if "BIO 2023" in a.title)
    assert remove_articles(store, [target.id, "no-such-id"]) == [target.id]
    assert counts(index_dir)[:2] == (n_articles - 1, n_chunks - target.chunks)
    answer = Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    assert all(q.article.id != target.id for q in answer.quotes)


def test_unreadable_files_are_reported_and_the_rest_indexed(index_dir, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(SAMPLES, folder)
    (folder / "empty.txt").write_text("  \n")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (folder / "broken.json").write_text('{"title": "x", "text": ')
    report = index_paths([folder], store_at(index_dir))
    assert report.added == 6 and report.skipped == 3
    assert len(report.problems) == 3
    assert all(str(folder) in p for p in report.problems)


def test_html_script_and_hidden_text_are_never_indexed(index_dir, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Zebra crossing report</title>"
        "<script>var secret = 'quokkaplasm marker in script';</script></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        "<article><h1>Zebra crossing report</h1>"
        "<p>The council painted a new zebra crossing on Mill Lane in April.</p>"
        "<p>Residents had asked for the crossing for three years.</p>"
        "<div hidden>quokkaplasm hidden marker sentence.</div>"
        "<p style='display:none'>quokkaplasm invisible marker sentence.</p>"
        "</article></body></html>"
    )
    index_paths([page], store_at(index_dir))
    snap = store_at(index_dir).open()
    (summary,) = snap.articles()
    assert summary.title == "Zebra crossing report"
    text = snap.article(summary.id).text
    assert "Mill Lane" in text and "quokkaplasm" not in text


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissing, match="qa index"):
        Answerer(Settings(index_dir=tmp_path / "nothing-here")).ask("What is K-SPACE?")


@pytest.mark.directory_store
@pytest.mark.parametrize("damage", ["manifest", "vectors", "sqlite", "foreign-model"])
def test_corrupt_or_foreign_index_is_a_clear_error(index_dir, damage):
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    version = store.versions_dir / store.current_version()
    if damage == "manifest":
        (version / "manifest.json").write_text("{not json")
    elif damage == "vectors":
        (version / "dense" / "chunks.npy").write_bytes(b"garbage" * 10)
    elif damage == "sqlite":
        (version / "store.sqlite").write_bytes(b"garbage" * 1000)
    else:
        manifest = json.loads((version / "manifest.json").read_text())
        manifest["model"] = "some-other-model"
        (version / "manifest.json").write_text(json.dumps(manifest))
    expected = IndexIncompatible if damage == "foreign-model" else IndexCorrupt
    with pytest.raises(expected):
        Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    # A writer refuses to build on a damaged version rather than losing it.
    with pytest.raises(expected):
        index_paths([SAMPLES], store)


def test_a_run_that_reads_nothing_creates_and_changes_nothing(index_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    store = store_at(index_dir)
    report = index_paths([bad], store)
    assert report.skipped == 1 and not store.exists()
    index_paths([SAMPLES], store)
    version = store.current_version()
    index_paths([bad], store)
    assert store.current_version() == version


@pytest.mark.directory_store
def test_an_index_from_another_qa_version_is_rebuilt_from_its_articles(index_dir):
    from qa.indexer import rebuild_index

    store = store_at(index_dir)
    index_paths([SAMPLES], store)
    before = sorted(a.id for a in store.open().articles())
    manifest_path = store.versions_dir / store.current_version() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["chunker"] = {**manifest["chunker"], "target_tokens": 64}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="--rebuild"):
        store.open()

    report = rebuild_index(store)
    assert report.updated == len(before)
    assert sorted(a.id for a in store.open().articles()) == before
    answer = Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    assert "Korea Superior Pharma-pipeline" in answer.quotes[0].text


@pytest.mark.directory_store
def test_damaged_bm25_postings_are_a_clear_error_and_the_next_write_rebuilds_them(index_dir):
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    version = store.versions_dir / store.current_version()
    (version / "lexical" / "data.csc.index.npy").write_bytes(b"garbage" * 100)
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    # The postings are derived from the SQLite rows, which are intact: a write
    # rebuilds them instead of refusing.
    index_paths([SAMPLES], store)
    answer = Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    assert answer.answered


@pytest.mark.directory_store
def test_bm25s_ranks_first_what_sqlite_fts5_ranks_first(index_dir):
    """bm25s replaced an FTS5 query (Lucene's IDF instead of FTS5's, so scores
    differ); the best chunk for a question must stay the same."""
    store = store_at(index_dir)
    index_paths([SEED_DIR, SAMPLES], store)
    snap = store.open()
    db = snap._db  # the version's own SQLite rows: FTS5's bm25 is the reference
    questions = [
        "What is K-SPACE?",
        "How many business meetings did the Korea Pavilion hold?",
        "Which companies signed contracts at the convention?",
        "What does the association want the government to do?",
    ]
    for q in questions:
        qterms = sorted(set(terms(q)))
        match = " OR ".join(f'"{t}"' for t in qterms)
        rows = db.execute(
            "SELECT rowid, -bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ? "
            "ORDER BY bm25(chunk_terms) LIMIT 10",
            (match,),
        ).fetchall()
        ours = [c for c, _ in snap.search_terms(qterms, 10)]
        theirs = [r[0] for r in rows]
        assert ours[0] == theirs[0], q
        assert len(set(ours[:5]) & set(theirs[:5])) >= min(4, len(theirs)), q


@pytest.mark.directory_store
def test_a_version_without_saved_postings_still_answers(index_dir):
    """Versions written before lexical/ existed build the BM25 index when opened."""
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    version = store.versions_dir / store.current_version()
    shutil.rmtree(version / "lexical")
    answer = Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    assert answer.answered and "k-space" in answer.quotes[0].text.lower()


def _stored_sentences(snap):
    """(sentence id, its text) for every sentence of a version."""
    texts = {a: t for a, t in snap._db.execute("SELECT id, text FROM articles")}
    rows = snap._db.execute('SELECT id, article_id, start, "end" FROM sentences ORDER BY id')
    return [(sid, texts[a][s:e]) for sid, a, s, e in rows]


@pytest.mark.directory_store
def test_each_sentence_s_stored_terms_are_its_analysed_words(index_dir):
    """Quote selection reads which question terms a sentence holds from the saved
    arrays instead of analysing its text: both must say the same."""
    store = store_at(index_dir)
    index_paths([SEED_DIR, SAMPLES], store)
    snap = store.open()
    sentences = _stored_sentences(snap)
    asked = sorted(set(terms("Which Korean companies signed contracts with Pfizer in Boston?")))
    has = snap.term_presence([sid for sid, _ in sentences], asked)
    expected = [[t in set(terms(text)) for t in asked] for _, text in sentences]
    assert has.tolist() == expected
    assert has.any(axis=0).all()  # every term is somewhere, so the check is not vacuous
    # A sentence id the version does not hold has no terms, rather than another's.
    assert not snap.term_presence([10**9], asked).any()


@pytest.mark.directory_store
def test_removing_an_article_removes_its_sentence_terms(index_dir):
    store = store_at(index_dir)
    index_paths([SEED_DIR, SAMPLES], store)
    target = next(a for a in store.open().articles() if "BIO 2023" in a.title)
    assert remove_articles(store, [target.id]) == [target.id]
    snap = store.open()
    n_terms = snap._db.execute("SELECT count(*) FROM sentence_terms").fetchone()[0]
    assert n_terms == snap.n_sentences == len(snap.lexical.sentence_ids)


@pytest.mark.directory_store
def test_a_version_written_before_sentence_terms_answers_alike_and_is_upgraded(index_dir):
    """An index written before sentences' terms were kept (no table, no arrays)
    analyses its sentences when opened, and the next write stores them."""
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    question = "How many official business meetings did the Korea Pavilion hold?"
    before = Answerer(Settings(index_dir=index_dir, answer_cache=0)).ask(question)
    version = store.versions_dir / store.current_version()
    for name in ("sentence_ids.npy", "sentence_indptr.npy", "sentence_terms.npy"):
        (version / "lexical" / name).unlink()
    db = sqlite3.connect(version / "store.sqlite")
    db.execute("DROP TABLE sentence_terms")
    db.commit()
    db.close()

    old = Answerer(Settings(index_dir=index_dir, answer_cache=0)).ask(question)
    assert old.quotes == before.quotes and "394" in old.quotes[0].text

    index_paths([SAMPLES], store)  # any write: the new version keeps the terms
    snap = store.open()
    n_terms = snap._db.execute("SELECT count(*) FROM sentence_terms").fetchone()[0]
    assert n_terms == snap.n_sentences
    assert (snap.folder / "lexical" / "sentence_terms.npy").is_file()
    assert (
        Answerer(Settings(index_dir=index_dir)).ask(question).quotes[0].text == old.quotes[0].text
    )


@pytest.mark.directory_store
def test_damaged_sentence_terms_are_a_clear_error_and_the_next_write_rebuilds_them(index_dir):
    store = store_at(index_dir)
    index_paths([SEED_DIR], store)
    version = store.versions_dir / store.current_version()
    (version / "lexical" / "sentence_indptr.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?")
    index_paths([SAMPLES], store)
    assert Answerer(Settings(index_dir=index_dir)).ask("What is K-SPACE?").answered
