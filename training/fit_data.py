"""The scorer's fitting set: SQuAD v1.1 train's scorer articles, as an index
file with a quarter of the paragraphs taken out and a question file where the
questions of those paragraphs have no answer (on-topic "not found").

    python -m training.fit_data --shared ../shared --out DIR
    qa index DIR/articles.json --index-dir FIT_INDEX   (a copy of the BBC index)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from training import squad

REMOVED_SHARE = 25  # per cent of each article's paragraphs left out of the index


def removed(title: str, n: int) -> bool:
    key = f"{title}#{n}".encode()
    return int(hashlib.sha1(key).hexdigest(), 16) % 100 < REMOVED_SHARE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    articles, questions = [], []
    for a in squad.load(args.shared):
        if not squad.for_scorer(a.title):
            continue
        kept = []
        for n, p in enumerate(a.paragraphs):
            gone = removed(a.title, n)
            if not gone:
                kept.append({"context": p.text, "qas": []})
            qas = [
                {
                    "id": q.qid,
                    "question": q.question,
                    "answers": [] if gone else [{"text": q.answer, "answer_start": q.start}],
                }
                for q in p.questions
            ]
            questions.append({"title": a.title, "paragraphs": [{"context": "", "qas": qas}]})
        articles.append({"title": a.title, "paragraphs": kept})
    (args.out / "articles.json").write_text(json.dumps({"data": articles, "version": "fit"}))
    (args.out / "questions.json").write_text(json.dumps({"data": questions, "version": "fit"}))
    n = sum(len(p["paragraphs"][0]["qas"]) for p in questions)
    gone = sum(1 for p in questions for q in p["paragraphs"][0]["qas"] if not q["answers"])
    print(f"{len(articles)} articles, {n} questions, {gone} of them on-topic unanswerable")


if __name__ == "__main__":
    main()
