"""The store boundary and the Milvus store, on Milvus Lite (the real engine, in-process).

The seed article and the sample articles are indexed by the real indexer into
both an index directory and a Milvus Lite file; what answering reads must come
out the same from both. Milvus Lite lets one process open a file at a time, so
the killed-writer test runs its writer in a subprocess on a file of its own.
"""

from __future__ import annotations

import inspect
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qa.errors import InvalidInput
from qa.indexer import index_paths, remove_articles
from qa.store import ChunkRecord, IndexStore, Snapshot, StoredArticle, Writer
from qa.stores import ReadView, Store, WriteSession, parse_store_uri
from qa.stores.milvus import LIVE, MilvusStore, MilvusWriteSession
from qa.stores.sparse_bm25 import bm25_weights
from qa.terms import terms
from tests.conftest import PROJECT, SAMPLES, SEED_DIR

QUESTIONS = [
    "What is K-SPACE?",
    "Which companies joined the Korea pavilion at BIO 2023?",
    "Who organised the river cleanup?",
    "How much power does the library's solar roof produce?",
    "When was it launched?",
    "volunteers collected bags of rubbish",
]


# Indexing the seed and samples into both stores takes about 90 s on two busy
# cores: the tests comparing them are marked slow; the rest use `lite` below.
@pytest.fixture(scope="module")
def stores(tmp_path_factory, encoder_dir):
    """The seed and sample articles in an index directory and in Milvus Lite."""
    root = tmp_path_factory.mktemp("stores")
    folder = root / "index"
    folder.mkdir()
    shutil.copytree(encoder_dir, folder / "encoder")
    index_paths([SEED_DIR, SAMPLES], IndexStore(folder))
    milvus = MilvusStore(f"milvus://{root}/milvus.db", encoder_dir=encoder_dir)
    report = index_paths([SEED_DIR, SAMPLES], milvus)
    assert report.added == 7
    snap = IndexStore(folder).open()
    yield snap, milvus
    snap.close()
    milvus.close()


def _protocol_methods(proto) -> list[str]:
    return [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]


@pytest.mark.parametrize(
    ("proto", "cls"), [(ReadView, Snapshot), (WriteSession, Writer), (Store, IndexStore)]
)
def test_the_directory_store_has_the_boundarys_methods(proto, cls):
    """Each protocol method exists on the directory store, and every parameter
    the directory's method takes is one the protocol passes, by name. (The
    protocol's optional `among` arrives in the directory store with filters.)"""
    for name in _protocol_methods(proto):
        assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
        theirs = inspect.signature(getattr(cls, name)).parameters
        ours = inspect.signature(getattr(proto, name)).parameters
        assert set(theirs) <= set(ours), (name, list(theirs), list(ours))


@pytest.mark.directory_store
def test_both_stores_conform_at_runtime(lite, seed_index):
    milvus = lite
    assert isinstance(IndexStore(seed_index).open(), ReadView)
    assert isinstance(milvus.open(), ReadView)
    assert isinstance(IndexStore(seed_index), Store)
    assert isinstance(milvus, Store)
    with IndexStore(seed_index).writer() as writer:
        assert isinstance(writer, WriteSession)  # changes nothing: nothing published
    with milvus.writer() as session:
        assert isinstance(session, WriteSession)
    assert not isinstance(object(), ReadView)


