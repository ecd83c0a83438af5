"""Indexing on Ray (qa.ray_ingest) into Milvus Lite, against the single-process path.

A real local Ray cluster (started once for the module: ~10 s) runs the read
stage and the encoder actors; the plain `index_paths` indexes the same files
into a Milvus Lite file of its own. Both must hold the same articles, chunks
and sentences, vectors within cosine 0.999, and give the same top quote.

Milvus Lite lets one process open a file, so with a Lite store the driver
writes. The path where Ray workers write themselves (a Milvus server) is run
against Milvus Lite's own server process reached through its socket by the
workers: the real engine, written to by other processes, as a server would be
(no Milvus server can run here).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="indexing on Ray needs the ray extra: pip install 'qa[ray]'")
pytest.importorskip("milvus_lite", reason="the Milvus store needs the milvus extra")

from qa.answering import Answerer
from qa.encoder import OnnxEncoder
from qa.indexer import index_paths
from qa.ray_ingest import index_with_ray, ray_cluster
from qa.settings import Settings
from qa.stores.milvus import LIVE, MilvusStore, StoreUnavailable
from qa.stores.uri import StoreURI
from tests.conftest import BBC_DIR, PROJECT, SAMPLES, SEED_DIR

QUESTIONS = [
    "What is K-SPACE?",
    "Which companies joined the Korea pavilion at BIO 2023?",
    "Who organised the river cleanup?",
    "How much power does the library's solar roof produce?",
    "How many new stations will the bike share add?",
    "volunteers collected bags of rubbish",
]


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster(None, workers=2) as ray:
        yield ray


@pytest.fixture(scope="module")
def plain(tmp_path_factory, encoder_dir):
    """The seed and samples indexed by the single-process path into Milvus Lite."""
    root = tmp_path_factory.mktemp("plain")
    store = MilvusStore(f"milvus://{root}/plain.db", encoder_dir=encoder_dir)
    report = index_paths([SEED_DIR, SAMPLES], store)
    yield store, report
    store.close()


def _report(report) -> dict:
    return report.model_dump(exclude={"seconds"})


def _answers(store: MilvusStore, encoder_dir: Path, tmp_path: Path) -> list:
    # The store's URI, as `qa serve --store` would be given it.
    settings = Settings(index_dir=tmp_path / "local", store=store.uri.shown)
    answerer = Answerer(settings, encoder=OnnxEncoder(encoder_dir))
    out = []
    for q in QUESTIONS:
        answer = answerer.ask(q)
        top = answer.quotes[0] if answer.quotes else None
        out.append((answer.answered, top and (top.article.id, top.start, top.end, top.text)))
    return out


def _assert_same_index(got: MilvusStore, want: MilvusStore) -> None:
    a, b = got.open(), want.open()
    assert (a.n_articles, a.n_chunks, a.n_sentences) == (b.n_articles, b.n_chunks, b.n_sentences)
    assert a.articles() == b.articles()  # ids, titles, urls, dates, chunk counts
    ids = [x.id for x in b.articles()]
    assert a.article_texts(ids) == b.article_texts(ids)
    # Chunks and sentences by article, in order: the same spans (ids may differ
    # when Ray workers hand them out, so spans are compared, then their vectors).
    for article_id in ids:
        ca = a.chunks_by_id(a.chunks_of_articles([article_id]).tolist())
        cb = b.chunks_by_id(b.chunks_of_articles([article_id]).tolist())
        assert [(c.start, c.end) for c in ca] == [(c.start, c.end) for c in cb], article_id
        sa = a.sentences_of_chunks([c.id for c in ca])
        sb = b.sentences_of_chunks([c.id for c in cb])
        assert [(s.start, s.end) for s in sa] == [(s.start, s.end) for s in sb], article_id
        for va, vb in (
            (a.chunk_vectors([c.id for c in ca]), b.chunk_vectors([c.id for c in cb])),
            (a.sentence_vectors([s.id for s in sa]), b.sentence_vectors([s.id for s in sb])),
        ):
            assert va.shape == vb.shape
            assert float((va * vb).sum(axis=1).min()) >= 0.999, article_id


def test_ray_ingest_into_milvus_lite_matches_the_single_process_path(
    cluster, plain, encoder_dir, tmp_path
):
    want, want_report = plain
    store = MilvusStore(f"milvus://{tmp_path}/ray.db", encoder_dir=encoder_dir)
    seen: list[Path] = []
    report = index_with_ray([SEED_DIR, SAMPLES], store, workers=2, on_file=seen.append)
    assert report.added == 7
    assert _report(report) == _report(want_report)
    assert len(seen) == len(set(seen)) >= 5  # every file reported once, as the CLI shows them
    assert store.current_version() == "v000001"
    _assert_same_index(store, want)
    # The driver wrote in input order, so even the ids are the plain path's.
    a, b = store.open(), want.open()
    every = list(range(1, b.n_chunks + 1))
    assert a.chunks_by_id(every) == b.chunks_by_id(every)
    assert _answers(store, encoder_dir, tmp_path) == _answers(want, encoder_dir, tmp_path)
    store.close()


def test_ray_ingest_into_an_index_directory_is_refused_clearly(index_dir):
    from qa.errors import InvalidInput
    from qa.store import IndexStore

    with pytest.raises(InvalidInput, match="Milvus store"):
        index_with_ray([SAMPLES], IndexStore(index_dir))
    assert not IndexStore(index_dir).exists()


def test_qa_index_ray_on_the_command_line(cluster, plain, encoder_dir, tmp_path):
    """`qa index --ray PATHS --store URI`: the option's optional address does not
    swallow the first path, and the run reuses the cluster this process joined."""
    from click.testing import CliRunner

    from qa.cli import main

    local = tmp_path / "local"
    local.mkdir()
    shutil.copytree(encoder_dir, local / "encoder")  # the machine's encoder, as docs say
    uri = f"milvus://{tmp_path}/cli.db"
    args = ["index", "--ray", str(SEED_DIR), str(SAMPLES), "--store", uri]
    result = CliRunner().invoke(main, [*args, "--index-dir", str(local)])
    assert result.exit_code == 0, result.output
    assert "7 added, 0 updated, 0 unchanged" in result.output
    assert "on Ray → " + uri in result.output
    store = MilvusStore(uri, encoder_dir=encoder_dir)
    _assert_same_index(store, plain[0])
    store.close()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        # The index directory is not a Ray target (under --qa-store=milvus there is none).
        pytest.param([], "writes into a Milvus store", marks=pytest.mark.directory_store),
        (["--store", "LITE", "--checkpoint", "5"], "does not combine"),
        (["--store", "LITE", "https://example.org/feed"], "without --ray"),
    ],
)
def test_qa_index_ray_refuses_what_it_cannot_do_in_one_line(extra, words, tmp_path):
    from click.testing import CliRunner

    from qa.cli import main

    lite = tmp_path / "x.db"
    extra = [f"milvus://{lite}" if e == "LITE" else e for e in extra]
    result = CliRunner().invoke(main, ["index", str(SAMPLES), "--ray", *extra])
    assert result.exit_code != 0
    assert words in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "default-index").exists() and not lite.exists()  # nothing written


@pytest.mark.slow
def test_a_second_ray_run_finds_everything_unchanged_and_publishes_nothing(
    cluster, encoder_dir, tmp_path
):
    store = MilvusStore(f"milvus://{tmp_path}/again.db", encoder_dir=encoder_dir)
    first = index_with_ray([SAMPLES], store)
    again = index_with_ray([SAMPLES], store)
    assert (again.added, again.updated, again.unchanged) == (0, 0, first.added)
    assert store.current_version() == "v000001"
    store.close()


def _edit(corpus: Path) -> None:
    """One article's text changed, another copied under a new name (a duplicate)."""
    texts = sorted(p for p in corpus.iterdir() if p.suffix in (".txt", ".md"))
    edited, copied = texts[0], texts[1]
    edited.write_text(edited.read_text() + "\n\nA paragraph added later says the work goes on.\n")
    shutil.copy(copied, corpus / ("zz-copy-of-" + copied.name))


