"""Kill `qa index` with SIGKILL at random moments and check the index each time.

A small corpus (the sample articles plus about 40 BBC articles, copied to a
temporary folder) is indexed once; then each run changes the corpus in one of
three ways, in turn, and starts `python -m qa index` on it:

- add:        one new BBC article;
- edit:       one indexed article's text changed (its old and new text are known);
- checkpoint: two new articles and four edits, indexed with `--checkpoint 5`, so
              a version is published part-way through the run.

Each run is killed after a delay drawn uniformly over that kind of run's
duration, measured on one unkilled run of each kind first, then on the last
unkilled run of that kind (the machine's load changes). A run that finishes
before its delay is recorded but not counted: runs go on until `--runs` kills
have landed. After each kill the
index is opened as a reader and must be whole: CURRENT names a finished folder
whose manifest agrees with its rows, its article count is one a complete
version could have, every chunk has its vector and sentences, every sentence
lies inside its chunk and its article's text, every edited article holds its
old or its new text (never a mix), and a question is answered. Then the same
`qa index` is run again unkilled and must succeed with the final count.

    nice python bench/bench_kill.py [--runs 30] [--seed N] [--store URI|lite]

`--store` runs the same kills against a Milvus store (`lite`: a Milvus Lite
file of its own in the temporary folder; a server URI needs a `?prefix=` no
index uses, since the bench fills and empties it). The reader then checks
what the store reports (the live version opens; counts agree with the rows;
every chunk and sentence has its vector), and closes the store after each
look so the next `qa index` process may open a Lite file.

Prints a table and writes bench/out/kill.json (kill-milvus.json with --store).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess  # nosec B404 - runs this package with fixed arguments
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared  # noqa: E402
from qa.answering import Answerer  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.stores import open_store  # noqa: E402

KINDS = ("add", "edit", "checkpoint")
START_BBC = 10  # BBC articles in the first index; the runs add the rest
RUN_TIMEOUT = 300
QUESTION = "How many new stations will the bike share add?"  # a sample article answers it


@dataclass
class Run:
    n: int
    kind: str
    delay: float
    scale: float
    killed: bool  # False: the run finished before its delay ran out
    landed: str  # "before publish" (CURRENT unchanged) or "after publish"
    version: str
    articles: int
    allowed: list[int]
    violations: list[str] = field(default_factory=list)
    recovery_seconds: float = 0.0


STORE: str | None = None  # --store: the Milvus store every run writes and every check reads


def store_of(index_dir: Path):
    return open_store(Settings(index_dir=index_dir, store=STORE))


def qa_index(corpus: Path, index_dir: Path, checkpoint: int = 0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("QA_INDEX_DIR", "QA_STORE")}
    cmd = [sys.executable, "-m", "qa", "index", str(corpus), "--index-dir", str(index_dir)]
    if STORE:
        cmd += ["--store", STORE]
    if checkpoint:
        cmd += ["--checkpoint", str(checkpoint)]
    return subprocess.Popen(  # nosec B603 - fixed arguments
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def complete(corpus: Path, index_dir: Path, checkpoint: int = 0) -> float:
    started = time.monotonic()
    proc = qa_index(corpus, index_dir, checkpoint)
    _, err = proc.communicate(timeout=RUN_TIMEOUT)
    if proc.returncode != 0:
        raise SystemExit(f"an unkilled qa index failed: {err.decode(errors='replace')[-800:]}")
    return time.monotonic() - started


def article_texts(index_dir: Path) -> dict[str, str]:
    store = store_of(index_dir)
    try:
        snap = store.open()
        return {a.id: snap.article(a.id).text for a in snap.articles()}
    finally:
        store.close()  # a Milvus Lite file is free again for the next `qa index`


def current_version(index_dir: Path) -> str | None:
    store = store_of(index_dir)
    try:
        return store.current_version()
    finally:
        store.close()


def check(index_dir: Path, allowed: set[int]) -> tuple[str, int, list[str]]:
    """Open the live version as a reader: (version, articles, violations found)."""
    answerer = Answerer(Settings(index_dir=index_dir, store=STORE))
    try:
        return _check(index_dir, answerer, allowed)
    finally:
        answerer.store.close()


def _check(index_dir: Path, answerer: Answerer, allowed: set[int]) -> tuple[str, int, list[str]]:
    bad: list[str] = []
    store = answerer.store
    try:
        current = store.current_version() or ""
    except Exception as exc:  # a store that cannot say its version is a violation too
        return "", -1, [f"the live version cannot be named: {exc}"]
    if not STORE:
        folder = store.versions_dir / current
        if not current or current.endswith(".tmp") or not folder.is_dir():
            return current, -1, [f"CURRENT names {current!r}, not a finished version folder"]
    elif not current:
        return current, -1, ["no version is published"]
    try:
        snap = store.open()
    except Exception as exc:  # any failure to open is the violation being counted
        return current, -1, [f"the live version does not open: {exc}"]
    try:
        if not STORE:
            manifest = json.loads((folder / "manifest.json").read_text())
            counts = manifest.get("counts", {})
            if counts != {
                "articles": snap.n_articles,
                "chunks": snap.n_chunks,
                "sentences": snap.n_sentences,
            }:
                bad.append(f"manifest counts {counts} differ from the rows")
            if snap.n_chunks != len(snap.dense.chunks):
                bad.append(f"{snap.n_chunks} chunks, {len(snap.dense.chunks)} chunk vectors")
            if snap.n_sentences != len(snap.dense.sentences):
                bad.append(f"{snap.n_sentences} sentences, {len(snap.dense.sentences)} vectors")
        if snap.n_articles not in allowed:
            bad.append(f"{snap.n_articles} articles, a complete version has one of {allowed}")
        summaries = snap.articles()
        if len(summaries) != snap.n_articles:
            bad.append(f"{len(summaries)} articles listed, {snap.n_articles} counted")
        texts = {a.id: snap.article(a.id).text for a in summaries}
        chunk_ids = snap.chunks_of_articles(list(texts)).tolist()
        chunks = {c.id: c for c in snap.chunks_by_id(chunk_ids)}
        if len(chunks) != snap.n_chunks:
            bad.append(f"{len(chunks)} chunks belong to articles, {snap.n_chunks} stored")
        sentences = snap.sentences_of_chunks(chunk_ids)
        if len(sentences) != snap.n_sentences:
            bad.append(f"{len(sentences)} sentences in chunks, {snap.n_sentences} stored")
        # Every vector is there (a Milvus view raises IndexCorrupt for a missing one).
        if snap.chunk_vectors(chunk_ids).shape[0] != len(chunk_ids):
            bad.append("chunk vectors missing")
        if snap.sentence_vectors([s.id for s in sentences]).shape[0] != len(sentences):
            bad.append("sentence vectors missing")
        with_sentences = {s.chunk_id for s in sentences}
        if set(chunks) - with_sentences:
            bad.append(f"{len(set(chunks) - with_sentences)} chunks without sentences")
        for s in sentences:
            chunk = chunks.get(s.chunk_id)
            text = texts.get(s.article_id, "")
            if chunk is None or chunk.article_id != s.article_id:
                bad.append(f"sentence {s.id} is not in a chunk of its article")
            elif not (chunk.start <= s.start < s.end <= chunk.end <= len(text)):
                bad.append(f"sentence {s.id} [{s.start}, {s.end}) outside its chunk or text")
        answer = answerer.ask(QUESTION, k=3)
        if not answer.answered:
            bad.append("the sample question went unanswered")
        return current, snap.n_articles, bad[:10]
    except Exception as exc:  # reading a whole version must not fail either
        return current, snap.n_articles, [*bad, f"reading the live version failed: {exc!r}"]
    finally:
        snap.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="kills that land")
    parser.add_argument("--seed", type=int, default=0, help="0: a random seed (printed)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/out/kill.json")
    parser.add_argument(
        "--store", default=None, metavar="URI", help="a Milvus store URI, or lite (see above)"
    )
    args = parser.parse_args()
    global STORE
    name = "kill-milvus.json" if args.store else "kill.json"
    args.out = args.out or ROOT / "bench" / "out" / name
    seed = args.seed or random.randrange(1, 10**6)
    rng = random.Random(seed)
    print(f"seed {seed} (--seed {seed} replays the delays)")

    bbc = sorted((find_shared() / "corpus" / "bbc").glob("*/*.txt"))
    rng.shuffle(bbc)

    with tempfile.TemporaryDirectory(prefix="qa-kill-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        if args.store:
            STORE = f"milvus://{tmp}/kill.db" if args.store == "lite" else args.store
            print(f"store: {STORE}")
        shutil.copytree(ROOT / "samples" / "articles", corpus)
        (corpus / "bbc").mkdir()
        fresh = list(bbc)  # taken in turn: about 40 for 30 kills

        def add(n: int) -> None:
            for path in fresh[:n]:
                shutil.copy(path, corpus / "bbc" / f"{path.parent.name}-{path.name}")
            del fresh[:n]

        edit_count = Counter[str]()

        def edit(n: int) -> dict[str, str]:
            """Append a sentence to n indexed BBC articles: {article id: its old text}."""
            before = article_texts(index_dir)
            changed = {}
            for path in rng.sample(sorted((corpus / "bbc").glob("*.txt")), n):
                edit_count[path.stem] += 1
                text = path.read_text(encoding="utf-8", errors="replace")
                note = f"\nCorrection number {edit_count[path.stem]} was added later.\n"
                path.write_text(text + note, encoding="utf-8")
                # Ids of files are the file name's slug and a hash (qa.indexer.article_id).
                found = [i for i in before if i.startswith(path.stem.lower() + "-")]
                changed.update({i: before[i] for i in found})
            return changed

        add(START_BBC)
        started = time.monotonic()
        complete(corpus, index_dir)  # exports the encoder too
        print(f"first index: {time.monotonic() - started:.1f} s")

        def change(kind: str) -> tuple[int, dict[str, str]]:
            if kind == "add":
                add(1)
                return 0, {}
            if kind == "edit":
                return 0, edit(1)
            add(2)
            return 5, edit(4)

        # One unkilled run of each kind: the time scale of its kills.
        scale = {}
        for kind in KINDS:
            checkpoint, _ = change(kind)
            scale[kind] = complete(corpus, index_dir, checkpoint)
            print(f"unkilled {kind} run: {scale[kind]:.2f} s")

        runs: list[Run] = []
        versions_seen: set[str] = set()
        n = 0
        while sum(r.killed for r in runs) < args.runs:
            n += 1
            if n > 3 * args.runs:
                raise SystemExit("the runs keep finishing before their kill")
            kind = KINDS[(n - 1) % len(KINDS)]
            before_version = current_version(index_dir)
            before_count = len(article_texts(index_dir))
            checkpoint, edits = change(kind)
            new = {"add": 1, "edit": 0, "checkpoint": 2}[kind]
            # A version published part-way may hold any number of the new articles.
            allowed = set(range(before_count, before_count + new + 1))
            run_scale = scale[kind]  # before a completed run of this kind rescales it
            delay = rng.uniform(0, run_scale)
            proc = qa_index(corpus, index_dir, checkpoint)
            time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            proc.stderr.close()
            version, count, bad = check(index_dir, allowed)
            landed = "after publish" if version != before_version else "before publish"
            texts_mid = article_texts(index_dir) if not bad else {}
            took = complete(corpus, index_dir, checkpoint)
            final = article_texts(index_dir)
            if len(final) != before_count + new:
                bad.append(
                    f"the next run ended with {len(final)} articles, not {before_count + new}"
                )
            # An edited article's new text is what the unkilled run stored.
            for i, old in edits.items():
                mid = texts_mid.get(i)
                if mid is not None and mid not in (old, final.get(i)):
                    bad.append(f"article {i} held a text that is neither its old nor its new one")
                if final.get(i) == old:
                    bad.append(f"the next run did not store the edit of {i}")
            versions_seen.update({version, current_version(index_dir) or ""})
            if killed:  # it redid the killed run's work: the time scale from now on
                scale[kind] = took
            run = Run(
                n,
                kind,
                delay,
                run_scale,
                killed,
                landed,
                version,
                count,
                sorted(allowed),
                bad,
                took,
            )
            runs.append(run)
            print(
                f"run {n:2d} {kind:10s} kill at {delay:5.2f}/{run_scale:5.2f} s: "
                f"{'killed' if killed else 'finished first':15s} {landed:14s} "
                f"{version} {count:3d} articles, {len(bad)} violations"
                + (f": {bad[0]}" if bad else "")
            )

    killed = [r for r in runs if r.killed]
    summary = {
        "store": "milvus" if STORE else "directory",
        "seed": seed,
        "runs": len(runs),
        "kills": len(killed),
        "finished_before_kill": len(runs) - len(killed),
        "landed_before_publish": sum(r.landed == "before publish" for r in killed),
        "landed_after_publish": sum(r.landed == "after publish" for r in killed),
        "versions_seen": len(versions_seen),
        "violations": sum(len(r.violations) for r in runs),
        "bbc_articles": len(bbc) - len(fresh),
        "by_kind": {k: sum(r.kind == k and r.killed for r in runs) for k in KINDS},
        "unkilled_seconds": scale,
    }
    print()
    print(
        "| runs | kills | finished first | before publish | after publish | versions | violations |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {summary['runs']} | {summary['kills']} | {summary['finished_before_kill']} | "
        f"{summary['landed_before_publish']} | {summary['landed_after_publish']} | "
        f"{summary['versions_seen']} | {summary['violations']} |"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"summary": summary, "runs": [asdict(r) for r in runs]}, indent=2)
    )
    print(f"-> {args.out}")
    if summary["violations"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
