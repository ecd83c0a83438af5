"""`qa index` on Ray against the single-process path, into Milvus Lite.

The same corpus (default: the 2,225 BBC articles) is indexed into a fresh
Milvus Lite file by each mode, one after the other in this process:

- plain:  `qa.indexer.index_paths`, one process (the encoder on 2 threads);
- ray:    `qa.ray_ingest.index_with_ray` through a local Ray cluster started
          for the run (its start-up counted), the encoder actors computing and
          this driver writing (Milvus Lite: one process per file);
- ray-workers-write: the same, with the Ray workers writing their rows
          themselves into Milvus Lite's server process through its socket,
          as they would into a Milvus server.

Then it checks that every mode holds the same articles (ids and chunk counts),
chunk spans, and the same top quote for `--questions` questions (the titles of
randomly chosen articles, asked as questions), and prints wall times.

    nice python bench/bench_ray.py [--corpus DIR] [--modes plain,ray] [--workers 2]

Writes bench/out/ray.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared  # noqa: E402
from qa.answering import Answerer  # noqa: E402
from qa.encoder import OnnxEncoder, export_onnx_encoder  # noqa: E402
from qa.indexer import index_paths  # noqa: E402
from qa.ray_ingest import index_with_ray, ray_cluster  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.stores.milvus import MilvusStore  # noqa: E402
from qa.stores.uri import StoreURI  # noqa: E402

MODES = ("plain", "ray", "ray-workers-write")


def _index(mode: str, corpus: Path, root: Path, encoder_dir: Path, workers: int) -> dict:
    db = root / f"{mode}.db"
    store = MilvusStore(f"milvus://{db}", encoder_dir=encoder_dir)
    started = time.perf_counter()
    ray_start = 0.0
    if mode == "plain":
        report = index_paths([corpus], store)
    else:
        with ray_cluster(None, workers):
            ray_start = time.perf_counter() - started
            target = store
            if mode == "ray-workers-write":
                from milvus_lite.server_manager import server_manager_instance

                socket = server_manager_instance.start_and_get_uri(str(db))
                target = MilvusStore(StoreURI("server", socket), encoder_dir=encoder_dir)
            report = index_with_ray([corpus], target, workers=workers)
    wall = time.perf_counter() - started
    view = store.open()
    return {
        "mode": mode,
        "store": store,
        "wall_s": round(wall, 1),
        "ray_start_s": round(ray_start, 1),
        "report": report.model_dump(exclude={"seconds", "problems"}),
        "problems": len(report.problems),
        "articles": view.n_articles,
        "chunks": view.n_chunks,
        "sentences": view.n_sentences,
    }


def _answers(store: MilvusStore, encoder_dir: Path, questions: list[str], root: Path) -> list:
    # The store's URI, as `qa serve --store` would be given it.
    settings = Settings(index_dir=root / "local", store=store.uri.shown)
    answerer = Answerer(settings, encoder=OnnxEncoder(encoder_dir))
    out = []
    for q in questions:
        a = answerer.ask(q)
        top = a.quotes[0] if a.quotes else None
        out.append([a.answered, top and [top.article.id, top.start, top.end]])
    return out


def _spans(store: MilvusStore) -> dict[str, list]:
    view = store.open()
    out = {}
    for a in view.articles():
        chunks = view.chunks_by_id(view.chunks_of_articles([a.id]).tolist())
        out[a.id] = [(c.start, c.end) for c in chunks]
    return out


def report(runs: list[dict], encoder_dir: Path, root: Path, args) -> None:
    first = runs[0]["store"].open()
    rng = random.Random(args.seed)
    titles = [a.title for a in first.articles()]
    questions = [f"{t}?" for t in rng.sample(titles, min(args.questions, len(titles)))]
    want_answers = _answers(runs[0]["store"], encoder_dir, questions, root)
    want_spans = _spans(runs[0]["store"])
    for run in runs:
        run["same_counts"] = all(
            run[k] == runs[0][k] for k in ("articles", "chunks", "sentences", "report")
        )
        got = _answers(run["store"], encoder_dir, questions, root)
        run["same_answers"] = sum(a == b for a, b in zip(got, want_answers, strict=True))
        run["same_spans"] = _spans(run["store"]) == want_spans
        run["store"].close()
        del run["store"]
    plain = next((r for r in runs if r["mode"] == "plain"), None)
    print()
    print(
        "| mode | wall | vs plain | Ray start-up | articles | chunks | same counts, spans "
        f"| same top quote ({len(questions)} questions) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        ratio = f"{run['wall_s'] / plain['wall_s']:.2f}×" if plain else "-"
        print(
            f"| {run['mode']} | {run['wall_s']} s | {ratio} | {run['ray_start_s']} s "
            f"| {run['articles']} | {run['chunks']} | {run['same_counts']}, "
            f"{run['same_spans']} | {run['same_answers']}/{len(questions)} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"corpus": str(args.corpus), "questions": questions, "runs": runs}, indent=2)
    )
    print(f"\nwrote {args.out}")


def compare_only(args) -> None:
    """The comparison and table over stores a run already wrote (MODE.db in a folder)."""
    walls = dict(w.split("=") for w in args.walls.split(",") if w)
    runs = []
    for mode in args.modes.split(","):
        store = MilvusStore(f"milvus://{args.compare / (mode + '.db')}")
        view = store.open()
        counts = view.manifest["counts"]
        runs.append(
            {
                "mode": mode,
                "store": store,
                "wall_s": float(walls.get(mode, "nan")),
                "ray_start_s": 0.0,
                "report": None,  # the run's report is in its log
                "articles": counts["articles"],
                "chunks": counts["chunks"],
                "sentences": counts["sentences"],
            }
        )
    report(runs, args.compare / "encoder", args.compare, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=find_shared() / "corpus" / "bbc")
    parser.add_argument("--modes", default="plain,ray")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ray.json")
    parser.add_argument(
        "--compare",
        type=Path,
        help="only compare the MODE.db files a run left in this folder (timings from --walls)",
    )
    parser.add_argument("--walls", default="", help="with --compare: MODE=SECONDS,...")
    args = parser.parse_args()
    if args.compare:
        compare_only(args)
        return
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        raise SystemExit(f"--modes takes {', '.join(MODES)}")

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        encoder_dir = export_onnx_encoder(root / "encoder")
        runs = []
        for mode in modes:
            run = _index(mode, args.corpus, root, encoder_dir, args.workers)
            print(
                f"{mode:>18}: {run['wall_s']:7.1f} s (Ray start-up {run['ray_start_s']} s), "
                f"{run['articles']} articles, {run['chunks']} chunks, {run['sentences']} sentences",
                flush=True,
            )
            runs.append(run)
        report(runs, encoder_dir, root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
