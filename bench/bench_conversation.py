"""Follow-up questions: quality in context, harm to self-contained questions, and time.

    python bench/bench_conversation.py --index-dir INDEX [--repeat 3]

INDEX must hold the BBC articles, the seed article, the sample articles and the
XQuAD dev articles (`bench/run_all.py` builds it). Prints and writes
bench/out/conversation.json with:

- the conversation dev set (tests/data/conversations/dev.jsonl) and the XQuAD
  chains (xquad-chains.jsonl): top-quote accuracy of the follow-ups asked in
  context, of their standalone rewrites asked alone, and of the follow-ups
  asked alone (the floor);
- XQuAD dev, each question asked alone, with the previous question of its
  article (and that question's answer) as history, and with a question about
  another article as history (a topic switch): top quote right, and how many
  questions were searched as something other than what was asked;
- answer time with history beside without, in process, alternating question by
  question with the answer cache off: the XQuAD questions with their same-article
  history, and the dev set's follow-ups with their conversation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import percentile  # noqa: E402
from bench.shared import find_shared  # noqa: E402
from qa.answering import Answerer  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.evaluation import (  # noqa: E402
    contains_answer,
    evaluate_conversations,
    load_conversations,
    load_questions,
    xquad_chains,
)
from qa.models import Answer, PriorTurn  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.store import IndexStore  # noqa: E402

SHARED = find_shared()
DATA = ROOT / "tests" / "data" / "conversations"
XQUAD = SHARED / "eval" / "xquad-en-dev.json"


def right(answer: Answer, gold: tuple[str, ...]) -> bool:
    return bool(answer.quotes) and contains_answer(answer.quotes[0].text, gold)


def xquad_with_history(answerer: Answerer) -> tuple[dict, list[tuple[str, list[PriorTurn]]]]:
    """Each XQuAD question alone, after the previous question of its article, and
    after a question about the next article in the file (a topic switch)."""
    questions = load_questions(XQUAD)
    alone = [answerer.ask(q.question, 3) for q in questions]
    firsts: dict[str, int] = {}
    for i, q in enumerate(questions):
        firsts.setdefault(q.article or "", i)
    titles = list(firsts)
    rows = {"alone": [], "same_article": [], "switch": []}
    rewritten = {"same_article": 0, "switch": 0}
    timed: list[tuple[str, list[PriorTurn]]] = []
    for i, q in enumerate(questions):
        rows["alone"].append(right(alone[i], q.answers))
        title = q.article or ""
        prev = i - 1 if i and questions[i - 1].article == title else None
        other = firsts[titles[(titles.index(title) + 1) % len(titles)]]
        for mode, j in (("same_article", prev), ("switch", other)):
            if j is None:  # the first question of its article has no previous one
                rows[mode].append(rows["alone"][-1])
                continue
            history = [PriorTurn.of(alone[j])]
            answer = answerer.ask(q.question, 3, history)
            rows[mode].append(right(answer, q.answers))
            rewritten[mode] += answer.standalone_question != answer.question
            if mode == "same_article":
                timed.append((q.question, history))

    def rate(hits: list[bool]) -> float:
        return round(sum(hits) / len(hits), 4)

    figures = {
        "questions": len(questions),
        "top1_alone": rate(rows["alone"]),
        "top1_same_article_history": rate(rows["same_article"]),
        "top1_switch_history": rate(rows["switch"]),
        "rewritten_same_article": rewritten["same_article"],
        "rewritten_switch": rewritten["switch"],
        "changed_same_article": sum(
            a != b for a, b in zip(rows["alone"], rows["same_article"], strict=True)
        ),
        "changed_switch": sum(a != b for a, b in zip(rows["alone"], rows["switch"], strict=True)),
    }
    return figures, timed


def dev_follow_ups(answerer: Answerer, path: Path) -> list[tuple[str, list[PriorTurn]]]:
    """The dev set's follow-ups, each with its conversation as this answerer answered it."""
    out = []
    for conv in load_conversations(path):
        history: list[PriorTurn] = []
        for i, turn in enumerate(conv.turns):
            if i:
                out.append((turn.question, list(history)))
            history.append(PriorTurn.of(answerer.ask(turn.question, 3, history)))
    return out


def time_side_by_side(
    answerer: Answerer, cases: list[tuple[str, list[PriorTurn]]], repeat: int
) -> dict:
    """Each question with its history and without, alternating, `repeat` times."""
    with_h: list[float] = []
    without: list[float] = []
    for r in range(repeat):
        for n, (question, history) in enumerate(cases):
            pair = [(with_h, history), (without, [])]
            if (n + r) % 2:
                pair.reverse()  # neither side always runs second, on warmer caches
            for sink, hist in pair:
                started = time.perf_counter()
                answerer.ask(question, 3, hist)
                sink.append((time.perf_counter() - started) * 1000)
    p50_with, p50_without = statistics.median(with_h), statistics.median(without)
    return {
        "answers": len(with_h),
        "p50_ms_with_history": round(p50_with, 2),
        "p50_ms_without": round(p50_without, 2),
        "p95_ms_with_history": round(percentile(sorted(with_h), 95), 2),
        "p95_ms_without": round(percentile(sorted(without), 95), 2),
        "ratio_p50": round(p50_with / p50_without, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "conversation.json")
    args = ap.parse_args()
    if not IndexStore(args.index_dir).exists():
        print(
            f"bench_conversation: no index at {args.index_dir}: build one with `qa index`",
            file=sys.stderr,
        )
        sys.exit(2)
    answerer = Answerer(Settings(index_dir=args.index_dir, answer_cache=0))
    try:
        answerer.ask("warm up", 3)
        dev = evaluate_conversations(answerer, load_conversations(DATA / "dev.jsonl"))
        chains = evaluate_conversations(answerer, xquad_chains(DATA / "xquad-chains.jsonl", XQUAD))
        xquad, xquad_cases = xquad_with_history(answerer)
        dev_cases = dev_follow_ups(answerer, DATA / "dev.jsonl")
        speed = {
            "xquad_same_article": time_side_by_side(answerer, xquad_cases, args.repeat),
            "dev_follow_ups": time_side_by_side(answerer, dev_cases, args.repeat),
        }
    except QAError as exc:
        print(f"bench_conversation: {exc.message}", file=sys.stderr)
        sys.exit(2)
    result = {
        "dev": dev.model_dump(exclude={"misses"}),
        "xquad_chains": chains.model_dump(exclude={"misses"}),
        "xquad_history": xquad,
        "speed": speed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
