"""`qa index` killed with SIGKILL at random moments never leaves a broken index.

Each round adds a few BBC articles to a growing corpus, starts `python -m qa
index` on it and kills it after a delay drawn uniformly over the last completed
run's duration, so kills land while starting up, reading, embedding, writing
the work folder and publishing (the summary counts kills per phase). After
every kill the index must open whole (FAISS vector counts equal to the SQLite
row counts), hold an article count some completed run produced, answer a
question about an article in it, and let the next `qa index` take the lock,
finish and sweep the dead run's work folder.

The default run kills 6 times; `-m slow` kills $QA_CRASH_KILLS times (30).
$QA_CRASH_SEED fixes the random delays (and the corpus order) to replay a run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa.answering import Answerer
from qa.indexer import index_paths
from qa.sentences import split_sentences
from qa.settings import Settings
from qa.store import IndexStore

from .conftest import BBC_DIR, PROJECT

# SIGKILLed `qa index` runs against the index directory's files (Milvus: test_milvus_store).
pytestmark = pytest.mark.directory_store

BATCH = 2  # articles added per round: a run of about a second on 2 idle cores
RUN_TIMEOUT = 120


@dataclass(frozen=True)
class KillOutcome:
    round: int
    delay: float
    scale: float  # the delay was drawn from [0, scale): the last completed run's duration
    # "starting": no work folder yet (imports, loading the encoder, listing files);
    # "working": a work folder left behind (reading, chunking, embedding, writing);
    # "publishing": the new version renamed into place, CURRENT not yet switched;
    # "published": CURRENT switched (killed while pruning, or just before exiting).
    phase: str
    version: str
    articles: int


def bbc_files(rng: random.Random) -> list[Path]:
    files = sorted(BBC_DIR.glob("*/*.txt"))
    rng.shuffle(files)
    return files


def qa_index(corpus: Path, index_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "QA_INDEX_DIR"}
    return subprocess.Popen(
        [sys.executable, "-m", "qa", "index", str(corpus), "--index-dir", str(index_dir)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def complete_run(corpus: Path, index_dir: Path) -> float:
    """One `qa index` left to finish; it must succeed (so no lock is left held)."""
    started = time.monotonic()
    proc = qa_index(corpus, index_dir)
    _, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, err.decode(errors="replace")
    return time.monotonic() - started


def work_folders(index_dir: Path) -> list[Path]:
    return sorted((index_dir / "versions").glob("*.tmp"))


def newest_version(index_dir: Path) -> str:
    names = [p.name for p in (index_dir / "versions").iterdir() if not p.name.endswith(".tmp")]
    return max(names)


def check_index(index_dir: Path) -> tuple[str, int, list[str]]:
    """Open the live version and check it is whole: (version, articles, article ids)."""
    snap = IndexStore(index_dir).open()
    try:
        assert len(snap.dense.chunks) == snap.n_chunks
        assert len(snap.dense.sentences) == snap.n_sentences
        ids = [a.id for a in snap.articles()]
        assert len(ids) == snap.n_articles
        return snap.version, snap.n_articles, ids
    finally:
        snap.close()


def assert_answers_about(answerer: Answerer, article_id: str) -> None:
    """An article's own first sentence, asked as a question, is quoted from that article."""
    text = answerer.snapshot().article(article_id).text
    start, end = split_sentences(text)[0]
    answer = answerer.ask(text[start:end], k=5)
    assert answer.answered, (article_id, text[start:end])
    assert any(q.article.id == article_id for q in answer.quotes), (article_id, answer)