@pytest.mark.slow
def test_ray_workers_writing_to_a_milvus_server_match_the_single_process_path(
    cluster, encoder_dir, tmp_path
):
    from milvus_lite.server_manager import server_manager_instance

    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES, corpus)  # ids of .txt and .md articles come from their path
    want = MilvusStore(f"milvus://{tmp_path}/plain.db", encoder_dir=encoder_dir)
    owner = MilvusStore(f"milvus://{tmp_path}/served.db", encoder_dir=encoder_dir)
    socket = server_manager_instance.start_and_get_uri(str(tmp_path / "served.db"))
    served = MilvusStore(StoreURI("server", socket), encoder_dir=encoder_dir)

    for run in range(2):
        if run:
            _edit(corpus)
        want_report = index_paths([SEED_DIR, corpus], want)
        report = index_with_ray([SEED_DIR, corpus], served, workers=2)
        assert _report(report) == _report(want_report)
        _assert_same_index(served, want)
    assert (report.updated, report.duplicates) == (1, 1)
    assert _answers(served, encoder_dir, tmp_path) == _answers(want, encoder_dir, tmp_path)
    # Nothing the workers wrote is left over: every live row is an article's.
    view = served.open()
    live = f"born <= {view.number} and died == {LIVE}"
    assert served.db.count("chunks", live) == view.n_chunks
    assert served.db.count("sentences", live) == view.n_sentences
    for store in (served, owner, want):
        store.close()


