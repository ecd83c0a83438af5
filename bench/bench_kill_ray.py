"""Kill `index_with_ray` (the Ray driver) with SIGKILL at random moments, then read.

A small corpus (the sample articles plus 10 BBC articles) is indexed into two
Milvus Lite files. Each run then adds one more BBC article to the corpus and
starts a driver process, `qa.ray_ingest.index_with_ray`, on it, alternating:

- lite:   the driver opens a Milvus Lite file itself and writes (workers compute);
- server: a Milvus server on 127.0.0.1 (the engine milvus-lite embeds, serving
          gRPC on TCP: bench.shared.start_milvus_server), which the driver and
          its Ray workers reach over the network, the workers writing their
          rows themselves; it outlives every driver, as a server would.

Each driver is killed at a random point of its writing, half the runs each
way: after it has taken in the k-th file's outcome (k uniform over the
corpus's files; the driver writes as outcomes arrive) and a further 0-1.5 s
(uniform), which reaches into the version's BM25 rows, manifest and publish;
or at a moment uniform over the second half of the mode's unkilled run (from
the actors' first writes to the publish: outcomes reach the driver in bursts
near the end, so the first way lands mostly after the publish). Kills timed from the start landed
almost all in Ray's start-up and the actors' model loading, before any write,
on this loaded machine (two tries of 30 runs). Its process
group (the local Ray cluster it started) is killed with it. Then the store is
read: the live version's article count must be the one before the run or the
corpus's full count, the articles listed must be that many, every live chunk's
article must be listed, every live sentence's chunk live, and the live row
counts must equal the version's manifest. A final unkilled run per mode must
publish the full count.

    nice python bench/bench_kill_ray.py [--runs 30] [--seed N] [--modes lite,server]
    nice python bench/bench_kill_ray.py --kill worker --modes server

`--kill worker` SIGKILLs one encoder actor instead (at a moment over the second
half of the run) and lets the driver go on: Ray restarts the actor and retries
its task, whose rows are upserted under the same id block, or the run fails and
publishes nothing; the same check follows either way.

Both modes run by default, alternating. (Before the server was a TCP process,
the server mode reached an in-process Milvus Lite server through its Unix
socket, and its drivers never got their Ray cluster started on a loaded
machine; with a server of its own they do.)

Prints a table and writes bench/out/kill_ray.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess  # nosec B404 - runs this package with fixed arguments
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared, start_milvus_server  # noqa: E402
from qa.encoder import export_onnx_encoder  # noqa: E402
from qa.indexer import index_paths, stored_article  # noqa: E402
from qa.readers import read_file  # noqa: E402
from qa.stores.milvus import MilvusStore, StoreUnavailable  # noqa: E402

MODES = ("lite", "server")
START_BBC = 10
RUN_TIMEOUT = 600
AFTER_FILE = 1.5  # seconds, at most, between the k-th file's outcome and the kill

_DRIVER = """
import sys
from pathlib import Path
from qa.ray_ingest import index_with_ray
from qa.stores.milvus import MilvusStore
from qa.stores.uri import parse_store_uri

where, encoder_dir, corpus = sys.argv[1:]
store = MilvusStore(parse_store_uri(where), encoder_dir=Path(encoder_dir))
index_with_ray([Path(corpus)], store, on_file=lambda p: print("file", flush=True))
print("published", flush=True)
"""


@dataclass
class Run:
    n: int
    mode: str
    delay: float
    killed: bool
    files_seen: int  # files the driver had taken in when it was killed
    landed: str  # "before publish" or "after publish"
    articles: int
    allowed: list[int]
    violations: list[str] = field(default_factory=list)
    unpublished_rows: int = 0  # chunk rows the killed run wrote that no reader sees


def _driver(where: str, encoder_dir: Path, corpus: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(  # nosec B603 - fixed arguments
        [sys.executable, "-c", _DRIVER, where, str(encoder_dir), str(corpus)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        start_new_session=True,  # its own group: the Ray cluster it starts goes with it
    )


def _encoder_actors(session: int) -> list[int]:
    """The Ray encoder actors' processes of the driver's session (each worker has
    a process group of its own; the driver started the session)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[3]) == session and "_Embedder" in title:
            found.append(int(proc.name))
    return found


def _kill_group(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=60)


def _count_lines(child: subprocess.Popen, seen: list[str]) -> threading.Thread:
    def read() -> None:
        for line in child.stdout:
            seen.append(line.strip())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _failure(child: subprocess.Popen, log: Path) -> list[str]:
    """A run that ended by itself must have published: its error's last line if not."""
    if child.returncode == 0:
        return []
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    return [f"the unkilled run failed ({child.returncode}): {lines[-1] if lines else ''}"]


