"""Indexing speed: the project's encoder path vs plain sentence-transformers, same chunks, same run.

    python bench/bench_index.py [--corpus DIR] [--limit N] [--repeat R]

1. Reads and chunks the corpus once (default: the 2,225 BBC articles) into the
   exact inputs `qa index` embeds for chunks ("title\\nchunk text").
2. Embeds them R times each, alternating, with
   - the project's path: the int8 ONNX encoder (length-sorted batches of 32,
     2 onnxruntime threads), and
   - sentence-transformers, PyTorch fp32, its own defaults (batch 32, also
     length-sorted internally), on the same inputs;
   and prints chunks/s for both, the ratio, and the cosine between the two.
3. Times a whole `qa index` of the corpus into a fresh folder (parsing,
   chunking, chunk and sentence vectors, SQLite, FAISS, fsync), with its size
   on disk and its peak memory beside the peak of indexing only 400 files: the
   difference should be about the vectors themselves, which FAISS keeps in memory.

Writes its figures to bench/out/index.json; bench/report.py folds them into
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared  # noqa: E402

SHARED = find_shared()


def chunk_inputs(corpus: Path, encoder, limit: int | None) -> list[str]:
    from qa.chunking import chunk_text
    from qa.readers import iter_article_files, read_file

    inputs: list[str] = []
    for path in iter_article_files([corpus]):
        articles, _ = read_file(path)
        for a in articles:
            for c in chunk_text(a.text, encoder.count_tokens):
                inputs.append(f"{a.title}\n{a.text[c.start : c.end]}")
        if limit and len(inputs) >= limit:
            return inputs[:limit]
    return inputs


# Runs `qa index` and reports the process's own high-water mark as it exits.
# (wait4's ru_maxrss would not do: a forked child starts with this benchmark's
# RSS, torch included, as its peak.)
_INDEX_WITH_PEAK = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak_kb", line.split()[1], file=sys.stderr)
atexit.register(peak)
from qa.cli import main
sys.argv[0] = "qa"
main()
"""


def run_index(paths: list[str], index_dir: Path) -> tuple[float, float, str]:
    """`qa index PATHS` in a new process: wall seconds, its own peak RSS (MB), its output."""
    t = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", _INDEX_WITH_PEAK, "index", *paths, "--index-dir", str(index_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - t
    peaks = [line.split()[1] for line in run.stderr.splitlines() if line.startswith("peak_kb")]
    if run.returncode != 0 or not peaks:
        raise SystemExit(f"qa index failed: {(run.stdout + run.stderr).strip()[-500:]}")
    return seconds, int(peaks[-1]) / 1024, run.stdout.strip().splitlines()[-1]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description="indexing throughput, side by side")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "bbc")
    ap.add_argument("--limit", type=int, default=None, help="embed only the first N chunks")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-full", action="store_true", help="skip the whole `qa index` run")
    ap.add_argument(
        "--index-out",
        type=Path,
        default=None,
        help="build the whole-corpus index here and keep it (default: a temp dir)",
    )
    args = ap.parse_args()

    from qa.encoder import OnnxEncoder, TorchEncoder, export_onnx_encoder

    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        enc_dir = export_onnx_encoder(work / "encoder")
        onnx = OnnxEncoder(enc_dir, bulk=True)  # as `qa index` loads it
        inputs = chunk_inputs(args.corpus, onnx, args.limit)
        tokens = sum(onnx.count_tokens(inputs))
        print(f"{len(inputs)} chunks, {tokens / len(inputs):.0f} word pieces on average")
        torch_enc = TorchEncoder()
        runs: dict[str, list[float]] = {"onnx-int8": [], "torch-fp32": []}
        vecs = {}
        for _ in range(args.repeat):
            for name, enc in (("onnx-int8", onnx), ("torch-fp32", torch_enc)):
                t = time.perf_counter()
                vecs[name] = enc.embed(inputs)
                runs[name].append(len(inputs) / (time.perf_counter() - t))
                print(f"  {name:<11} {runs[name][-1]:7.1f} chunks/s")
        cos = (vecs["onnx-int8"] * vecs["torch-fp32"]).sum(axis=1)
        med = {k: statistics.median(v) for k, v in runs.items()}
        result = {
            "corpus": str(args.corpus),
            "chunks": len(inputs),
            "mean_word_pieces": round(tokens / len(inputs), 1),
            "chunks_per_s": {k: round(v, 1) for k, v in med.items()},
            "min_max": {k: [round(min(v), 1), round(max(v), 1)] for k, v in runs.items()},
            "ratio": round(med["onnx-int8"] / med["torch-fp32"], 2),
            "cosine_min": round(float(cos.min()), 4),
            "cosine_mean": round(float(cos.mean()), 4),
        }
        print(
            f"ratio onnx-int8 / torch-fp32: {result['ratio']:.2f}x; "
            f"cosine min {result['cosine_min']}, mean {result['cosine_mean']}"
        )

        if not args.skip_full:
            # Memory against corpus size: the first 400 files, then all of them, each
            # into a fresh index that already holds the encoder (so only indexing is
            # measured; the one-off export runs in its own process either way).
            sample = sorted(p for p in args.corpus.rglob("*.txt"))[:400]
            small_dir = work / "index-400"
            small_dir.mkdir()
            shutil.copytree(enc_dir, small_dir / "encoder")
            _, small_peak, _ = run_index([str(p) for p in sample], small_dir)
            index_dir = args.index_out or work / "index"
            index_dir.mkdir(parents=True)
            shutil.copytree(enc_dir, index_dir / "encoder")
            seconds, peak_mb, summary = run_index([str(args.corpus)], index_dir)
            print(summary)
            manifest = next((index_dir / "versions").glob("v*/manifest.json"))
            counts = json.loads(manifest.read_text())["counts"]
            result["full_index"] = {
                "seconds": round(seconds, 1),
                "articles": counts["articles"],
                "chunks": counts["chunks"],
                "sentences": counts["sentences"],
                "chunks_per_s": round(counts["chunks"] / seconds, 1),
                "peak_rss_mb": round(peak_mb, 1),
                "peak_rss_mb_400_files": round(small_peak, 1),
                "vectors_mb": round((counts["chunks"] + counts["sentences"]) * 384 * 4 / 2**20, 1),
                "bytes_on_disk": dir_size(index_dir),
                "bytes_without_encoder": dir_size(index_dir) - dir_size(index_dir / "encoder"),
                "summary": summary,
            }
            print(
                f"qa index: {seconds:.0f} s, {counts['chunks'] / seconds:.1f} chunks/s, "
                f"{dir_size(index_dir) / 1e6:.0f} MB on disk, peak RSS {peak_mb:.0f} MB "
                f"(400 files: {small_peak:.0f} MB)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
