"""Answer quality before and after, side by side: every question set of issue 12.

    python bench/bench_quality.py --bbc-index DIR [--before REF] [--work DIR]

Builds, from a BBC index (the distractors), the indexes each set is asked of:
XQuAD dev + seed + BBC, WikiQA dev's summaries + BBC, SQuAD 2.0 dev's 17
articles + BBC (BBC alone is the off-topic index). Then runs `qa eval` on each
with this checkout ("after") and with the commit REF ("before", from a git
worktree, default e927687: the main before the trained scorer and reader;
scored with this checkout's `qa eval` metrics), on the same indexes, and
writes bench/out/quality-reader.json for bench/report.py. `--side` runs one
side only and merges it into that file.

WikiQA and SQuAD 2.0 dev are for measuring only (see ../shared/README.md):
nothing here or in training/ fits on them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.shared import find_shared, run_qa  # noqa: E402

SHARED = find_shared()
OUT = ROOT / "bench" / "out"
EVAL = SHARED / "eval"


def wikiqa_articles(dest: Path) -> Path:
    """WikiQA's summaries as `qa index` JSON lines (read from ../shared, never kept)."""
    path = dest / "wikiqa-articles.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for line in (EVAL / "wikiqa-dev-articles.jsonl").read_text(encoding="utf-8").splitlines():
            a = json.loads(line)
            out.write(json.dumps({"id": a["id"], "title": a["title"], "text": a["text"]}) + "\n")
    return path


def build(bbc: Path, work: Path) -> dict[str, Path]:
    made = {"bbc": bbc}
    plan = {
        "xquad": [str(EVAL / "xquad-en-dev.json"), str(SHARED / "corpus" / "seed")],
        "wikiqa": [str(wikiqa_articles(work))],
        "squad2": [str(EVAL / "squad2-dev-on-xquad-dev-articles.json")],
    }
    for name, paths in plan.items():
        dest = work / f"idx-{name}"
        if not dest.exists():
            shutil.copytree(bbc, dest)
            run_qa("index", *paths, "--index-dir", str(dest))
        made[name] = dest
    return made


SETS = {
    # name: (question file, index)
    "xquad_with_bbc": ("xquad-en-dev.json", "xquad"),
    "xquad_bbc_only": ("xquad-en-dev.json", "bbc"),
    "seed_with_bbc": ("seed-questions.jsonl", "xquad"),
    "wikiqa_with_bbc": ("wikiqa-dev-questions.jsonl", "wikiqa"),
    "squad2_with_bbc": ("squad2-dev-on-xquad-dev-articles.json", "squad2"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bbc-index", type=Path, required=True)
    ap.add_argument("--before", default="e927687")
    ap.add_argument("--work", type=Path, help="keeps the built indexes (default: a temp dir)")
    ap.add_argument("--side", choices=("before", "after", "both"), default="both")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    indexes = build(args.bbc_index, work)
    before = work / "before-checkout"
    if not before.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(before), args.before],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        # Both sides are scored by this checkout's metrics (WikiQA's sentence
        # matching, refusal on and off topic): its eval code and the additive
        # models it reads (a quote's optional highlight) go into the old tree.
        for module in ("evaluation.py", "models.py"):
            shutil.copy(ROOT / "qa" / module, before / "qa" / module)
    out = OUT / "quality-reader.json"
    results: dict = json.loads(out.read_text()) if args.side != "both" and out.exists() else {}
    results["before_ref"] = args.before
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sides = [("before", before), ("after", ROOT)]
    try:
        for side, checkout in sides:
            if args.side not in (side, "both"):
                continue
            for name, (questions, index) in SETS.items():
                started = time.time()
                report = json.loads(
                    run_qa(
                        "eval",
                        str(EVAL / questions),
                        "--json",
                        "--index-dir",
                        str(indexes[index]),
                        checkout=checkout,
                    )
                )
                report.pop("misses", None)
                results.setdefault(name, {})[side] = report
                print(f"{side} {name}: {time.time() - started:.0f}s {report}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT)
    OUT.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