@pytest.mark.parametrize(
    ("uri", "kind", "address", "prefix"),
    [
        ("milvus://localhost:19530", "server", "http://localhost:19530", "qa"),
        ("milvus://milvus.internal", "server", "http://milvus.internal:19530", "qa"),
        ("milvus://10.0.0.5:1234?prefix=news_2024", "server", "http://10.0.0.5:1234", "news_2024"),
        ("milvus://[::1]:19530", "server", "http://[::1]:19530", "qa"),
        ("milvus:///var/lib/qa/index.db", "lite", "/var/lib/qa/index.db", "qa"),
        ("milvus:///tmp/x.db?prefix=_t", "lite", "/tmp/x.db", "_t"),
    ],
)
def test_store_uris_name_a_server_or_a_lite_file(uri, kind, address, prefix):
    parsed = parse_store_uri(uri)
    assert (parsed.kind, parsed.address, parsed.prefix) == (kind, address, prefix)
    assert parsed.collection("chunks") == f"{prefix}_chunks"


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "index",
        "/var/lib/qa/index.db",
        "http://localhost:19530",
        "milvus://",
        "milvus://host:port",
        "milvus://host:19530/db",
        "milvus://user:secret@host:19530",
        "milvus://relative/file.db",
        "milvus:///var/lib/qa/index.sqlite",
        "milvus:///var/lib/../qa.db",
        "milvus:///tmp/x.db?prefix=1abc",
        "milvus:///tmp/x.db?prefix=a-b",
        "milvus:///tmp/x.db?collection=x",
        "milvus:///tmp/x.db#frag",
    ],
)
def test_a_bad_store_uri_says_what_is_accepted(uri):
    with pytest.raises(InvalidInput) as caught:
        parse_store_uri(uri)
    message = caught.value.message
    assert "milvus://HOST:PORT" in message and "milvus:///ABSOLUTE/PATH.db" in message
    assert "\n" not in message


@pytest.mark.directory_store
def test_sparse_weights_score_exactly_as_the_embedded_bm25(seed_index):
    """The weights computed for Milvus, summed over a query's terms, are the
    embedded index's BM25 scores for every chunk, not only the top ones."""
    snap = IndexStore(seed_index).open()
    rows = snap._db.execute("SELECT rowid, terms FROM chunk_terms").fetchall()
    sparse = bm25_weights(rows)
    assert sparse.n_chunks == snap.n_chunks
    checked = 0
    for q in QUESTIONS:
        qt = sorted({t for t in terms(q) if t in sparse.term_ids})
        want_ids, want = snap.best_by_terms(qt, snap.n_chunks)
        ids = [t for t in (sparse.term_ids[t] for t in qt)]
        got = {c: sum(w.get(i, 0.0) for i in ids) for c, w in sparse.weights.items()}
        if not want.size:  # a question about the samples, over the seed alone
            assert not qt or all(s == 0 for s in got.values())
            continue
        np.testing.assert_allclose([got[c] for c in want_ids.tolist()], want, atol=1e-4)
        checked += 1
        assert sum(1 for s in got.values() if s > 0) == len(want_ids)
        assert sparse.doc_freqs.keys() >= set(qt)
        assert {t: sparse.doc_freqs[t] for t in qt} == snap.doc_freqs(qt)
    assert checked >= 3


@pytest.mark.slow
def test_milvus_searches_agree_with_the_directory_store(stores, encoder):
    snap, milvus = stores
    view = milvus.open()
    assert (view.n_articles, view.n_chunks, view.n_sentences) == (
        snap.n_articles,
        snap.n_chunks,
        snap.n_sentences,
    )
    for q in QUESTIONS:
        qvec = encoder.embed([q])[0]
        want_ids, want_cos = snap.nearest_chunks(qvec, 10)
        ids, cos = view.nearest_chunks(qvec, 10)
        assert ids.tolist() == want_ids.tolist(), q
        np.testing.assert_allclose(cos, want_cos, atol=1e-5)
        qt = terms(q)
        want_ids, want = snap.best_by_terms(qt, 10)
        ids, got = view.best_by_terms(qt, 10)
        assert ids.tolist() == want_ids.tolist(), q
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert view.doc_freqs(qt) == snap.doc_freqs(qt)


