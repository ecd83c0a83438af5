"""Fit the quote scorer (qa.quotes.ScoreModel) on SQuAD v1.1 train's scorer articles.

    python -m training.fit_scorer --fit FIT.pkl --off-topic OFF.pkl [--reader]
        [--measure NAME=FILE.pkl ...]

FIT.pkl: `training.gather` over the fit questions asked of the fit index (the
scorer articles, a quarter of their paragraphs removed, plus BBC); OFF.pkl: the
same questions asked of the BBC articles alone. A logistic regression over
every candidate (does it hold the answer?), cross-validated in 5 folds split by
article, so each figure is for articles the weights did not see (see `fit`
for how the weights and the calibration are found). The threshold
is the score that refuses --refuse of the off-topic questions. `--measure`
sets are only reported (never fitted on): XQuAD, WikiQA, SQuAD 2.0 dev.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from qa.quotes import FEATURES


def load(path: Path, sample: int = 0) -> list[dict]:
    """Gathered questions with at least one candidate; `sample`: a fixed random
    subset of that many (shuffled with seed 1 before the empty ones drop out)."""
    with path.open("rb") as f:
        rows = pickle.load(f)
    if sample:
        random.Random(1).shuffle(rows)
        rows = rows[:sample]
    return [r for r in rows if len(r["labels"])]


def fitted(rows: list[dict], rewritten: bool) -> list[dict]:
    """The rows weights are fitted on: rewritten questions only with --fit-rewritten."""
    return [r for r in rows if rewritten or r.get("kind") != "rewritten"]


def fold(article: str | None, k: int = 5) -> int:
    return int(hashlib.sha1((article or "").encode()).hexdigest(), 16) % k


def stack(rows: list[dict], cols: list[int]):
    x = np.concatenate([r["features"][:, cols] for r in rows])
    y = np.concatenate([r["labels"] for r in rows]).astype(int)
    return x, y


def fit(rows: list[dict], cols: list[int], c: float) -> tuple[np.ndarray, float]:
    """Ranking weights, then their scale and bias.

    The weights maximise the likelihood of the right candidates under a softmax
    over each answerable question's candidates (what ranking needs: no weight
    is spent on telling questions apart). Then a logistic regression over each
    question's best candidate, answerable or not, maps that ranking score to
    the probability that the quote shown is right: the calibrated score that
    one threshold can cut."""
    lists = [
        (r["features"][:, cols], r["labels"]) for r in rows if r["answerable"] and r["labels"].any()
    ]
    x = np.concatenate([f for f, _ in lists])
    y = np.concatenate([lab for _, lab in lists]).astype(float)
    owner = np.repeat(np.arange(len(lists)), [len(f) for f, _ in lists])
    l2 = 1.0 / (c * len(lists))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        zmax = np.zeros(len(lists))
        np.maximum.at(zmax, owner, z)
        e = np.exp(z - zmax[owner])
        total = np.bincount(owner, e, len(lists))
        right = np.bincount(owner, e * y, len(lists))
        value = np.sum(np.log(total) - np.log(right)) / len(lists) + l2 * w @ w
        p_all = e / total[owner]
        p_right = e * y / right[owner]
        grad = x.T @ (p_all - p_right) / len(lists) + 2 * l2 * w
        return value, grad

    w = minimize(loss, np.zeros(len(cols)), jac=True, method="L-BFGS-B").x
    best = [(r["features"][:, cols] @ w).max() for r in rows]
    right = [bool(r["labels"][int(np.argmax(r["features"][:, cols] @ w))]) for r in rows]
    cal = LogisticRegression(C=10.0, max_iter=1000).fit(np.array(best)[:, None], right)
    a, b = float(cal.coef_[0][0]), float(cal.intercept_[0])
    return a * w, b


def tops(rows: list[dict], cols: list[int], w: np.ndarray, b: float) -> list[tuple[float, bool]]:
    """Each question's best score and whether that candidate holds the answer."""
    out = []
    for r in rows:
        z = r["features"][:, cols] @ w + b
        i = int(np.argmax(z))
        out.append((float(1 / (1 + np.exp(-z[i]))), bool(r["labels"][i])))
    return out


def threshold(off: list[tuple[float, bool]], refuse: float) -> float:
    scores = np.sort([s for s, _ in off])
    return float(scores[min(len(scores) - 1, int(refuse * len(scores)))])


def figures(rows, top, t) -> dict:
    ans = [(s, ok) for r, (s, ok) in zip(rows, top, strict=True) if r["answerable"]]
    removed = [
        s for r, (s, _) in zip(rows, top, strict=True) if not r["answerable"] and not r.get("kind")
    ]
    rewritten = [s for r, (s, _) in zip(rows, top, strict=True) if r.get("kind") == "rewritten"]
    out = {
        "top1": np.mean([ok for _, ok in ans]) if ans else float("nan"),
        "top1@t": np.mean([ok and s >= t for s, ok in ans]) if ans else float("nan"),
        "refused": np.mean([s < t for s in removed]) if removed else float("nan"),
    }
    if rewritten:
        out["refused_rewritten"] = np.mean([s < t for s in rewritten])
    return out


