"""Exact against approximate dense search: recall@10, latency, build time, memory.

    python bench/bench_ann.py --index-dir INDEX [--synthetic 300000,1000000] [--queries 300]
    python bench/bench_ann.py --index-dir INDEX --served

`--served` measures the index's own chunk search as `qa serve` runs it (its
HNSW graph, tombstones and efSearch, or exact search below the threshold)
against exact search over the same chunk vectors, instead of building
candidates: the recall a user of that index gets.

Real vectors: every chunk and sentence vector of INDEX (the same model's
embeddings of real text), searched with real questions (XQuAD's, embedded with
the index's encoder). Synthetic: unit vectors drawn around 3,000 centres, for
the latency curve at sizes no index here has yet; their recall says less than
the real one. Candidates, both over 8-bit codes and both re-scored exactly from
the float vectors as qa does (the best 100 candidates): IVF (2·sqrt(n) lists)
probing a share of its lists, and HNSW (32 links, qa/dense.py's build) at
several efSearch. One thread, as the server searches. Writes bench/out/ann.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared  # noqa: E402
from qa.dense import MIN_CANDIDATES, DenseIndex, VectorSet, _top, build_hnsw  # noqa: E402
from qa.encoder import DIM, load_encoder  # noqa: E402
from qa.evaluation import load_questions  # noqa: E402

K = 10


def real_vectors(index_dir: Path, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    version = index_dir / "versions" / (index_dir / "CURRENT").read_text().strip()
    dense = DenseIndex.open(version)
    base = np.concatenate([np.asarray(dense.chunks.vectors), np.asarray(dense.sentences.vectors)])
    questions = [q.question for q in load_questions(find_shared() / "eval" / "xquad-en-dev.json")]
    encoder = load_encoder(index_dir / "encoder")
    queries = encoder.embed(questions[:n_queries])
    return base.astype(np.float32), np.asarray(queries, dtype=np.float32)


def synthetic(n: int, n_queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3000, DIM)).astype(np.float32)
    base = np.empty((n, DIM), np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        pick = rng.integers(0, len(centres), hi - lo)
        block = centres[pick] + 0.9 * rng.standard_normal((hi - lo, DIM)).astype(np.float32)
        base[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    queries = base[rng.integers(0, n, n_queries)] + 0.05 * rng.standard_normal(
        (n_queries, DIM)
    ).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return base, queries


def timed(fn, queries: np.ndarray) -> tuple[list[np.ndarray], float, float]:
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return found, float(np.percentile(times, 50)), float(np.percentile(times, 95))


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(
        np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, truth, strict=True)])
    )


def rescored(index, base: np.ndarray, params) -> callable:
    """Search `index` for candidates, re-score them exactly, keep the best K."""

    def search(q: np.ndarray) -> np.ndarray:
        _, found = index.search(q.reshape(1, -1), MIN_CANDIDATES, params=params)
        found = found[0][found[0] >= 0]
        return _top(found, base[found - 1] @ q, K)[0]

    return search


def measure(name: str, base: np.ndarray, queries: np.ndarray) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(1)
    ids = np.arange(1, len(base) + 1, dtype=np.int64)
    n = len(base)
    rows = []

    def row(method: str, found, p50, p95, build_s, memory_mb) -> None:
        rows.append({"set": name, "n": n, "method": method, "recall": recall(found, truth)})
        rows[-1] |= {"p50_ms": p50, "p95_ms": p95, "build_s": build_s, "memory_mb": memory_mb}
        print(rows[-1], flush=True)

    truth, p50, p95 = timed(lambda q: _top(ids, base @ q, K)[0], queries)
    row("exact", truth, p50, p95, 0, base.nbytes / 1e6)

    nlist = int(2 * np.sqrt(n))
    t = time.perf_counter()
    ivf = faiss.index_factory(DIM, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(1).choice(n, size=min(n, 40 * nlist), replace=False)
    ivf.train(base[np.sort(sample)])
    ivf.add_with_ids(base, ids)
    build_s = time.perf_counter() - t
    for share in (0.05, 0.1, 0.2, 0.3):
        params = faiss.SearchParametersIVF(nprobe=max(1, int(share * nlist)))
        found, p50, p95 = timed(rescored(ivf, base, params), queries)
        method = f"IVF{nlist},SQ8 nprobe={params.nprobe} ({share:.0%})"
        row(method, found, p50, p95, build_s, ivf.ntotal * (DIM + 8) / 1e6)
    del ivf

    t = time.perf_counter()
    hnsw = build_hnsw(VectorSet(ids, base))
    build_s = time.perf_counter() - t
    memory_mb = hnsw.ntotal * (DIM + 32 * 2 * 4 + 16) / 1e6  # codes, level-0 links, ids
    for ef in (64, 128, 256):
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        found, p50, p95 = timed(rescored(hnsw, base, params), queries)
        row(f"HNSW32,SQ8 efSearch={ef}", found, p50, p95, build_s, memory_mb)
    return rows


def served(index_dir: Path, n_queries: int) -> list[dict]:
    """Recall@10 and latency of INDEX's chunk search as served, against exact."""
    version = index_dir / "versions" / (index_dir / "CURRENT").read_text().strip()
    dense = DenseIndex.open(version)
    questions = [q.question for q in load_questions(find_shared() / "eval" / "xquad-en-dev.json")]
    queries = np.asarray(load_encoder(index_dir / "encoder").embed(questions[:n_queries]))
    ids = np.asarray(dense.chunks.ids)
    vectors = dense.chunks.vectors
    truth, e50, e95 = timed(lambda q: _top(ids, vectors @ q, K)[0], queries)
    found, p50, p95 = timed(lambda q: dense.search(q, K)[0], queries)
    method = "exact" if dense.ann is None else f"HNSW as served ({len(dense.tombstones)} removed)"
    name, n = f"served ({index_dir.name})", len(ids)
    rows = [
        {"set": name, "n": n, "method": "exact", "recall": 1.0, "p50_ms": e50, "p95_ms": e95},
        {"set": name, "n": n, "method": method, "recall": recall(found, truth)}
        | {"p50_ms": p50, "p95_ms": p95},
    ]
    for r in rows:
        r |= {"build_s": 0.0, "memory_mb": 0.0}
        print(r, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description="exact vs approximate dense search")
    ap.add_argument("--index-dir", type=Path, help="an index whose vectors to search")
    ap.add_argument("--synthetic", default="", help="sizes of synthetic sets, e.g. 300000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--served", action="store_true", help="INDEX's own search against exact")
    args = ap.parse_args()
    rows = []
    if args.index_dir and args.served:
        rows += served(args.index_dir, args.queries)
    elif args.index_dir:
        base, queries = real_vectors(args.index_dir, args.queries)
        rows += measure(f"real ({args.index_dir.name})", base, queries)
    for n in [int(s) for s in args.synthetic.split(",") if s]:
        base, queries = synthetic(n, args.queries)
        rows += measure("synthetic", base, queries)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ann.json").write_text(json.dumps(rows, indent=2))
    print("| set | vectors | method | recall@10 | p50 | p95 | build | memory |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['set']} | {r['n']:,} | {r['method']} | {r['recall']:.3f} | "
            f"{r['p50_ms']:.2f} ms | {r['p95_ms']:.2f} ms | {r['build_s']:.0f} s | "
            f"{r['memory_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