@pytest.mark.slow
def test_milvus_spans_vectors_and_texts_are_the_directory_stores(stores):
    snap, milvus = stores
    view = milvus.open()
    chunk_ids = list(range(1, snap.n_chunks + 1))
    sentence_ids = list(range(1, snap.n_sentences + 1))
    assert view.chunks_by_id(chunk_ids[::-1]) == snap.chunks_by_id(chunk_ids[::-1])
    assert view.sentences_of_chunks(chunk_ids) == snap.sentences_of_chunks(chunk_ids)
    for kept in ([1, 2, 5], [snap.n_chunks], [3, 17, 30]):
        a, b = view.sentences_around_chunks(kept), snap.sentences_around_chunks(kept)
        for field in ("ids", "chunks", "starts", "ends"):
            assert getattr(a, field).tolist() == getattr(b, field).tolist()
        assert [a.article_names[c] for c in a.article_codes] == [
            b.article_names[c] for c in b.article_codes
        ]
    np.testing.assert_allclose(
        view.sentence_vectors(sentence_ids), snap.sentence_vectors(sentence_ids), atol=1e-6
    )
    np.testing.assert_allclose(
        view.chunk_vectors(chunk_ids[::-1]), snap.chunk_vectors(chunk_ids[::-1]), atol=1e-6
    )
    qt = sorted(set(terms(" ".join(QUESTIONS))))
    assert (view.term_presence(sentence_ids, qt) == snap.term_presence(sentence_ids, qt)).all()
    assert view.term_counts(sentence_ids).tolist() == snap.term_counts(sentence_ids).tolist()
    assert view.articles() == snap.articles()
    ids = [a.id for a in snap.articles()]
    assert view.article_texts(ids) == snap.article_texts(ids)
    for i in ids:
        assert view.article(i) == snap.article(i)
        assert view.chunks_of_articles([i]).tolist() == snap.chunks_of_articles([i]).tolist()


@pytest.mark.slow
def test_searches_keep_to_the_allowed_chunks(stores, encoder):
    snap, milvus = stores
    view = milvus.open()
    sample = next(a.id for a in snap.articles() if "river" in a.title.lower())
    among = snap.chunks_of_articles([sample])
    assert len(among) >= 1
    for q in QUESTIONS:
        qvec = encoder.embed([q])[0]
        ids, cos = view.nearest_chunks(qvec, 5, among)
        # The directory store's full ranking, cut to the allowed chunks.
        all_ids, all_cos = snap.nearest_chunks(qvec, snap.n_chunks)
        keep = np.isin(all_ids, among)
        assert ids.tolist() == all_ids[keep][:5].tolist()
        np.testing.assert_allclose(cos, all_cos[keep][:5], atol=1e-5)
        ids, _ = view.best_by_terms(terms(q), 5, among)
        all_ids, _ = snap.best_by_terms(terms(q), snap.n_chunks)
        assert ids.tolist() == all_ids[np.isin(all_ids, among)][:5].tolist()
    assert view.nearest_chunks(encoder.embed(["x"])[0], 5, np.zeros(0, np.int64))[0].size == 0


def _row_counts(store: MilvusStore, article_id: str | None = None) -> dict[str, int]:
    from qa.stores.milvus import article_key

    where = f"article_key == {article_key(article_id)}" if article_id else "born >= 0"
    return {c: store.db.count(c, where) for c in ("articles", "chunks", "sentences")}


def test_writing_the_same_articles_again_changes_nothing(lite):
    milvus = lite
    version, counts = milvus.current_version(), _row_counts(milvus)
    report = index_paths([SAMPLES], milvus)
    assert (report.added, report.updated, report.unchanged) == (0, 0, _n_samples())
    assert milvus.current_version() == version
    assert _row_counts(milvus) == counts


@pytest.fixture
def lite(tmp_path, encoder_dir):
    """A Milvus Lite store of its own holding the sample articles."""
    store = MilvusStore(f"milvus://{tmp_path}/own.db?prefix=own", encoder_dir=encoder_dir)
    index_paths([SAMPLES], store)
    yield store
    store.close()


def test_a_second_process_is_refused_a_lite_file_in_use_and_changes_nothing(lite, tmp_path):
    """Milvus Lite runs one engine per file. A second process used to get a
    second engine on it after milvus-lite deleted the lock file of the first
    (its failed open cleans up as if it were its own): `qa articles rm` from a
    terminal "succeeded" while this process, a server, kept quoting the
    article. Now it is refused in one line, and nothing changes."""
    uri = lite.uri.shown
    view = lite.open()
    victim = view.articles()[0].id
    lock = Path(lite.uri.address).parent / f".{Path(lite.uri.address).name}.lock"
    for _ in range(2):  # a second try must not find the lock file gone
        run = subprocess.run(
            [sys.executable, "-m", "qa", "articles", "rm", victim, "--store", uri],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "QA_INDEX_DIR": str(tmp_path / "local")},
        )
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1, run.stderr
        assert "another process has this Milvus Lite file open" in run.stderr
        assert lock.exists()
    assert victim in {a.id for a in lite.open().articles()}
    assert remove_articles(lite, [victim]) == [victim]  # the holder itself still writes


