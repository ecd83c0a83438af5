"""Run every benchmark over the BBC corpus and write bench/RESULTS.md.

    python bench/run_all.py [--quick]

Builds a BBC index (and a BBC + XQuAD one for answer quality) in a temporary
folder, then runs, one after the other on this machine:
  bench_index.py   indexing throughput, project path vs sentence-transformers fp32
  bench_ask.py     cold `qa ask` in a new process, ONNX vs torch encoder
  bench_server.py  POST /api/ask under 8 concurrent clients, server RSS
  bench_answer_speed.py  answer time of the full pipeline beside the plain one
  qa eval          answer quality on the seed and XQuAD questions
  bench_quality.py before/after the trained scorer and reader: XQuAD, WikiQA,
                   SQuAD 2.0 dev, seed
and folds the figures into bench/RESULTS.md (machine, date, commands).
The throughput ratio uses the first 2,000 chunks (500 with --quick, which also
makes fewer runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared, run_qa  # noqa: E402

SHARED = find_shared()
OUT = ROOT / "bench" / "out"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, env=ENV, cwd=ROOT)


def qa(*args: str) -> str:
    return run_qa(*args)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description="all benchmarks → bench/RESULTS.md")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="qa-bench-all-"))
    try:
        bbc = work / "bbc"
        xq = work / "bbc-xquad"
        # The throughput ratio on a sample of the chunks (the torch side is slow), then
        # the whole `qa index` of the corpus, timed, whose index the other benchmarks use.
        run(
            "bench/bench_index.py",
            "--limit",
            "500" if args.quick else "2000",
            "--repeat",
            "1" if args.quick else "3",
            "--index-out",
            str(bbc),
        )
        shutil.copytree(bbc, xq)
        qa(
            "index",
            str(SHARED / "eval" / "xquad-en-dev.json"),
            str(SHARED / "corpus" / "seed"),
            "--index-dir",
            str(xq),
        )
        conv = work / "conversations"  # + the sample articles the conversation set asks about
        shutil.copytree(xq, conv)
        qa("index", str(ROOT / "samples" / "articles"), "--index-dir", str(conv))
        run(
            "bench/bench_conversation.py",
            *("--index-dir", str(conv), "--repeat", "1" if args.quick else "3"),
        )
        run("bench/bench_ask.py", "--index-dir", str(bbc), "--runs", "4" if args.quick else "10")
        requests = "500" if args.quick else "2000"
        server_runs = {
            # The answer cache's case: a few popular questions, asked again and again.
            "server": ["--questions", "repeated"],
            # Every answer computed: saturation (closed loop), then the target load
            # (100 answers/s due from 8 clients), then one client alone.
            "server-nocache": ["--no-cache", "--questions", "distinct"],
            "server-rate100": ["--no-cache", "--questions", "distinct", "--rate", "100"],
            "server-1client": ["--no-cache", "--questions", "distinct", "--clients", "1"],
        }
        counts = {"server-rate100": "1000" if args.quick else "3000", "server-1client": "300"}
        for name, extra in server_runs.items():
            count = counts.get(name, requests)
            run(
                "bench/bench_server.py",
                *("--index-dir", str(bbc), "--requests", count, *extra, "--out", name),
            )
        run(
            "bench/bench_answer_speed.py",
            "--index-dir",
            str(xq),
            "--repeat",
            "1" if args.quick else "3",
        )
        # Before/after on every question set of the scorer and reader work.
        run("bench/bench_quality.py", "--bbc-index", str(bbc), "--work", str(work / "quality"))
        quality = {
            "xquad_with_bbc": json.loads(
                qa(
                    "eval",
                    str(SHARED / "eval" / "xquad-en-dev.json"),
                    "--json",
                    "--index-dir",
                    str(xq),
                )
            ),
            "xquad_bbc_only": json.loads(
                qa(
                    "eval",
                    str(SHARED / "eval" / "xquad-en-dev.json"),
                    "--json",
                    "--index-dir",
                    str(bbc),
                )
            ),
            "seed_with_bbc": json.loads(
                qa(
                    "eval",
                    str(SHARED / "eval" / "seed-questions.jsonl"),
                    "--json",
                    "--index-dir",
                    str(xq),
                )
            ),
        }
        (OUT / "quality.json").write_text(json.dumps(quality, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2))
    run("bench/report.py")


if __name__ == "__main__":
    main()
