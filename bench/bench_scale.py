"""Scale curves of the embedded index: 10k, 30k and 100k Wikipedia articles.

    python bench/bench_scale.py --work /tmp/scale            # build and measure what is left
    python bench/bench_scale.py --work /tmp/scale --sizes 10000   # only up to 10k
    python bench/bench_scale.py --work /tmp/scale --report   # table into RESULTS.md, PNG

Resumable and incremental, because a 100k build takes hours here: the index in
WORK/index grows in slices (`--slice` articles, one `qa index` run each, each
publishing a version), and every figure is saved in WORK/scale.json as soon as
it is measured. A killed run loses at most the slice it was in; run the same
command again and it goes on from there. Once an index holds a size's articles,
that size's serving figures are measured: time to open a version and the RSS it
adds (measured on a copy of the index at that size, WORK/at-SIZE, so
`--remeasure SIZE` can repeat them on a quiet machine), server RSS after start,
answer p50/p95 through HTTP with the answer cache off (one client, then 8),
cold `qa ask`, and the index's size on disk.

Articles: the first N lines of /work/shared/corpus/wiki/enwiki-2014-100k.jsonl.gz
(100,000 English Wikipedia articles), cut into WORK/slices/*.jsonl.gz.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess  # nosec B404 - runs this package with fixed arguments
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ask import one as cold_ask  # noqa: E402
from bench.bench_index import dir_size, run_index  # noqa: E402
from bench.bench_server import QUESTIONS, distinct_questions, memory_mb, rss_mb  # noqa: E402
from bench.load import run_load  # noqa: E402
from bench.shared import find_shared  # noqa: E402

SIZES = (10_000, 30_000, 100_000)
WIKI = Path("corpus") / "wiki" / "enwiki-2014-100k.jsonl.gz"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
SEQUENTIAL_REQUESTS = 200
CONCURRENT_REQUESTS = 400


def load_state(work: Path) -> dict:
    path = work / "scale.json"
    return json.loads(path.read_text()) if path.exists() else {"slices": {}, "sizes": {}}


def save_state(work: Path, state: dict) -> None:
    tmp = work / "scale.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, work / "scale.json")


def slice_file(work: Path, lo: int, hi: int) -> Path:
    """Articles lo..hi-1 of the Wikipedia file, as their own .jsonl.gz (made once)."""
    path = work / "slices" / f"{lo:06d}-{hi:06d}.jsonl.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        wiki = find_shared() / WIKI
        with gzip.open(wiki, "rt", encoding="utf-8") as src, gzip.open(tmp, "wt") as out:
            out.writelines(itertools.islice(src, lo, hi))
        os.replace(tmp, path)
    return path


def build(work: Path, state: dict, target: int, step: int) -> None:
    index = work / "index"
    for lo in range(0, target, step):
        hi = min(lo + step, target)
        key = f"{lo}-{hi}"
        if key in state["slices"]:
            continue
        path = slice_file(work, lo, hi)
        print(f"indexing articles {lo}..{hi}", flush=True)
        seconds, peak, summary = run_index([str(path)], index)
        chunks = int(re.search(r"(\d+) chunks", summary).group(1))
        state["slices"][key] = {
            "articles": hi,
            "seconds": round(seconds, 1),
            "chunks": chunks,
            "chunks_per_s": round(chunks / seconds, 1),
            "peak_rss_mb": round(peak, 1),
            "summary": summary,
        }
        save_state(work, state)
        print(f"  {summary} (peak RSS {peak:.0f} MB)", flush=True)


_OPEN = """
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import numpy, faiss, bm25s  # libraries loaded before the clock starts
from qa.store import IndexStore
before = rss()
t = time.perf_counter()
snap = IndexStore(sys.argv[1]).open()
print(json.dumps({"open_s": time.perf_counter() - t, "open_rss_mb": rss() - before,
                  "ann": snap.dense.ann is not None}))
