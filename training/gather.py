"""Candidate sentences of a question set, as answering builds them, saved for fitting.

    python -m training.gather QUESTIONS --index-dir INDEX --out FILE.pkl [--limit N]

Per question: its features matrix (qa.quotes.FEATURES), each candidate's text
and the sentence before it (what the reader reads), whether it holds a gold
answer, and the question's article. Nothing here runs at answering time.
"""

from __future__ import annotations

import argparse
import pickle
import random
import time
from pathlib import Path

import numpy as np

from qa.answering import Answerer
from qa.evaluation import contains_answer, indexed_names, load_questions
from qa.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="a random sample of this many")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    questions = load_questions(args.questions)
    if args.limit and args.limit < len(questions):
        questions = random.Random(args.seed).sample(questions, args.limit)
    answerer = Answerer(Settings(index_dir=args.index_dir, answer_cache=0, reader=False))
    indexed = indexed_names(answerer)
    rows = []
    started = time.time()
    for n, item in enumerate(questions, 1):
        q, _ = answerer.validate(item.question, None)
        candidates, _ = answerer.analyse(q)
        present = item.article is None or item.article in indexed
        answers = item.answers if present else ()
        rows.append(
            {
                "question": q,
                "article": item.article,
                "answerable": bool(answers),
                "on_topic": present,
                "features": np.stack([c.features for c in candidates])
                if candidates
                else np.zeros((0, 0)),
                "texts": [c.text for c in candidates],
                "before": [c.before_text for c in candidates],
                "ids": [c.hit.id for c in candidates],
                "labels": np.array([contains_answer(c.text, answers) for c in candidates], bool),
            }
        )
        if n % 500 == 0:
            print(f"{n}/{len(questions)} {time.time() - started:.0f}s", flush=True)
    with args.out.open("wb") as f:
        pickle.dump(rows, f)
    print(f"{len(rows)} questions → {args.out}")


if __name__ == "__main__":
    main()