def kill_rounds(kills: int, tmp_path: Path, encoder_dir: Path, encoder) -> list[KillOutcome]:
    seed = int(os.environ.get("QA_CRASH_SEED", "0")) or random.randrange(1, 10**6)
    print(f"\ncrash-safety: seed {seed} (QA_CRASH_SEED={seed} replays this run)")
    rng = random.Random(seed)
    pool = bbc_files(rng)
    assert len(pool) >= BATCH * (kills * 3 + 2), "not enough BBC articles for this many kills"
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    index_dir.mkdir()
    shutil.copytree(encoder_dir, index_dir / "encoder")  # no ONNX export inside the runs

    def add_batch() -> None:
        for path in pool[:BATCH]:
            shutil.copy(path, corpus / f"{path.parent.name}-{path.name}")
        del pool[:BATCH]

    # The first batch is indexed in-process (quicker); then a `qa index` adding one
    # batch to an existing index, like every killed run, gives the time scale.
    add_batch()
    index_paths([corpus], IndexStore(index_dir))
    add_batch()
    duration = complete_run(corpus, index_dir)
    _, count, known = check_index(index_dir)
    completed_counts = {count}
    answerer = Answerer(Settings(index_dir=index_dir), encoder=encoder)

    outcomes: list[KillOutcome] = []
    attempts = 0
    while len(outcomes) < kills:
        attempts += 1
        assert attempts <= kills * 3, "the runs keep finishing before the kill"
        before, before_count, _ = check_index(index_dir)
        add_batch()
        scale = duration
        delay = rng.uniform(0, scale)
        proc = qa_index(corpus, index_dir)
        time.sleep(delay)
        if proc.poll() is not None:  # finished first: a completed run, not a kill
            assert proc.wait() == 0, proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
            _, count, known = check_index(index_dir)
            completed_counts.add(count)
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()

        version, count, ids = check_index(index_dir)
        if version != before:
            phase = "published"
        elif newest_version(index_dir) != before:
            phase = "publishing"
        elif work_folders(index_dir):
            phase = "working"
        else:
            phase = "starting"
        if version == before:
            assert count == before_count
        # The runs only add articles, so every one a completed run put in is still here.
        assert set(known) <= set(ids)
        assert_answers_about(answerer, rng.choice(known))

        # The lock died with the process: the next run takes it, finishes, and
        # sweeps the dead run's work folder.
        took = complete_run(corpus, index_dir)
        after, new_count, known = check_index(index_dir)
        if after != version:  # it did the killed run's work: the time scale for the next
            duration = took
        assert count in completed_counts | {new_count}, (count, completed_counts, new_count)
        completed_counts.add(new_count)
        assert len(work_folders(index_dir)) <= 1, work_folders(index_dir)
        finished = [p for p in (index_dir / "versions").iterdir() if not p.name.endswith(".tmp")]
        # The live version and the one it replaced, +1 for a prune cut short by a kill.
        assert len(finished) <= 3, finished
        outcome = KillOutcome(len(outcomes) + 1, delay, scale, phase, version, count)
        outcomes.append(outcome)
        print(
            f"  kill {outcome.round:2d} at {delay:5.2f} s of ~{scale:.2f} s: "
            f"{phase:10s} -> {'new' if version != before else 'old'} version {version} "
            f"({count} articles)"
        )

    phases = Counter(o.phase for o in outcomes)
    newer = phases["published"]
    print(
        f"crash-safety summary: {len(outcomes)} kills in {attempts} attempts; "
        f"opened the old version {len(outcomes) - newer} times, the new one {newer} times; "
        f"phases {dict(phases)}; {len(outcomes)} answers checked; every next run succeeded; "
        f"final index {max(completed_counts)} articles"
    )
    return outcomes


def test_sigkilled_index_runs_leave_a_whole_answerable_index(tmp_path, encoder_dir, encoder):
    outcomes = kill_rounds(6, tmp_path, encoder_dir, encoder)
    assert len(outcomes) == 6


@pytest.mark.slow
def test_many_sigkilled_index_runs_leave_a_whole_answerable_index(tmp_path, encoder_dir, encoder):
    kills = int(os.environ.get("QA_CRASH_KILLS", "30"))
    outcomes = kill_rounds(kills, tmp_path, encoder_dir, encoder)
    assert len(outcomes) == kills


def test_the_version_live_before_an_update_is_the_one_kept(tmp_path, index_dir):
    """What a SIGKILL between `os.replace(work, final)` and the CURRENT switch leaves,
    made on purpose: the next update must keep the version that was live before it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = sorted(BBC_DIR.glob("sport/*.txt"))[:3]
    store = IndexStore(index_dir)
    for path in files[:2]:
        shutil.copy(path, corpus / path.name)
        index_paths([corpus], store)
    live = store.current_version()
    number = int(live[1:]) + 1
    shutil.copytree(store.versions_dir / live, store.versions_dir / f"v{number:06d}")  # orphan
    shutil.copy(files[2], corpus / files[2].name)
    index_paths([corpus], store)
    kept = sorted(p.name for p in store.versions_dir.iterdir())
    assert kept == [live, store.current_version()]