"""


def measure_open(index: Path) -> dict:
    run = subprocess.run(  # nosec B603 - this interpreter and fixed arguments
        [sys.executable, "-c", _OPEN, str(index)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(run.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_server(index: Path, questions: list[str]) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QA_RATE_LIMIT_PER_MINUTE": "0",
        "QA_ANSWER_CACHE": "0",  # every request computed
    }
    cmd = [sys.executable, "-m", "qa", "serve", "--port", str(port), "--index-dir", str(index)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # nosec B603
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=2) as r:  # nosec B310
                    health = json.loads(r.read())
                    break
            except OSError as exc:
                if server.poll() is not None or time.perf_counter() - started > 300:
                    raise SystemExit(
                        "server did not start: " + server.stderr.read().decode()
                    ) from exc
                time.sleep(0.2)
        out = {"startup_s": round(time.perf_counter() - started, 2), "chunks": health["chunks"]}
        out["server_rss_mb"] = round(rss_mb(server.pid), 1)
        seq = asyncio.run(run_load(base, questions, 1, SEQUENTIAL_REQUESTS, 600))
        par = asyncio.run(run_load(base, questions, 8, CONCURRENT_REQUESTS, 600))
        out["server_rss_mb_after"] = round(rss_mb(server.pid), 1)
        # Mapped index files count in RSS as they are read; the kernel can drop
        # those pages (they are the files' cache), unlike the process's own memory.
        split = memory_mb(server.pid, "RssAnon", "RssFile")
        out["server_rss_anon_mb_after"] = round(split.get("RssAnon", 0.0), 1)
        out["server_rss_file_mb_after"] = round(split.get("RssFile", 0.0), 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name, result in (("seq", seq), ("c8", par)):
        out[f"{name}_p50_ms"] = round(result.latency(50), 1)
        out[f"{name}_p95_ms"] = round(result.latency(95), 1)
        out[f"{name}_answers_per_s"] = round(result.answers_per_s, 1)
        out[f"{name}_errors"] = result.failed
    return out


def snapshot(work: Path, size: int) -> Path:
    """A copy of the index as it stood at `size` articles (its live version and encoder), so
    the serving figures can be measured again on a quiet machine after the build goes on."""
    index, keep = work / "index", work / f"at-{size}"
    if not keep.exists():
        tmp = work / f"at-{size}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        current = (index / "CURRENT").read_text().strip()
        shutil.copytree(index / "versions" / current, tmp / "versions" / current)
        shutil.copytree(index / "encoder", tmp / "encoder")
        (tmp / "CURRENT").write_text(current + "\n")
        os.replace(tmp, keep)
    return keep


def measure_size(work: Path, state: dict, size: int) -> None:
    index = snapshot(work, size)
    print(f"measuring at {size} articles", flush=True)
    figures = {"articles": size}
    version = index / "versions" / (index / "CURRENT").read_text().strip()
    figures["index_mb"] = round((dir_size(version) + dir_size(index / "encoder")) / 1e6, 1)
    figures["vectors_mb"] = round(dir_size(version / "dense") / 1e6, 1)
    figures.update(measure_open(index))
    figures.update(measure_server(index, distinct_questions()))
    walls = [cold_ask(index, q, "onnx")[0] for q in QUESTIONS[:3]]
    figures["cold_ask_s"] = round(statistics.median(walls), 2)
    state["sizes"][str(size)] = figures
    save_state(work, state)
    print(json.dumps(figures, indent=2), flush=True)


def step_figures(state: dict, size: int, previous: int) -> dict:
    """The indexing figures of the step that took the index from `previous` to `size`."""
    slices = [s for s in state["slices"].values() if previous < s["articles"] <= size]
    seconds = sum(s["seconds"] for s in slices)
    chunks = sum(s["chunks"] for s in slices)
    return {
        "index_s": round(seconds),
        "chunks_added": chunks,
        "chunks_per_s": round(chunks / seconds, 1) if seconds else None,
        "peak_rss_mb": max((s["peak_rss_mb"] for s in slices), default=None),
    }


def report(work: Path, state: dict) -> None:
    rows = []
    previous = 0
    for size in sorted(int(s) for s in state["sizes"]):
        rows.append({**step_figures(state, size, previous), **state["sizes"][str(size)]})
        previous = size
    if not rows:
        raise SystemExit("no size measured yet")
    header = (
        "| articles | chunks | `qa index` step | chunks/s | peak RSS index | index on disk "
        "| open | server RSS start → after load | seq p50 / p95 | 8 clients p50 / p95 "
        "| cold `qa ask` | dense |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )

    def own(r: dict) -> str:
        anon = r.get("server_rss_anon_mb_after")
        return f" ({anon:.0f} own)" if anon is not None else ""

    lines = [
        f"| {r['articles']:,} | {r['chunks']:,} | {r['index_s'] / 60:.0f} min "
        f"(+{r['chunks_added']:,} chunks) | {r['chunks_per_s']} | {r['peak_rss_mb']:.0f} MB "
        f"| {r['index_mb']:.0f} MB | {r['open_s'] * 1000:.0f} ms, +{r['open_rss_mb']:.0f} MB "
        f"| {r['server_rss_mb']:.0f} → {r.get('server_rss_mb_after', 0):.0f} MB{own(r)} "
        f"| {r['seq_p50_ms']} / {r['seq_p95_ms']} ms "
        f"| {r['c8_p50_ms']} / {r['c8_p95_ms']} ms | {r['cold_ask_s']} s "
        f"| {'HNSW (SQ8), exact re-score' if r['ann'] else 'exact'} |"
        for r in rows
    ]
    table = header + "\n".join(lines) + "\n"
    results = ROOT / "bench" / "RESULTS.md"
    text = results.read_text()
    block = f"{BEGIN}\n{table}{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    else:
        text += f"\n{block}\n"
    results.write_text(text)
    plot(rows, state, ROOT / "bench" / "scale.png")
    print(table)


def plot(rows: list[dict], state: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["articles"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    slices = sorted(state["slices"].values(), key=lambda s: s["articles"])
    ax = axes[0][0]
    ax.plot([s["articles"] for s in slices], [s["peak_rss_mb"] for s in slices], "o-")
    ax.set_title("peak RSS of each `qa index` slice (MB)")
    ax = axes[0][1]
    ax.plot([s["articles"] for s in slices], [s["chunks_per_s"] for s in slices], "o-")
    ax.set_title("indexing throughput per slice (chunks/s)")
    ax = axes[1][0]
    for key, label in (("seq_p50_ms", "p50, 1 client"), ("seq_p95_ms", "p95, 1 client")):
        ax.plot(sizes, [r[key] for r in rows], "o-", label=label)
    for key, label in (("c8_p50_ms", "p50, 8 clients"), ("c8_p95_ms", "p95, 8 clients")):
        ax.plot(sizes, [r[key] for r in rows], "s--", label=label)
    ax.set_title("answer latency through HTTP (ms)")
    ax.legend()
    ax = axes[1][1]
    ax.plot(sizes, [r["server_rss_mb"] for r in rows], "o-", label="server RSS after start")
    ax.plot(sizes, [r["index_mb"] for r in rows], "s-", label="index on disk")
    ax.plot(sizes, [r["cold_ask_s"] * 1000 for r in rows], "^-", label="cold qa ask (ms)")
    ax.set_title("memory (MB), disk (MB), cold ask (ms)")
    ax.legend()
    for ax in axes.flat:
        ax.set_xlabel("articles")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description="scale curves, resumable (see the module doc)")
    ap.add_argument("--work", type=Path, required=True, help="index, slices and figures live here")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="article counts to reach")
    ap.add_argument("--slice", type=int, default=5_000, help="articles per `qa index` run")
    ap.add_argument("--report", action="store_true", help="write RESULTS.md's table and the PNG")
    ap.add_argument(
        "--remeasure", type=int, metavar="SIZE", help="measure SIZE's serving figures again"
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    state = load_state(args.work)
    if args.report:
        report(args.work, state)
        return
    if args.remeasure:
        state["sizes"].pop(str(args.remeasure), None)
        measure_size(args.work, state, args.remeasure)
        return
    for size in sorted(int(s) for s in args.sizes.split(",")):
        build(args.work, state, size, args.slice)
        if str(size) not in state["sizes"]:
            measure_size(args.work, state, size)


if __name__ == "__main__":
    main()
