"""Answer quality and speed on the two stores, side by side, on the same articles.

    nice python bench/bench_stores.py QUESTIONS --index-dir DIR --store URI
        [--reuse-directory REPORT.json] [--out bench/out/stores.json]

Runs `qa eval QUESTIONS --json` on the index directory DIR and on the Milvus
store URI (built from the same article files with `qa index ... --store URI`;
its encoder folder: DIR's, when `--index-dir` is given to that command too),
then prints quote@1 (top1_accuracy), the share answered and its complement
(abstention on a set where every question is answerable), and answer p50/p95.
The issue's bar: Milvus within ±0.01 of the directory on quote@1 and abstention.
`--reuse-directory` takes an earlier `qa eval --json` report of DIR instead of
asking again (the directory side is the slow half on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import run_qa  # noqa: E402

FIGURES = (
    ("quote@1", "top1_accuracy"),
    ("quote@3", "top3_accuracy"),
    ("answered", "answered_rate"),
    ("p50 ms", "latency_ms_p50"),
    ("p95 ms", "latency_ms_p95"),
)


def evaluate(questions: Path, index_dir: Path, store: str | None) -> dict:
    args = ["eval", str(questions), "--json", "--index-dir", str(index_dir)]
    started = time.time()
    report = json.loads(run_qa(*args, *(["--store", store] if store else [])))
    report.pop("misses", None)
    report["seconds"] = round(time.time() - started, 1)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--store", required=True, metavar="URI")
    ap.add_argument("--reuse-directory", type=Path, default=None, metavar="REPORT")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stores.json")
    args = ap.parse_args()
    if not args.questions.is_file():
        ap.error(f"{args.questions}: no such file")
    if args.reuse_directory:
        directory = json.loads(args.reuse_directory.read_text())
        directory.pop("misses", None)
    else:
        directory = evaluate(args.questions, args.index_dir, None)
    milvus = evaluate(args.questions, args.index_dir, args.store)
    print("| figure | directory | milvus | difference |")
    print("|---|---:|---:|---:|")
    for name, key in FIGURES:
        a, b = directory.get(key), milvus.get(key)
        diff = f"{b - a:+.4f}" if a is not None and b is not None else ""
        print(f"| {name} | {a} | {b} | {diff} |")
    abst = [1 - r["answered_rate"] for r in (directory, milvus)]
    print(f"| abstention | {abst[0]:.4f} | {abst[1]:.4f} | {abst[1] - abst[0]:+.4f} |")
    within = (
        abs(milvus["top1_accuracy"] - directory["top1_accuracy"]) <= 0.01
        and abs(abst[1] - abst[0]) <= 0.01
    )
    print("within ±0.01:", "yes" if within else "NO")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"directory": directory, "milvus": milvus, "within": within}, indent=2)
    )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
