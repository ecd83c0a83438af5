"""Fit the quote scorer's logistic weights and choose the "not found" threshold.

    python bench/tune_scoring.py --answerable INDEX_A --distractors INDEX_B [QUESTIONS]

INDEX_A holds the question set's articles plus distractors (the XQuAD dev
articles + all BBC articles); INDEX_B only the distractors (BBC alone), so
every question asked of it should be refused. The script gathers every
candidate sentence's features once, then searches the weights coordinate by
coordinate for the best top-1 (and top-3) accuracy at the threshold that
refuses --abstain of the INDEX_B questions, checked with 2-fold
cross-validation split by article, so the figures printed are for articles the
weights did not see. `--try W,W,...` reports on given weights instead.

Nothing here runs at query time: paste the printed weights into
qa/quotes.py (ScoreModel) and the threshold into qa/settings.py (min_score).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shared import find_shared
from qa.answering import Answerer
from qa.evaluation import contains_answer, load_questions
from qa.quotes import FEATURES, ScoreModel
from qa.settings import Settings

SHARED = find_shared()


def gather(answerer: Answerer, questions):
    """Per question: its candidates' features and their texts, computed once."""
    rows = []
    for item in questions:
        q, _ = answerer.validate(item.question, None)
        candidates, _ = answerer.analyse(q)
        width = len(FEATURES)
        feats = np.stack([c.features for c in candidates]) if candidates else np.zeros((0, width))
        texts = [" ".join(c.text.split()).lower() for c in candidates]
        rows.append((item, feats, texts))
    return rows


def objective(rows_a, rows_b, model: ScoreModel, abstain: float) -> float:
    t = pick_threshold(rows_b, model, abstain)
    a = top_scores(rows_a, model)
    return float(
        np.mean([s >= t and r1 for s, r1, _ in a])
        + 0.5 * np.mean([s >= t and r3 for s, _, r3 in a])
    )


def fit_search(
    rows_a,
    rows_b,
    abstain: float,
    start: ScoreModel | None = None,
    frozen: tuple[int, ...] = (),
    rounds: int = 4,
) -> ScoreModel:
    """Coordinate search on what matters: top-1 (and top-3) accuracy at the
    threshold that refuses `abstain` of the distractor-only questions."""
    model = start or ScoreModel()
    best = objective(rows_a, rows_b, model, abstain)
    for _ in range(rounds):
        improved = False
        for i in range(len(model.weights)):
            if i in frozen:
                continue
            for step in (-1.0, -0.5, -0.25, 0.25, 0.5, 1.0):
                w = list(model.weights)
                w[i] = round(w[i] + step, 3)
                trial = ScoreModel(tuple(w), model.bias)
                value = objective(rows_a, rows_b, trial, abstain)
                if value > best + 1e-9:
                    best, model, improved = value, trial, True
        if not improved:
            break
    return model


def top_scores(rows, model: ScoreModel):
    """Per question: best score, whether the best distinct quote is right, any of top 3."""
    out = []
    for item, feats, texts in rows:
        if len(feats) == 0:
            out.append((0.0, False, False))
            continue
        scores = model.score(feats)
        order = np.argsort(-scores, kind="stable")
        seen, picked = set(), []
        for i in order:
            if texts[i] not in seen:
                seen.add(texts[i])
                picked.append(i)
            if len(picked) == 3:
                break
        right = [contains_answer(texts[i], item.answers) for i in picked]
        out.append((float(scores[order[0]]), right[0], any(right)))
    return out


def report(name, answerable_rows, distractor_rows, model, threshold):
    a = top_scores(answerable_rows, model)
    top1 = np.mean([s >= threshold and r1 for s, r1, _ in a])
    top3 = np.mean([s >= threshold and r3 for s, _, r3 in a])
    abst = np.mean([s < threshold for s, _, _ in top_scores(distractor_rows, model)])
    print(f"{name:<28} top1 {top1:.3f}  top3 {top3:.3f}  abstain {abst:.3f}  (t={threshold:.3f})")
    return top1, top3, abst


def pick_threshold(distractor_rows, model, abstain: float) -> float:
    best = sorted(s for s, _, _ in top_scores(distractor_rows, model))
    return float(best[min(len(best) - 1, int(np.ceil(abstain * len(best))) - 1)]) + 1e-4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("questions", nargs="?", type=Path, default=SHARED / "eval/xquad-en-dev.json")
    ap.add_argument("--answerable", type=Path, required=True)
    ap.add_argument("--distractors", type=Path, required=True)
    ap.add_argument("--abstain", type=float, default=0.85)
    ap.add_argument(
        "--try",
        dest="trials",
        action="append",
        default=[],
        help="comma-separated weights to report on, e.g. 3,2.25,...",
    )
    ap.add_argument(
        "--frozen",
        type=int,
        nargs="*",
        default=(),
        help="indexes of FEATURES whose weight stays as it is",
    )
    args = ap.parse_args()

    questions = load_questions(args.questions)
    rows_a = gather(Answerer(Settings(index_dir=args.answerable)), questions)
    rows_b = gather(Answerer(Settings(index_dir=args.distractors)), questions)
    print(f"{len(questions)} questions; features {FEATURES}")

    current = ScoreModel()
    report("current weights", rows_a, rows_b, current, Settings().min_score)

    for trial in args.trials:
        model = ScoreModel(tuple(float(v) for v in trial.split(",")), current.bias)
        report(f"try {trial}", rows_a, rows_b, model, pick_threshold(rows_b, model, args.abstain))
    if args.trials:
        return

    titles = sorted({r[0].article for r in rows_a})
    folds = [set(titles[0::2]), set(titles[1::2])]
    for n, held_out in enumerate(folds):
        train = [r for r in rows_a if r[0].article not in held_out]
        test_a = [r for r in rows_a if r[0].article in held_out]
        test_b = [r for r in rows_b if r[0].article in held_out]
        train_b = [r for r in rows_b if r[0].article not in held_out]
        report(
            f"fold {n + 1} current",
            test_a,
            test_b,
            current,
            pick_threshold(train_b, current, args.abstain),
        )
        model = fit_search(train, train_b, args.abstain, frozen=args.frozen)
        report(
            f"fold {n + 1} search",
            test_a,
            test_b,
            model,
            pick_threshold(train_b, model, args.abstain),
        )

    model = fit_search(rows_a, rows_b, args.abstain, frozen=args.frozen)
    t = pick_threshold(rows_b, model, args.abstain)
    report("all, search", rows_a, rows_b, model, t)
    print(f"ScoreModel(weights={model.weights}, bias={model.bias})  min_score={t:.3f}")


if __name__ == "__main__":
    main()