def _open(where: str, encoder_dir: Path) -> MilvusStore:
    """The store, once a killed driver's Milvus Lite engine has let the file go."""
    for _ in range(150):
        try:
            return MilvusStore(where, encoder_dir=encoder_dir)
        except StoreUnavailable:
            time.sleep(0.2)
    return MilvusStore(where, encoder_dir=encoder_dir)


def _release(path: Path) -> None:
    """Make sure this process's Milvus Lite engine on `path` is gone (closing the
    last store of a file already stops it; milvus-lite raises on a second stop)."""
    from milvus_lite.server_manager import server_manager_instance

    if str(path.resolve()) in server_manager_instance._servers:
        server_manager_instance.release_server(str(path))


def check(store: MilvusStore, allowed: set[int]) -> tuple[int, list[str]]:
    """The live version as a reader sees it; what is wrong with it."""
    problems = []
    view = store.open()
    listed = {a.id for a in view.articles()}
    if view.n_articles not in allowed:
        problems.append(f"{view.n_articles} articles, a whole version has one of {allowed}")
    if len(listed) != view.n_articles:
        problems.append(f"{len(listed)} articles listed, the manifest says {view.n_articles}")
    top = view.manifest.get("next_ids", {})
    chunks = list(view.db.scan("chunks", "id", top["chunks"], view.where, ["id", "article_id"]))
    sentences = list(
        view.db.scan("sentences", "id", top["sentences"], view.where, ["id", "chunk_id"])
    )
    if len(chunks) != view.n_chunks:
        problems.append(f"{len(chunks)} live chunks, the manifest says {view.n_chunks}")
    if len(sentences) != view.n_sentences:
        problems.append(f"{len(sentences)} live sentences, the manifest says {view.n_sentences}")
    orphans = {c["article_id"] for c in chunks} - listed
    if orphans:
        problems.append(f"chunks of {len(orphans)} articles not listed")
    chunk_ids = {c["id"] for c in chunks}
    if any(s["chunk_id"] not in chunk_ids for s in sentences):
        problems.append("sentences of chunks not live")
    return view.n_articles, problems


def _flat(path: Path) -> str:
    """A BBC file's name in one flat folder (each category numbers from 001)."""
    return f"{path.parent.name}-{path.name}"


