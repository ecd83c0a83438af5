"""Mine (question, sentence) training pairs for the reader from SQuAD v1.1 train.

    python -m training.mine_reader_pairs --shared ../shared --out /tmp/reader-pairs.jsonl

Only the reader's articles (`squad.for_scorer` False) are used. Per question:
the sentence holding the answer (a positive, with the answer's offsets in it)
and three negatives that look right and are not: the two sentences of the same
article and the one of another article that BM25 over the question's terms
(the same terms and weighting as answering's lexical search) ranks highest,
skipping any sentence that contains the answer text. Negatives so overlap the
question about as much as the positives do, which is what the reader must
learn to see past.

`--rewrites SHARE` adds, for that share of the questions, the question
rewritten by training/perturb.py's rules so that its article no longer answers
it (an antonym, another name, another number, a "not"), paired with the same
four sentences, all four labelled 0: the sentence that answered the original
now looks right and is not.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from scipy import sparse

from qa.terms import terms
from training import squad
from training.perturb import names_of, rewrite

K1, B = 1.2, 0.75


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--rewrites", type=float, default=0.0, help="share rewritten unanswerable")
    args = ap.parse_args()

    articles = [a for a in squad.load(args.shared) if not squad.for_scorer(a.title)]
    # Every sentence of every reader article: (article no, paragraph no, start, end, text).
    rows: list[tuple[int, int, int, int, str]] = []
    for ai, a in enumerate(articles):
        for pi, p in enumerate(a.paragraphs):
            rows += [(ai, pi, s, e, p.text[s:e]) for s, e in squad.sentences(p.text)]
    print(f"{len(articles)} articles, {len(rows)} sentences")

    vocab: dict[str, int] = {}
    indptr, cols, vals = [0], [], []
    lengths = []
    for *_, text in rows:
        tf: dict[int, int] = {}
        for t in terms(text):
            j = vocab.setdefault(t, len(vocab))
            tf[j] = tf.get(j, 0) + 1
        cols += list(tf)
        vals += list(tf.values())
        indptr.append(len(cols))
        lengths.append(sum(tf.values()))
    tf = sparse.csr_matrix((vals, cols, indptr), shape=(len(rows), len(vocab)), dtype=np.float32)
    n = len(rows)
    df = np.bincount(tf.indices, minlength=len(vocab))
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    lens = np.asarray(lengths, dtype=np.float32)
    norm = K1 * (1 - B + B * lens / max(lens.mean(), 1))
    bm = tf.tocoo()
    w = bm.data * (K1 + 1) / (bm.data + norm[bm.row]) * idf[bm.col]
    bm25 = sparse.csc_matrix((w, (bm.row, bm.col)), shape=tf.shape)
    article_of = np.array([r[0] for r in rows])

    rng = random.Random(args.seed)
    by_paragraph: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(rows):
        by_paragraph.setdefault((r[0], r[1]), []).append(i)
    kept = skipped = rewritten = 0
    with args.out.open("w", encoding="utf-8") as out:
        for ai, a in enumerate(articles):
            names = names_of("\n".join(p.text for p in a.paragraphs)) if args.rewrites else []
            for pi, p in enumerate(a.paragraphs):
                ids = by_paragraph.get((ai, pi), [])
                for q in p.questions:
                    end = q.start + len(q.answer)
                    pos = [i for i in ids if rows[i][2] <= q.start and end <= rows[i][3]]
                    if len(pos) != 1:
                        skipped += 1  # the answer runs across sentences
                        continue
                    i = pos[0]
                    cols_q = sorted({vocab[t] for t in terms(q.question) if t in vocab})
                    if not cols_q:
                        skipped += 1
                        continue
                    scores = np.asarray(bm25[:, cols_q].sum(axis=1)).ravel()
                    answer = q.answer.lower()
                    same, other = [], []
                    for j in np.argsort(-scores)[:400].tolist():
                        if j == i or answer in rows[j][4].lower() or scores[j] <= 0:
                            continue
                        bucket = same if article_of[j] == ai else other
                        if len(bucket) < (2 if bucket is same else 1):
                            bucket.append(j)
                        if len(same) == 2 and len(other) == 1:
                            break
                    if len(same) < 2:  # an article too short to offer two: any other sentence
                        pool = [j for j in range(len(rows)) if article_of[j] == ai and j != i]
                        pool = [
                            j for j in pool if j not in same and answer not in rows[j][4].lower()
                        ]
                        same += rng.sample(pool, min(2 - len(same), len(pool)))
                    lo = rows[i][2]
                    out.write(json.dumps(_pair(rows, i, q, (q.start - lo, end - lo))) + "\n")
                    for j in same + other:
                        out.write(json.dumps(_pair(rows, j, q, None)) + "\n")
                    kept += 1
                    if args.rewrites and rng.random() < args.rewrites:
                        others = [o.text for o in a.paragraphs if o is not p]
                        made = rewrite(q.question, p.text, names, others, rng)
                        if made:
                            kind, text = made
                            moved = squad.Question(f"{q.qid}-{kind}", text, "", -1)
                            for j in [i, *same, *other]:
                                out.write(json.dumps(_pair(rows, j, moved, None)) + "\n")
                            rewritten += 1
    print(f"{kept} questions kept, {skipped} skipped, {rewritten} rewritten")


def _pair(rows, i, q, span) -> dict:
    ai, pi, *_ = rows[i]
    before = rows[i - 1][4] if i > 0 and rows[i - 1][:2] == (ai, pi) else ""
    return {
        "qid": q.qid,
        "question": q.question,
        "sentence": rows[i][4],
        "before": before,
        "label": 1 if span else 0,
        "span": list(span) if span else None,
    }


if __name__ == "__main__":
    main()
