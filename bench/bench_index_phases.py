"""Where a `qa index` run's memory goes: RSS sampled through the run, by phase.

    python bench/bench_index_phases.py --index-dir INDEX FILE... [--every 0.1]

Runs `python -m qa index FILE... --index-dir INDEX` (this checkout) and reads
its resident memory every `--every` seconds. The phase is told from the
version folder the run writes (`versions/*.tmp`): embedding until the BM25
files appear, then publishing (BM25, sentence spans, then the vectors and the
HNSW graph). Prints the peak of each phase and of the run; `--trace` also
prints every sample. Index into a copy when the index matters: the run adds
the articles.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_server import memory_mb  # noqa: E402


def phase(index: Path) -> str:
    work = [p for p in (index / "versions").glob("*.tmp") if p.is_dir()]
    if not work:
        return "outside a version"
    folder = work[0]
    if (folder / "dense" / "chunks.npy").exists():
        return "publish: vectors and graph"
    if (folder / "spans").exists():
        return "publish: sentence spans"
    if (folder / "lexical").exists():
        return "publish: BM25"
    return "embedding"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--every", type=float, default=0.1)
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "qa", "index", *args.files, "--index-dir", str(args.index_dir)]
    out = subprocess.PIPE
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)  # nosec B603
    started = time.perf_counter()
    peaks: dict[str, float] = {}
    while proc.poll() is None:
        now, where = memory_mb(proc.pid, "VmRSS").get("VmRSS", 0.0), phase(args.index_dir)
        peaks[where] = max(peaks.get(where, 0.0), now)
        if args.trace:
            print(f"{time.perf_counter() - started:7.1f} s {now:7.0f} MB  {where}", flush=True)
        time.sleep(args.every)
    output = proc.stdout.read().strip()
    print(output.splitlines()[-1] if output else f"exit {proc.returncode}")
    for where, peak in peaks.items():
        print(f"  {where:28s} peak {peak:6.0f} MB")
    print(f"  {'whole run':28s} peak {max(peaks.values(), default=0):6.0f} MB")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