def test_removing_an_article_removes_all_its_rows(lite):
    view = lite.open()
    gone = view.articles()[0]
    assert _row_counts(lite, gone.id)["chunks"] == gone.chunks > 0
    assert remove_articles(lite, [gone.id]) == [gone.id]
    after = lite.open()
    assert gone.id not in {a.id for a in after.articles()}
    assert after.n_chunks == view.n_chunks - gone.chunks
    assert not after.chunks_of_articles([gone.id]).size
    assert not after.article_texts([gone.id])
    # The version before still reads it (as in the index directory) ...
    assert view.article(gone.id).id == gone.id
    # ... until the next publish prunes what neither live version can see.
    remove_articles(lite, [after.articles()[0].id])
    assert _row_counts(lite, gone.id) == {"articles": 0, "chunks": 0, "sentences": 0}
    assert remove_articles(lite, [gone.id]) == []


def test_readers_always_find_a_version_while_versions_are_published(lite):
    """Publishing used to upsert one "current" row, which Milvus does as a delete
    then an insert: a reader in between found no index (`index_missing` to 1 of
    801 answers during a feed refresh on a Milvus server). Now each publish adds
    a pointer row and prunes the older ones after."""
    import threading

    articles = [a.id for a in lite.open().articles()]
    seen: list[str | None] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(lite.current_version())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for article_id in articles[:3]:  # three publishes
            remove_articles(lite, [article_id])
    finally:
        done.set()
        reader.join()
    assert len(seen) > 10 and None not in seen
    pointers = lite.db.query("state", "version < 0", ["key", "version"])
    assert [p["key"] for p in pointers] == [f"current:{-pointers[0]['version']}"]
    assert lite.current_version() == f"v{-pointers[0]['version']:06d}"


def test_a_store_published_with_the_old_current_row_still_opens(lite):
    """Stores written before the pointer rows have one upserted "current" row
    (version N): they open as they are, and their next publish replaces it."""
    live = lite.current_version()
    n = int(live[1:])
    lite.db.delete("state", "version < 0")
    lite.db.upsert("state", [{"key": "current", "version": n, "info": "", "nothing": [0.0, 0.0]}])
    assert lite.current_version() == live and lite.open().n_articles == 6
    remove_articles(lite, [lite.open().articles()[0].id])
    assert lite.open().n_articles == 5
    assert not lite.db.query("state", 'key == "current"', ["version"])


def test_an_abandoned_write_leaves_the_previous_version_whole(lite):
    before = lite.open()
    titles = [a.title for a in before.articles()]
    counts = _row_counts(lite)
    victim = before.articles()[0].id
    with pytest.raises(RuntimeError), lite.writer() as session:
        assert session.remove(victim)
        session.put(*_copy_of(before, victim, "a-new-id"))
        raise RuntimeError("the indexer failed half way")
    assert lite.current_version() == before.version
    view = lite.open()
    assert [a.title for a in view.articles()] == titles
    assert _row_counts(lite) == counts  # the new rows deleted, the died marks undone
    assert view.article(victim).id == victim
    assert lite.db.count("chunks", f"died != {LIVE}") == 0


@pytest.mark.directory_store
@pytest.mark.parametrize("kind", ["directory", "milvus lite"])
def test_vectors_that_do_not_match_the_chunks_are_refused_before_anything_is_written(
    kind, lite, seed_index, tmp_path
):
    """One sentence vector short: `put` refuses in either store, and the write
    session publishes nothing (the article is not half stored)."""
    if kind == "directory":
        shutil.copytree(seed_index, tmp_path / "dir")
        store = IndexStore(tmp_path / "dir")
    else:
        store = lite
    before = store.open()
    victim = before.articles()[0].id
    article, chunks, chunk_vectors, sentence_vectors = _copy_of(before, victim, "a-new-id")
    with pytest.raises(ValueError, match="vector counts"), store.writer() as session:
        session.put(article, chunks, chunk_vectors, sentence_vectors[:-1])
    after = store.open()
    assert after.version == before.version
    assert [a.id for a in after.articles()] == [a.id for a in before.articles()]


