"""Answer time of the full pipeline beside the plain one it replaced, same run.

    python bench/bench_answer_speed.py --index-dir INDEX [QUESTIONS] [--repeat 3]

"Before" is the plain approach the answer-quality work started from: the
question's vector, the 5 nearest chunks in FAISS, and the sentences of those
chunks closest to the question by cosine as the quotes, returned as the same
`Answer` (k quotes cited to their articles, "not found" below a cosine
threshold) after the same validation and live-version check. "After" is
`Answerer.ask` as shipped (dense + BM25 fusion, every sentence of the top
passages scored by the logistic model, merging, threshold), with the answer
cache off so every answer is computed. Both use the same loaded index and
encoder and are timed question by question, alternating, so machine noise
hits both alike. "No reader" is the shipped pipeline with the reader off
(`QA_READER=false`), timed in the same alternation, so after minus no reader
is the reader's share. Prints median and p95 per path, the ratio of medians,
and each path's top-quote accuracy on the same questions.
Writes bench/out/answer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import percentile  # noqa: E402
from bench.shared import find_shared  # noqa: E402
from qa.answering import NOT_FOUND, Answerer  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.evaluation import contains_answer, load_questions  # noqa: E402
from qa.models import Answer, Quote  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store import IndexStore  # noqa: E402

SHARED = find_shared()
PLAIN_PASSAGES = 5
PLAIN_MIN_COSINE = 0.4  # any fixed cut: it decides "not found", not the time


def plain_answer(answerer: Answerer, question: str) -> Answer:
    """Dense retrieval only, sentences ranked by cosine: the "before" pipeline."""
    started = time.perf_counter()
    q, k = answerer.validate(question, None)
    snap = answerer.snapshot()
    qvec = answerer.encoder.embed([q])[0]
    chunk_ids, _ = snap.nearest_chunks(qvec, PLAIN_PASSAGES)
    sents = snap.sentences_of_chunks(chunk_ids.tolist())
    cos = snap.sentence_vectors([s.id for s in sents]) @ qvec
    order = np.argsort(-cos)[:k]
    texts = snap.article_texts(sorted({sents[i].article_id for i in order}))
    quotes = [
        Quote(
            text=texts[s.article_id][1][s.start : s.end],
            score=round(float(cos[i]), 4),
            article=texts[s.article_id][0],
            start=s.start,
            end=s.end,
        )
        for i, s in ((i, sents[i]) for i in order)
    ]
    answered = bool(quotes) and quotes[0].score >= PLAIN_MIN_COSINE
    return Answer(
        question=q,
        answered=answered,
        answer=f"{quotes[0].text} [1]" if answered else NOT_FOUND,
        quotes=quotes,
        took_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description="answer time, full vs plain pipeline")
    ap.add_argument("questions", nargs="?", type=Path, default=SHARED / "eval/xquad-en-dev.json")
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the questions")
    args = ap.parse_args()
    if not IndexStore(args.index_dir).exists():
        ap.error(f"no index at {args.index_dir}: build one with `qa index PATH --index-dir DIR`")

    answerer = Answerer(Settings(index_dir=args.index_dir, answer_cache=0))
    unread = Answerer(
        Settings(index_dir=args.index_dir, answer_cache=0, reader=False), answerer.encoder
    )
    paths = {
        "before": lambda q: plain_answer(answerer, q),
        "no_reader": unread.ask,
        "after": answerer.ask,
    }
    try:
        questions = load_questions(args.questions)
    except (OSError, QAError) as exc:
        ap.error(f"cannot read the questions: {exc}")
    for item in questions[:20]:  # warm every path (first-call costs, OS caches)
        for ask in paths.values():
            ask(item.question)

    times: dict[str, list[float]] = {name: [] for name in paths}
    right = dict.fromkeys(paths, 0)
    names = list(paths)
    for n in range(args.repeat):
        for i, item in enumerate(questions):
            shift = (i + n) % len(names)  # each path goes first in turn
            for name in names[shift:] + names[:shift]:
                t = time.perf_counter()
                answer = paths[name](item.question)
                times[name].append((time.perf_counter() - t) * 1000)
                if n == 0 and item.answers:
                    quote = answer.quotes[0].text if answer.quotes else ""
                    right[name] += contains_answer(quote, item.answers)

    answerable = sum(1 for item in questions if item.answers)
    result = {
        "index_dir": str(args.index_dir),
        "questions": len(questions),
        "repeat": args.repeat,
        **{
            name: {
                "median_ms": round(statistics.median(v), 2),
                "p95_ms": round(percentile(sorted(v), 95) or 0.0, 2),
                "top_quote_accuracy": round(right[name] / answerable, 3) if answerable else None,
            }
            for name, v in times.items()
        },
    }
    result["ratio_after_to_before"] = round(
        result["after"]["median_ms"] / result["before"]["median_ms"], 2
    )
    result["reader_share_ms"] = round(
        result["after"]["median_ms"] - result["no_reader"]["median_ms"], 2
    )
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "answer_speed.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
