"""Cold `qa ask`: a new process per question, wall time and peak memory, both encoders.

    python bench/bench_ask.py --index-dir INDEX [--runs N]

Runs `qa ask QUESTION --json` in a fresh process N times with the index's
ONNX encoder (the default path: no torch import) and N times with
QA_ENCODER=torch (sentence-transformers), alternating, under /usr/bin/time
for the peak resident memory. Prints medians and min-max; writes
bench/out/ask.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_server import QUESTIONS  # noqa: E402  (one question list for every benchmark)


def one(index_dir: Path, question: str, encoder: str) -> tuple[float, float]:
    env = {**os.environ, "QA_ENCODER": encoder, "PYTHONPATH": str(ROOT)}
    cmd = [
        "/usr/bin/time",
        "-f",
        "%M",
        sys.executable,
        "-m",
        "qa",
        "ask",
        question,
        "--json",
        "--index-dir",
        str(index_dir),
    ]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise SystemExit(f"qa ask failed: {run.stderr.strip()}")
    json.loads(run.stdout)
    peak_kb = float(run.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description="cold qa ask, side by side")
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {
        "onnx": {"wall_s": [], "peak_mb": []},
        "torch": {"wall_s": [], "peak_mb": []},
    }
    one(args.index_dir, QUESTIONS[0], "onnx")  # warm the page cache once, untimed
    for i in range(args.runs):
        q = QUESTIONS[i % len(QUESTIONS)]
        for name in ("onnx", "torch"):
            wall, peak = one(args.index_dir, q, name)
            results[name]["wall_s"].append(wall)
            results[name]["peak_mb"].append(peak)
            print(f"  {name:<5} {wall:5.2f} s {peak:6.0f} MB  {q}")
    summary = {
        name: {
            "median_wall_s": round(statistics.median(r["wall_s"]), 3),
            "min_max_wall_s": [round(min(r["wall_s"]), 3), round(max(r["wall_s"]), 3)],
            "median_peak_mb": round(statistics.median(r["peak_mb"]), 1),
            "max_peak_mb": round(max(r["peak_mb"]), 1),
        }
        for name, r in results.items()
    }
    summary["runs"] = args.runs
    summary["index_dir"] = str(args.index_dir)
    for name in ("onnx", "torch"):
        s = summary[name]
        print(
            f"{name:<5} median {s['median_wall_s']:.2f} s (min-max {s['min_max_wall_s']}), "
            f"peak {s['median_peak_mb']:.0f} MB (max {s['max_peak_mb']:.0f})"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ask.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
