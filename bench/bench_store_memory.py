"""What writing and opening a version costs in memory, without the encoder's share.

    python bench/bench_store_memory.py --articles 5000 [--checkout DIR] [--work /tmp/x]

Feeds the first N Wikipedia articles (real text, real chunking and search terms)
with random unit vectors in place of embeddings through `IndexStore.writer`, in
a fresh process importing `qa` from DIR (this checkout by default, or another
commit's `git archive`), and reports that process's peak RSS, the seconds the
publish took, then the time to open the version and the RSS opening it added.
Embedding is left out on purpose: it costs the same per batch at any size, and
at ~20 chunks/s here it would make a 100k-article run take hours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 - runs this interpreter with fixed arguments
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = r"""
import gzip, itertools, json, sys, time
import numpy as np
from pathlib import Path
from qa.encoder import DIM, load_encoder
from qa.indexer import chunk_records, stored_article
from qa.readers import _article_from_object
from qa.store import IndexStore

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

wiki, n, index, encoder_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
encoder = load_encoder(Path(encoder_dir))
rng = np.random.default_rng(0)
def unit(rows):
    v = rng.standard_normal((rows, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
store = IndexStore(index)
baseline = status("VmRSS:")
t = time.perf_counter()
with store.writer() as writer, gzip.open(wiki, "rt", encoding="utf-8") as fh:
    for number, line in enumerate(itertools.islice(fh, n), start=1):
        src = _article_from_object(json.loads(line), f"wiki#{number}", "wiki", [])
        article = stored_article(src)
        records = chunk_records(article, encoder)
        if records:
            n_sents = sum(len(c.sentences) for c in records)
            writer.put(article, records, unit(len(records)), unit(n_sents))
    fed = time.perf_counter() - t
    t = time.perf_counter()
publish = time.perf_counter() - t
peak = status("VmHWM:")
before = status("VmRSS:")
t = time.perf_counter()
snap = store.open()
opened = time.perf_counter() - t
print(json.dumps({
    "articles": n, "chunks": snap.n_chunks, "sentences": snap.n_sentences,
    "baseline_rss_mb": round(baseline), "peak_rss_mb": round(peak),
    "feed_s": round(fed, 1), "publish_s": round(publish, 1),
    "open_s": round(opened, 3), "open_rss_mb": round(status("VmRSS:") - before, 1),
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description="store memory at a size (see the module doc)")
    ap.add_argument("--articles", type=int, required=True)
    ap.add_argument("--checkout", type=Path, default=ROOT, help="where `qa` is imported from")
    ap.add_argument("--work", type=Path, default=Path("/tmp/qa-store-memory"))
    ap.add_argument("--encoder-dir", type=Path, required=True, help="an index's encoder/ folder")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.shared import find_shared

    index = args.work / f"{args.checkout.name}-{args.articles}"
    subprocess.run(["rm", "-rf", str(index)], check=True)  # nosec B603 B607
    index.mkdir(parents=True)
    wiki = find_shared() / "corpus" / "wiki" / "enwiki-2014-100k.jsonl.gz"
    run = subprocess.run(  # nosec B603
        [
            sys.executable,
            "-c",
            _RUN,
            str(wiki),
            str(args.articles),
            str(index),
            str(args.encoder_dir),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(args.checkout)},
        cwd=args.checkout,
    )
    if run.returncode:
        raise SystemExit(run.stderr[-2000:])
    result = {"checkout": str(args.checkout), **json.loads(run.stdout.splitlines()[-1])}
    print(json.dumps(result))
    subprocess.run(["rm", "-rf", str(index)], check=True)  # nosec B603 B607


if __name__ == "__main__":
    main()