def _copy_of(view: ReadView, article_id: str, new_id: str):
    """An article as stored, under another id, with its stored chunks and vectors."""
    ref, text = view.article_texts([article_id])[article_id]
    copy = StoredArticle(id=new_id, title=ref.title, text=text, content_hash="f" * 64)
    chunk_ids = view.chunks_of_articles([article_id]).tolist()
    chunks, sentence_ids = [], []
    for c in view.chunks_by_id(chunk_ids):
        sents = view.sentences_of_chunks([c.id])
        sentence_ids += [s.id for s in sents]
        chunks.append(
            ChunkRecord(
                c.start,
                c.end,
                " ".join(terms(text[c.start : c.end])),
                tuple((s.start, s.end) for s in sents),
                tuple(" ".join(terms(text[s.start : s.end])) for s in sents),
            )
        )
    return copy, chunks, view.chunk_vectors(chunk_ids), view.sentence_vectors(sentence_ids)


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from qa.indexer import index_paths, stored_article, chunk_records, _Batch, ensure_encoder
    from qa.readers import read_file
    from qa.stores.milvus import MilvusStore

    uri, encoder_dir, samples, seed = sys.argv[1:]
    store = MilvusStore(uri, encoder_dir=Path(encoder_dir))
    index_paths([Path(samples)], store)  # version 1, published
    encoder = ensure_encoder(store)
    with store.writer() as session:  # version 2: written, never published
        session.remove(store.open().articles()[0].id)
        batch = _Batch(session, encoder)
        for path in sorted(Path(seed).iterdir()):
            for src in read_file(path)[0]:
                article = stored_article(src)
                batch.add(article, chunk_records(article, encoder))
        batch.flush()
        session._flush()
        print("written", flush=True)
        time.sleep(600)
    """
)


def test_a_killed_writer_leaves_the_previous_version_and_the_next_cleans_up(tmp_path, encoder_dir):
    uri = f"milvus://{tmp_path}/killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, uri, str(encoder_dir), str(SAMPLES), str(SEED_DIR)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    store = _open_when_released(uri, encoder_dir)
    try:
        assert store.current_version() == "v000001"
        view = store.open()
        ids = {a.id for a in view.articles()}
        assert len(ids) == _n_samples()  # every sample (none removed), and no seed
        assert not any(i.startswith("kbr-") for i in ids)
        assert store.db.count("chunks", "born == 2") > 0  # the dead writer's rows
        assert store.db.count("chunks", "died == 2") > 0  # and its marks
        with store.writer() as session:
            assert session.version == 2
            assert store.db.count("chunks", "born == 2 or died == 2") == 0
        assert store.current_version() == "v000001"  # nothing changed: nothing published
        assert {a.id for a in store.open().articles()} == ids
    finally:
        store.close()


def _n_samples() -> int:
    from qa.readers import iter_article_files, read_file

    return sum(len(read_file(p)[0]) for p in iter_article_files([SAMPLES]))


def _open_when_released(uri: str, encoder_dir: Path) -> MilvusStore:
    """Milvus Lite's own server process dies with its parent, a moment later."""
    import time

    from qa.stores.milvus import StoreUnavailable

    for _ in range(50):
        store = MilvusStore(uri, encoder_dir=encoder_dir)
        try:
            _ = store.db  # connects: refused while the killed writer's engine holds the file
            return store
        except StoreUnavailable:
            time.sleep(0.2)
    store = MilvusStore(uri, encoder_dir=encoder_dir)
    _ = store.db
    return store


def test_a_missing_milvus_index_is_a_clear_error(tmp_path, encoder_dir):
    from qa.errors import IndexMissing

    store = MilvusStore(f"milvus://{tmp_path}/empty.db", encoder_dir=encoder_dir)
    try:
        assert store.current_version() is None
        with pytest.raises(IndexMissing, match="index articles into it first"):
            store.open()
    finally:
        store.close()


def test_write_session_is_the_milvus_one(lite):
    with lite.writer() as session:
        assert isinstance(session, MilvusWriteSession)
        assert session.content_hash("no-such-article") is None
        assert session.id_with_hash("0" * 64) is None
        assert session.remove("no-such-article") is False