_KILLED_DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qa.ray_ingest import index_with_ray
    from qa.stores.milvus import MilvusStore

    uri, encoder_dir, *paths = sys.argv[1:]
    store = MilvusStore(uri, encoder_dir=Path(encoder_dir))
    index_with_ray([Path(p) for p in paths], store, on_file=lambda p: print(p, flush=True))
    print("published", flush=True)
    """
)


def _open_when_released(uri: str, encoder_dir: Path) -> MilvusStore:
    """Milvus Lite's server process stops once its dead parent's file lock goes."""
    for _ in range(100):
        try:
            return MilvusStore(uri, encoder_dir=encoder_dir)
        except StoreUnavailable:
            time.sleep(0.2)
    return MilvusStore(uri, encoder_dir=encoder_dir)


@pytest.mark.slow
def test_a_killed_ray_driver_leaves_the_previous_version_and_the_next_run_publishes(
    cluster, encoder_dir, tmp_path
):
    bbc = tmp_path / "bbc"
    bbc.mkdir()
    for path in sorted((BBC_DIR / "tech").iterdir())[:30]:
        shutil.copy(path, bbc / path.name)
    uri = f"milvus://{tmp_path}/killed.db"
    store = MilvusStore(uri, encoder_dir=encoder_dir)
    index_paths([SAMPLES], store)  # version 1
    before = store.open()
    old = (before.n_articles, before.n_chunks, before.n_sentences)
    store.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(tmp_path / "killed.db"))  # the child opens it

    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_DRIVER, uri, str(encoder_dir), str(SAMPLES), str(bbc)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        done = [child.stdout.readline() for _ in range(20)]  # twenty files taken in
        assert all(done) and "published" not in "".join(done)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

    store = _open_when_released(uri, encoder_dir)
    assert store.current_version() == "v000001"
    view = store.open()
    assert (view.n_articles, view.n_chunks, view.n_sentences) == old
    assert len(view.articles()) == old[0]
    report = index_with_ray([SAMPLES, bbc], store)
    assert (report.added, report.unchanged) == (30, old[0])
    assert store.current_version() == "v000002"
    view = store.open()
    assert view.n_articles == old[0] + 30 == len(view.articles())
    assert store.db.count("chunks", f"born <= 2 and died == {LIVE}") == view.n_chunks
    store.close()


@pytest.mark.slow
def test_ray_ingest_files_keep_their_problems(cluster, encoder_dir, tmp_path):
    """An unreadable file and an empty one are reported, as the plain path reports them."""
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "empty.txt").write_text("   \n")
    store = MilvusStore(f"milvus://{tmp_path}/problems.db", encoder_dir=encoder_dir)
    want = MilvusStore(f"milvus://{tmp_path}/problems-plain.db", encoder_dir=encoder_dir)
    files = [tmp_path / "broken.json", tmp_path / "empty.txt", SEED_DIR]
    report = index_with_ray(files, store)
    assert _report(report) == _report(index_paths(files, want))
    assert report.added == 1 and report.skipped == 2 and len(report.problems) == 2
    assert store.open().n_chunks == want.open().n_chunks
    store.close()
    want.close()