def _distinct_bbc(shared: Path, n: int, rng: random.Random) -> list[Path]:
    """n BBC files with distinct content (the corpus repeats a few stories)."""
    files = sorted((shared / "corpus" / "bbc").rglob("*.txt"))
    rng.shuffle(files)
    seen, out = set(), []
    for path in files:
        articles = read_file(path)[0]
        if len(articles) != 1:
            continue
        h = stored_article(articles[0]).content_hash
        if h not in seen:
            seen.add(h)
            out.append(path)
        if len(out) == n:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--modes",
        default="lite,server",
        help="lite and/or server, comma-separated",
    )
    parser.add_argument(
        "--kill",
        choices=("driver", "worker"),
        default="driver",
        help="SIGKILL the driver and its cluster, or one encoder actor (the run goes on)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "kill_ray.json")
    args = parser.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m in MODES) or ("lite",)
    rng = random.Random(args.seed)
    shared = find_shared()
    root = Path(tempfile.mkdtemp(prefix="bench-kill-ray-"))
    samples = ROOT / "samples" / "articles"
    try:
        encoder_dir = export_onnx_encoder(root / "encoder")
        # Runs that finish before their kill use up articles too: room for three per kill.
        bbc = _distinct_bbc(shared, START_BBC + 3 * args.runs + 2 * len(modes), rng)
        corpora, where, files = {}, {}, {}
        served = None
        for mode in modes:
            corpus = corpora[mode] = root / f"corpus-{mode}"
            shutil.copytree(samples, corpus)
            for path in bbc[:START_BBC]:
                shutil.copy(path, corpus / _flat(path))
            if mode == "lite":
                db = files[mode] = root / f"{mode}.db"
                where[mode] = f"milvus://{db}"
            else:
                (root / "server").mkdir()
                served, address = start_milvus_server(root / "server")
                where[mode] = f"milvus://{address}"
            store = MilvusStore(where[mode], encoder_dir=encoder_dir)
            index_paths([corpus], store)
            store.close()
            if mode == "lite":
                _release(files[mode])
        n_bbc = {m: START_BBC for m in modes}
        pool = iter(bbc[START_BBC:])

        def grow(mode: str) -> int:
            path = next(pool)
            shutil.copy(path, corpora[mode] / _flat(path))
            n_bbc[mode] += 1
            return 6 + n_bbc[mode]  # the samples hold 6 distinct articles

        def reader(mode: str) -> MilvusStore:
            return _open(where[mode], encoder_dir)

        def done_reading(mode: str, store: MilvusStore) -> None:
            store.close()
            if mode == "lite":
                _release(files[mode])

        # One unkilled run per mode: the corpus and store work before any kill.
        duration = {}
        for mode in modes:
            full = grow(mode)
            started = time.perf_counter()
            log = root / f"unkilled-{mode}.err"
            child = _driver(where[mode], encoder_dir, corpora[mode], log)
            child.communicate(timeout=RUN_TIMEOUT)
            duration[mode] = time.perf_counter() - started
            _kill_group(child)
            store = reader(mode)
            count, problems = check(store, {full})
            problems += _failure(child, log)
            done_reading(mode, store)
            print(f"unkilled {mode}: {duration[mode]:.1f} s, {count} articles, {problems or 'ok'}")

        runs: list[Run] = []
        n = 0
        while sum(r.killed for r in runs) < args.runs:
            n += 1
            mode = modes[n % len(modes)]
            store = reader(mode)
            before_version, before = store.current_version(), store.open().n_articles
            done_reading(mode, store)
            full = grow(mode)
            k = rng.randint(1, sum(1 for _ in corpora[mode].iterdir()))
            log = root / f"run-{n}.err"
            started = time.perf_counter()
            child = _driver(where[mode], encoder_dir, corpora[mode], log)
            lines: list[str] = []
            _count_lines(child, lines)
            # Every other run is killed at a moment drawn over the second half of
            # the unkilled run's duration instead: outcomes reach the driver in
            # bursts near the end, so kills after the k-th file mostly landed
            # after the publish, while a server's workers write all along.
            by_clock = n % 4 in (1, 2) or args.kill == "worker"
            while not by_clock and lines.count("file") < k and child.poll() is None:
                if time.perf_counter() - started > RUN_TIMEOUT:
                    break
                time.sleep(0.05)
            if by_clock:
                wait = rng.uniform(0.5, 1.0) * duration[mode]
            else:
                wait = rng.uniform(0, AFTER_FILE)
            try:
                child.wait(timeout=wait)
                killed = False
            except subprocess.TimeoutExpired:
                killed = True
            delay = time.perf_counter() - started
            if killed and args.kill == "worker":
                # One encoder actor dies; the driver carries on (Ray restarts the
                # actor and retries its task) or fails and publishes nothing.
                victims = _encoder_actors(child.pid)
                killed = bool(victims)
                for pid in victims[:1]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=RUN_TIMEOUT)
            _kill_group(child)
            store = reader(mode)
            count, problems = check(store, {before, full})
            if not killed:
                problems += _failure(child, log)
            landed = "after publish" if store.current_version() != before_version else "before"
            live = store.open()
            # Rows of a version never published (the next writer deletes them first).
            stray = live.db.count("chunks", f"born > {int(live.version[1:])}")
            done_reading(mode, store)
            run = Run(
                n,
                mode,
                round(delay, 1),
                killed,
                lines.count("file"),
                landed,
                count,
                sorted({before, full}),
                problems,
                stray,
            )
            runs.append(run)
            print(
                f"{n:3d} {mode:6s} delay {delay:5.1f} s killed={killed!s:5s} "
                f"files={run.files_seen:3d} {landed:13s} articles={count} "
                f"unpublished chunk rows={stray} "
                f"{'; '.join(problems) or 'ok'}",
                flush=True,
            )

        finals = {}
        for mode in modes:  # an unkilled run publishes the whole corpus
            log = root / f"final-{mode}.err"
            child = _driver(where[mode], encoder_dir, corpora[mode], log)
            child.communicate(timeout=RUN_TIMEOUT)
            _kill_group(child)
            store = reader(mode)
            count, problems = check(store, {6 + n_bbc[mode]})
            finals[mode] = (count, problems + _failure(child, log))
            done_reading(mode, store)
            print(f"final {mode}: {finals[mode][0]} articles, {finals[mode][1] or 'ok'}")

        killed = [r for r in runs if r.killed]
        violations = sum(len(r.violations) for r in runs) + sum(len(p) for _, p in finals.values())
        print()
        print(
            "| mode | kills | landed before publish | of which left unpublished rows "
            "| after publish | violations |"
        )
        print("|---|---|---|---|---|---|")
        for mode in modes:
            mine = [r for r in killed if r.mode == mode]
            before = sum(r.landed == "before" for r in mine)
            stray = sum(r.landed == "before" and r.unpublished_rows > 0 for r in mine)
            bad = sum(len(r.violations) for r in runs if r.mode == mode) + len(finals[mode][1])
            print(f"| {mode} | {len(mine)} | {before} | {stray} | {len(mine) - before} | {bad} |")
        print(f"\n{len(killed)} kills, {violations} violations")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "durations": duration,
                    "runs": [asdict(r) for r in runs],
                    "finals": {m: {"articles": c, "violations": p} for m, (c, p) in finals.items()},
                    "violations": violations,
                },
                indent=2,
            )
        )
        print(f"wrote {args.out}")
    finally:
        if served is not None:
            served.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