def read_top(rows: list[dict], cols, w, b, reader, read: int, cache: Path | None) -> None:
    """Run the reader on each question's `read` best candidates by the first score;
    stores `first` (their first logits), `reader`, `span_sure` and `top` (indexes)."""
    import pickle as pkl

    done = {}
    if cache and cache.exists():
        done = pkl.loads(cache.read_bytes())
    for r in rows:
        z = r["features"][:, cols] @ w + b
        top = np.lexsort((r["ids"], -z))[:read]
        key = (r["question"], tuple(r["ids"][i] for i in top))
        if key not in done:
            got = reader.read(
                r["question"], [r["texts"][i] for i in top], [r["before"][i] for i in top]
            )
            done[key] = ([g.logit for g in got], [g.span_logit for g in got])
        r["top"], r["first"] = top, z[top]
        r["reader"], r["span_sure"] = (np.array(v) for v in done[key])
    if cache:
        cache.write_bytes(pkl.dumps(done))


def blend_inputs(r: dict) -> np.ndarray:
    """Per read candidate: the first logit, the reader's logit, and how sure the
    reader is of its best span (a sentence with no clear answer span rarely answers)."""
    return np.column_stack([r["first"], r["reader"], r["span_sure"]])


def blend_fit(rows: list[dict], c: float) -> tuple[np.ndarray, float]:
    x = np.concatenate([blend_inputs(r) for r in rows])
    y = np.concatenate([r["labels"][r["top"]] for r in rows]).astype(int)
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(x, y)
    return model.coef_[0], float(model.intercept_[0])


