"""Reader pairs whose negatives are the pipeline's own near misses.

    python -m training.pipeline_pairs prepare --pairs PAIRS.jsonl --offset 38400 --questions 12000 \
        --shared ../shared --out DIR
    cp -r BBC_INDEX DIR/index && qa index DIR/articles.json --index-dir DIR/index
    python -m training.gather DIR/questions.json --index-dir DIR/index --out DIR/gather.pkl
    python -m training.pipeline_pairs build --pairs PAIRS.jsonl --gather DIR/gather.pkl \
        --offset 38400 --questions 12000 --out DIR/pairs.jsonl

`mine_reader_pairs` picks negatives by BM25 over the question's terms. At
answering time the reader sees something else: the first score's best
candidates (qa.quotes.ScoreModel), which lean on the sentence and passage
cosines as much as on shared words. This asks a slice of the reader's own
questions of an index of the reader's articles (with BBC as distractors),
the way `qa` answers, and swaps each question's three negatives for the
three candidates the shipped first score ranks highest that do not hold the
answer. The slice is chosen in `train_reader`'s order (same seeded shuffle),
so `train_reader --offset OFFSET --questions N` trains on exactly the
rewritten questions and keeps the same held-out ones.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
from pathlib import Path

import numpy as np

from qa.quotes import FEATURES, ScoreModel
from training import squad
from training.train_reader import GROUP, load_groups, split


def _slice(pairs: Path, seed: int, held_out: int, offset: int, n: int) -> list[list[dict]]:
    """The questions `train_reader --offset offset --questions n` trains on."""
    return split(load_groups(pairs), random.Random(seed), held_out, offset, n)[1]


def prepare(args) -> None:
    chosen = _slice(args.pairs, args.seed, args.held_out, args.offset, args.questions)
    articles = [a for a in squad.load(args.shared) if not squad.for_scorer(a.title)]
    title_of = {q.qid: a.title for a in articles for p in a.paragraphs for q in p.questions}
    questions = []
    for g in chosen:
        pos = next(r for r in g if r["label"])
        a, b = pos["span"]
        answer = {"text": pos["sentence"][a:b], "answer_start": 0}
        qas = [{"id": pos["qid"], "question": pos["question"], "answers": [answer]}]
        paragraphs = [{"context": "", "qas": qas}]
        questions.append({"title": title_of[pos["qid"]], "paragraphs": paragraphs})
    data = [
        {"title": a.title, "paragraphs": [{"context": p.text, "qas": []} for p in a.paragraphs]}
        for a in articles
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "articles.json").write_text(json.dumps({"data": data, "version": "reader"}))
    (args.out / "questions.json").write_text(json.dumps({"data": questions, "version": "reader"}))
    print(f"{len(data)} articles, {len(questions)} questions -> {args.out}")


def near_misses(
    groups: list[list[dict]],
    gathered: list[dict],
    paragraph_of: dict[str, str],
    removed_share: float,
    rng: random.Random,
    pipeline: int = GROUP - 1,
) -> tuple[dict[str, list[dict]], list[list[dict]]]:
    """Each question's group with its first `pipeline` negatives swapped for the
    first score's best wrong candidates (the rest stay BM25's); and, for
    `removed_share` of them, a group of four negatives asking the same question
    with its own paragraph taken out."""
    weights = np.asarray(ScoreModel().weights)
    replaced: dict[str, list[dict]] = {}
    removed: list[list[dict]] = []
    for g, row in zip(groups, gathered, strict=True):
        if not len(row["labels"]):
            continue
        z = row["features"][:, : len(FEATURES)] @ weights
        ranked = [int(i) for i in np.argsort(-z, kind="stable") if not row["labels"][i]]
        qid = g[0]["qid"]
        negatives = [_negative(g[0], row, i, qid) for i in ranked[:pipeline]]
        taken = {r["sentence"] for r in negatives}
        old = [r for r in g if not r["label"] and r["sentence"] not in taken]
        negatives += old[: GROUP - 1 - len(negatives)]  # the rest, or too few candidates: BM25's
        replaced[qid] = [next(r for r in g if r["label"]), *negatives]
        if rng.random() < removed_share:
            # On topic, no answer: with its paragraph gone, the best candidates
            # left are near misses from elsewhere in the article (or others).
            own = paragraph_of[qid]
            elsewhere = [i for i in ranked if row["texts"][i] not in own][:GROUP]
            if len(elsewhere) == GROUP:
                removed.append([_negative(g[0], row, i, f"{qid}-removed") for i in elsewhere])
    return replaced, removed


def build(args) -> None:
    groups = _slice(args.pairs, args.seed, args.held_out, args.offset, args.questions)
    try:
        gathered = pickle.loads(args.gather.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise SystemExit(f"{args.gather}: not a training.gather file ({e})") from None
    if len(gathered) != len(groups):
        raise SystemExit(f"{args.gather}: {len(gathered)} questions, expected {len(groups)}")
    paragraph_of = {
        q.qid: p.text for a in squad.load(args.shared) for p in a.paragraphs for q in p.questions
    }
    replaced, removed = near_misses(
        groups, gathered, paragraph_of, args.removed, random.Random(args.seed), args.pipeline
    )
    # The same questions in the same order, so train_reader's seeded shuffle (and
    # so its held-out questions and --offset slice) does not move.
    with args.pairs.open(encoding="utf-8") as f, args.out.open("w", encoding="utf-8") as out:
        done: set[str] = set()
        for line in f:
            qid = json.loads(line)["qid"]
            if qid not in replaced:
                out.write(line)
            elif qid not in done:
                done.add(qid)
                out.writelines(json.dumps(p) + "\n" for p in replaced[qid])
    print(f"{len(replaced)} questions given the pipeline's negatives -> {args.out}")
    if args.removed_out:
        with args.removed_out.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(p) + "\n" for g in removed for p in g)
        print(f"{len(removed)} asked again without their paragraph -> {args.removed_out}")


def _negative(like: dict, row: dict, i: int, qid: str) -> dict:
    """Gathered candidate i of `row` as a negative pair of `like`'s question."""
    before = row["before"][i] or ""
    text = row["texts"][i]
    return {**like, "qid": qid, "sentence": text, "before": before, "label": 0, "span": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("prepare", "build"))
    ap.add_argument("--pairs", type=Path, required=True, help="mine_reader_pairs output")
    ap.add_argument("--offset", type=int, required=True)
    ap.add_argument("--questions", type=int, required=True)
    ap.add_argument("--seed", type=int, default=7, help="train_reader's --seed")
    ap.add_argument("--held-out", type=int, default=400, help="train_reader's --held-out")
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--gather", type=Path, help="training.gather over DIR/questions.json")
    ap.add_argument(
        "--removed", type=float, default=0.0, help="share also asked without their paragraph"
    )
    ap.add_argument(
        "--pipeline",
        type=int,
        default=GROUP - 1,
        choices=range(GROUP),
        help="negatives taken from the pipeline (rest BM25)",
    )
    ap.add_argument("--removed-out", type=Path, help="where those groups go (train_reader --extra)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    (prepare if args.step == "prepare" else build)(args)


if __name__ == "__main__":
    main()
