"""Bulk exports and large indexes: JSON lines of any size streamed, the 20 MB cap
kept for single documents, resumable indexing, memory-mapped versions, and the
approximate dense index answering as exact search does."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from qa.answering import Answerer
from qa.indexer import index_paths
from qa.readers import MAX_FILE_BYTES, read_file, read_upload
from qa.settings import Settings
from qa.store import IndexStore

from .conftest import SEED_DIR, SEED_QUESTIONS, SHARED, store_at

WIKI = SHARED / "corpus" / "wiki" / "enwiki-2014-100k.jsonl.gz"


def wiki_lines(n: int) -> list[str]:
    with gzip.open(WIKI, "rt", encoding="utf-8") as fh:
        return list(itertools.islice(fh, n))


def test_a_gzipped_wiki_export_is_streamed_indexed_and_answers(index_dir, tmp_path):
    export = tmp_path / "wiki.jsonl.gz"
    with gzip.open(export, "wt", encoding="utf-8") as fh:
        fh.writelines(wiki_lines(100))
    store = store_at(index_dir)
    report = index_paths([export], store, checkpoint=50)
    assert (report.added, report.skipped, report.problems) == (100, 0, [])
    assert store.open().n_articles == 100

    answer = Answerer(Settings(index_dir=index_dir)).ask("When was Chen Zhili born?")
    assert answer.answered
    assert "November 1942" in answer.quotes[0].text
    assert answer.quotes[0].article.id == "enwiki-18228284"

    # Rerunning the same command (as after a kill) passes over what is indexed,
    # by content hash, without embedding anything again.
    again = index_paths([export], store, checkpoint=50)
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 100, 0)
    assert again.seconds < max(report.seconds / 5, 3)


def test_checkpoints_publish_versions_so_a_killed_run_keeps_its_work(index_dir, tmp_path):
    export = tmp_path / "part.jsonl"
    export.write_text("".join(wiki_lines(6)), encoding="utf-8")
    store = IndexStore(index_dir)
    published: list[int] = []
    index_paths([export], store, checkpoint=2, on_checkpoint=lambda r: published.append(r.added))
    assert published == [2, 4, 6]
    assert store.current_version() == "v000003"  # one per checkpoint; the empty rest adds none


def test_a_jsonl_export_over_20_mb_is_accepted(index_dir, tmp_path):
    first, second = wiki_lines(2)
    big = tmp_path / "export.jsonl"
    with big.open("w", encoding="utf-8") as fh:
        fh.write(first)
        while fh.tell() <= MAX_FILE_BYTES + 1_000_000:
            fh.write(second)  # the same article again and again: found to be a duplicate
        fh.write("not json\n")
    assert big.stat().st_size > 21_000_000
    report = index_paths([big], IndexStore(index_dir))
    assert report.added == 2
    assert report.duplicates > 1_000
    assert len(report.problems) == 1 and "invalid JSON" in report.problems[0]


@pytest.mark.parametrize("name", ["article.json", "article.txt"])
def test_a_single_25_mb_document_is_still_refused_clearly(index_dir, tmp_path, name):
    path = tmp_path / name
    with path.open("wb") as fh:
        fh.truncate(25 * 1024 * 1024)  # sparse: nothing written
    report = index_paths([path], IndexStore(index_dir))
    assert report.skipped == 1 and report.added == 0
    (problem,) = report.problems
    assert problem.startswith(f"{path}: file too large (26.2 MB; the limit is 20 MB)")
    assert ".jsonl" in problem  # says how a bulk export gets in


def test_uploads_keep_the_20_mb_cap_even_gzipped(tmp_path):
    from qa.errors import UnreadableFile

    line = json.dumps({"title": "T", "text": "x " * 1000}) + "\n"
    packed = gzip.compress((line * 11_000).encode())  # ~22 MB once decompressed
    assert len(packed) < MAX_FILE_BYTES
    with pytest.raises(UnreadableFile, match="too large once decompressed"):
        read_upload("export.jsonl.gz", packed)
    articles, _ = read_upload("small.jsonl.gz", gzip.compress(line.encode()))
    assert [a.title for a in articles] == ["T"]


def test_a_damaged_gzip_export_is_reported_not_a_traceback(tmp_path):
    from qa.errors import UnreadableFile

    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress("".join(wiki_lines(3)).encode())[:-200])
    with pytest.raises(UnreadableFile, match=r"cut\.jsonl\.gz"):
        read_file(path)


@pytest.mark.directory_store
def test_opening_a_version_maps_its_arrays_instead_of_reading_them(seed_index):
    snap = IndexStore(seed_index).open()
    maps = Path("/proc/self/maps").read_text()
    for array in (
        snap.dense.chunks.vectors,
        snap.dense.sentences.vectors,
        snap.lexical.model.scores["data"],
        snap.lexical.sentence_terms,
    ):
        assert isinstance(array, np.memmap)
        assert str(array.filename) in maps


@pytest.fixture(scope="module")
def ann_seed_index(tmp_path_factory, encoder_dir) -> Path:
    """The seed corpus indexed with the approximate index forced on (threshold 1)."""
    import shutil

    path = tmp_path_factory.mktemp("ann") / "index"
    path.mkdir()
    shutil.copytree(encoder_dir, path / "encoder")
    index_paths([SEED_DIR], IndexStore(path, ann_min_chunks=1))
    return path


@pytest.mark.directory_store
def test_the_approximate_index_gives_the_answers_exact_search_gives(seed_index, ann_seed_index):
    snap = IndexStore(ann_seed_index).open()
    assert snap.dense.ann is not None
    assert IndexStore(seed_index).open().dense.ann is None
    exact = Answerer(Settings(index_dir=seed_index))
    approximate = Answerer(Settings(index_dir=ann_seed_index))
    questions = [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text().splitlines()]
    for question in questions:
        want, got = exact.ask(question), approximate.ask(question)
        assert [q.text for q in got.quotes] == [q.text for q in want.quotes], question
        assert [q.score for q in got.quotes] == pytest.approx([q.score for q in want.quotes])


@pytest.mark.directory_store
def test_the_approximate_index_searches_within_a_set_of_chunks(ann_seed_index, encoder):
    snap = IndexStore(ann_seed_index).open()
    qvec = encoder.embed(["When was the K-Space platform established?"])[0]
    allowed = np.asarray(snap.dense.chunks.ids)[::2]
    proposed = snap.dense._candidates(qvec, 10, allowed)  # the approximate index itself
    assert len(proposed) and set(proposed.tolist()) <= set(allowed.tolist())
    ids, _ = snap.dense.search(qvec, 3, allowed=allowed)
    best = allowed[np.argsort(-(snap.chunk_vectors(allowed) @ qvec), kind="stable")][:3]
    assert ids.tolist() == best.tolist()


def test_an_update_after_a_removal_keeps_vectors_and_rows_in_step(index_dir, tmp_path):
    first = tmp_path / "a.jsonl"
    lines = wiki_lines(4)
    first.write_text("".join(lines), encoding="utf-8")
    store = IndexStore(index_dir, ann_min_chunks=1)
    index_paths([first], store)
    edited = json.loads(lines[1])
    edited["text"] += "\n\nAn added closing paragraph about nothing in particular."
    first.write_text(lines[0] + json.dumps(edited) + "\n", encoding="utf-8")
    report = index_paths([first], store)
    assert (report.updated, report.unchanged) == (1, 1)
    snap = store.open()
    assert len(snap.dense.chunks) == snap.n_chunks and snap.dense.ann.ntotal == snap.n_chunks
    assert "An added closing paragraph" in snap.article(edited["id"]).text


@pytest.mark.directory_store
def test_a_writer_reads_the_graph_only_to_publish_and_a_damaged_one_changes_nothing(
    ann_seed_index, tmp_path
):
    import shutil

    from qa.dense import DenseIndex
    from qa.errors import IndexCorrupt

    index = tmp_path / "index"
    shutil.copytree(ann_seed_index, index)
    store = IndexStore(index, ann_min_chunks=1)
    live = store.current_version()
    version = index / "versions" / live
    # A writer opens the live vectors without the graph (held only while publishing).
    lazy = DenseIndex.open(version, graph=False)
    assert lazy.ann is None and lazy.graph_file is not None
    lazy.load_graph()
    assert lazy.ann.ntotal == len(lazy.chunks) + len(lazy.tombstones)

    graph = version / "dense" / "chunks.hnsw.faiss"
    graph.write_bytes(graph.read_bytes()[:1000])
    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(wiki_lines(1)), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="HNSW graph cannot be read"):
        index_paths([extra], store)
    assert store.current_version() == live
    assert sorted(p.name for p in (index / "versions").iterdir()) == [live]