def blend_tops(rows: list[dict], w: np.ndarray, b: float) -> list[tuple[float, bool]]:
    out = []
    for r in rows:
        z = blend_inputs(r) @ w + b
        i = int(np.argmax(z))
        out.append((float(1 / (1 + np.exp(-z[i]))), bool(r["labels"][r["top"][i]])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, required=True)
    ap.add_argument("--off-topic", type=Path, required=True)
    ap.add_argument("--measure", nargs="*", default=[])
    ap.add_argument("--refuse", type=float, default=0.95)
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--drop", default="", help="features left out, comma-separated")
    ap.add_argument("--reader", type=Path, help="the reader's ONNX file: fit the blend too")
    ap.add_argument("--read", type=int, default=6, help="candidates the reader reads")
    ap.add_argument("--sample-fit", type=int, default=0, help="fit on this many (0: all)")
    ap.add_argument("--sample-off", type=int, default=0, help="off-topic ones used (0: all)")
    ap.add_argument("--cache", type=Path, help="where reader outputs are kept between runs")
    ap.add_argument(
        "--rewritten", type=Path, help="gathered training.perturb questions (no answer, on topic)"
    )
    ap.add_argument(
        "--fit-rewritten", action="store_true", help="fit on them too (else only measured)"
    )
    args = ap.parse_args()
    rows, off = load(args.fit, args.sample_fit), load(args.off_topic, args.sample_off)
    if args.rewritten:
        rows += [r | {"kind": "rewritten"} for r in load(args.rewritten, args.sample_fit // 2)]
    dropped = {d for d in args.drop.split(",") if d}
    cols = [i for i, f in enumerate(FEATURES) if f not in dropped]
    print(
        f"{len(rows)} fit questions ({sum(r['answerable'] for r in rows)} answerable), "
        f"{len(off)} off-topic; features: {[FEATURES[i] for i in cols]}"
    )

    # Cross-validation by article.
    cv_top, cv_off = [None] * len(rows), [None] * len(off)
    for k in range(5):
        train = fitted([r for r in rows + off if fold(r["article"]) != k], args.fit_rewritten)
        w, b = fit(train, cols, args.c)
        idx = [i for i, r in enumerate(rows) if fold(r["article"]) == k]
        for i, t in zip(idx, tops([rows[i] for i in idx], cols, w, b), strict=True):
            cv_top[i] = t
        idx = [i for i, r in enumerate(off) if fold(r["article"]) == k]
        for i, t in zip(idx, tops([off[i] for i in idx], cols, w, b), strict=True):
            cv_off[i] = t
    t = threshold(cv_off, args.refuse)
    print(
        f"cross-validated, threshold {t:.3f} (refuses {args.refuse} off topic):",
        {k: round(v, 4) for k, v in figures(rows, cv_top, t).items()},
    )

    w, b = fit(fitted(rows + off, args.fit_rewritten), cols, args.c)
    t = threshold(tops(off, cols, w, b), args.refuse)
    full = np.zeros(len(FEATURES))
    full[cols] = w
    print("weights:", ", ".join(f"{f}={v:.3f}" for f, v in zip(FEATURES, full, strict=True)))
    print(f"bias={b:.3f} threshold={t:.3f}")
    print("ScoreModel(weights=(" + ", ".join(f"{v:.3f}" for v in full) + f"), bias={b:.3f})")
    measured = {}
    for spec in args.measure:
        name, path = spec.split("=", 1)
        m = measured[name] = load(Path(path))
        print(f"  {name}:", {k: round(v, 4) for k, v in figures(m, tops(m, cols, w, b), t).items()})
    if not args.reader:
        return

    from qa.reader import Reader

    reader = Reader(args.reader)
    for group in (rows, off, *measured.values()):
        read_top(group, cols, w, b, reader, args.read, args.cache)
    cv_top, cv_off = [None] * len(rows), [None] * len(off)
    for k in range(5):
        train = fitted([r for r in rows + off if fold(r["article"]) != k], args.fit_rewritten)
        bw, bb = blend_fit(train, args.c)
        for group, out in ((rows, cv_top), (off, cv_off)):
            idx = [i for i, r in enumerate(group) if fold(r["article"]) == k]
            for i, t2 in zip(idx, blend_tops([group[i] for i in idx], bw, bb), strict=True):
                out[i] = t2
    t2 = threshold(cv_off, args.refuse)
    print(
        f"with the reader, cross-validated, threshold {t2:.3f}:",
        {k: round(v, 4) for k, v in figures(rows, cv_top, t2).items()},
    )
    bw, bb = blend_fit(fitted(rows + off, args.fit_rewritten), args.c)
    t2 = threshold(blend_tops(off, bw, bb), args.refuse)
    print(
        f"ReaderBlend(first={bw[0]:.3f}, reader={bw[1]:.3f}, span={bw[2]:.3f}, bias={bb:.3f})"
        f"  threshold={t2:.3f}"
    )
    for name, m in measured.items():
        print(
            f"  {name}:", {k: round(v, 4) for k, v in figures(m, blend_tops(m, bw, bb), t2).items()}
        )
    fewer(rows, off, args)
    # One threshold for both paths: the first score is shifted so that alone (the
    # reader off) it refuses at the blend's threshold what it refused at its own.
    shift = float(np.log(t2 / (1 - t2)) - np.log(t / (1 - t)))
    gates(rows, off, measured, bw, bb, t2, shift)
    print("shipped constants (one threshold for both paths):")
    print(
        "ScoreModel(weights=(" + ", ".join(f"{v:.3f}" for v in full) + f"), bias={b + shift:.3f})"
    )
    print(
        f"ReaderBlend(first={bw[0]:.3f}, reader={bw[1]:.3f}, span={bw[2]:.3f}, "
        f"bias={bb - bw[0] * shift:.3f})  min_score={t2:.3f}"
    )


def fewer(rows: list[dict], off: list[dict], args) -> None:
    """Cross-validated figures had the reader read only the first n candidates
    (the readings of those are the same, so no reading again)."""
    for n in range(1, args.read):
        cut = [
            {**r, "top": r["top"][:n], "first": r["first"][:n], "reader": r["reader"][:n],
             "span_sure": r["span_sure"][:n]}
            for r in rows + off
        ]  # fmt: skip
        cv = [None] * len(cut)
        for k in range(5):
            bw, bb = blend_fit(
                fitted([r for r in cut if fold(r["article"]) != k], args.fit_rewritten), args.c
            )
            idx = [i for i, r in enumerate(cut) if fold(r["article"]) == k]
            for i, t2 in zip(idx, blend_tops([cut[i] for i in idx], bw, bb), strict=True):
                cv[i] = t2
        t2 = threshold(cv[len(rows) :], args.refuse)
        f = figures(cut[: len(rows)], cv[: len(rows)], t2)
        print(f"reading {n}, cross-validated:", {k: round(v, 4) for k, v in f.items()})


def gates(rows, off, measured, bw, bb, t2, shift) -> None:
    """Reading only when the first score is unsure: a question whose best first
    score (shifted onto the blend's threshold) reaches `gate` is answered unread."""
    for gate in (0.5, 0.8, 0.9, 0.95, 0.98, 1.01):
        shown = []
        for name, m in [("fit", rows), ("off", off), *measured.items()]:
            gated, read = [], []
            for r, (s2, ok2) in zip(m, blend_tops(m, bw, bb), strict=True):
                p1 = float(1 / (1 + np.exp(-(r["first"][0] + shift))))
                read.append(p1 < gate)
                gated.append((s2, ok2) if p1 < gate else (p1, bool(r["labels"][r["top"][0]])))
            f = figures(m, gated, t2)
            shown.append(
                f"{name} read {np.mean(read):.2f} "
                + " ".join(f"{k} {v:.3f}" for k, v in f.items() if v == v)
            )
        print(f"gate {gate}: " + " | ".join(shown))


if __name__ == "__main__":
    main()
