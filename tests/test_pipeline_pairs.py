"""Reader training pairs whose negatives are the answering pipeline's own near
misses (training/pipeline_pairs.py): the wrong candidates the shipped first
score ranks highest replace the BM25 ones, and a question asked again without
its paragraph gets only candidates from elsewhere."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.quotes import FEATURES
from training.pipeline_pairs import near_misses
from training.train_reader import load_groups

ROOT = Path(__file__).resolve().parents[1]

PARAGRAPH = "The bridge opened in 1124. Roman engineers built it. Its toll was a penny."


def _group(qid: str) -> list[dict]:
    base = {"qid": qid, "question": "When did the bridge open?", "before": ""}
    pos = {**base, "sentence": "The bridge opened in 1124.", "label": 1, "span": [21, 25]}
    negs = [{**base, "sentence": f"BM25 pick {n}.", "label": 0, "span": None} for n in range(3)]
    return [pos, *negs]


def _gathered(texts: list[str], cosines: list[float], right: int) -> dict:
    features = np.zeros((len(texts), len(FEATURES)))
    features[:, FEATURES.index("sentence_cosine")] = cosines  # a positive weight: ranks by it
    labels = np.zeros(len(texts), bool)
    labels[right] = True
    return {"texts": texts, "before": [""] * len(texts), "features": features, "labels": labels}


def test_negatives_are_the_best_ranked_wrong_candidates():
    texts = [
        "The bridge opened in 1124.",  # the answer
        "Roman engineers built it.",  # same paragraph
        "The second bridge opened in spring.",
        "Its toll was a penny.",
        "A bridge in Lyon opened later.",
        "Unrelated sentence.",
        "A ferry crossed the river.",
    ]
    row = _gathered(texts, [0.9, 0.3, 0.8, 0.1, 0.7, 0.0, 0.05], right=0)
    replaced, removed = near_misses(
        [_group("q1")], [row], {"q1": PARAGRAPH}, removed_share=1.0, rng=random.Random(0)
    )
    group = replaced["q1"]
    assert [p["label"] for p in group] == [1, 0, 0, 0]
    assert group[0]["span"] == [21, 25]
    assert [p["sentence"] for p in group[1:]] == [
        "The second bridge opened in spring.",
        "A bridge in Lyon opened later.",
        "Roman engineers built it.",
    ]
    # Asked again without its paragraph: four negatives, none from that paragraph.
    (again,) = removed
    assert {p["qid"] for p in again} == {"q1-removed"}
    assert [p["label"] for p in again] == [0, 0, 0, 0]
    assert [p["sentence"] for p in again] == [
        "The second bridge opened in spring.",
        "A bridge in Lyon opened later.",
        "A ferry crossed the river.",
        "Unrelated sentence.",
    ]


def test_too_few_candidates_keep_the_bm25_negatives_and_no_removed_group():
    row = _gathered(["The bridge opened in 1124.", "Another bridge."], [0.9, 0.5], right=0)
    replaced, removed = near_misses(
        [_group("q2")], [row], {"q2": PARAGRAPH}, removed_share=1.0, rng=random.Random(0)
    )
    assert [p["sentence"] for p in replaced["q2"][1:]] == [
        "Another bridge.",
        "BM25 pick 0.",
        "BM25 pick 1.",
    ]
    assert removed == []  # fewer than four candidates from elsewhere


def test_a_question_without_candidates_is_left_as_mined():
    empty = {"texts": [], "before": [], "features": np.zeros((0, 0)), "labels": np.zeros(0, bool)}
    replaced, removed = near_misses(
        [_group("q3")], [empty], {"q3": PARAGRAPH}, removed_share=1.0, rng=random.Random(0)
    )
    assert replaced == {} and removed == []


def test_mixing_keeps_bm25_negatives_after_the_pipeline_ones():
    texts = ["The bridge opened in 1124.", "BM25 pick 0.", "The second bridge opened in spring."]
    row = _gathered(texts, [0.9, 0.8, 0.7], right=0)
    replaced, _ = near_misses(
        [_group("q4")],
        [row],
        {"q4": PARAGRAPH},
        removed_share=0.0,
        rng=random.Random(0),
        pipeline=1,
    )
    # The pipeline's best wrong candidate, then BM25's picks without repeating it.
    assert [p["sentence"] for p in replaced["q4"][1:]] == [
        "BM25 pick 0.",
        "BM25 pick 1.",
        "BM25 pick 2.",
    ]


def test_a_missing_or_malformed_pairs_file_stops_with_its_name(tmp_path):
    with pytest.raises(SystemExit, match=r"absent\.jsonl: cannot read it"):
        load_groups(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "q1", "label": 1}\n{not json\n')
    with pytest.raises(SystemExit, match=r"bad\.jsonl:2: not a reader pair"):
        load_groups(bad)


def test_build_with_a_corrupt_gather_file_writes_nothing(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in _group("q1")))
    gather = tmp_path / "gather.pkl"
    gather.write_bytes(b"not a pickle")
    out = tmp_path / "out.jsonl"
    argv = ["--pairs", str(pairs), "--gather", str(gather), "--offset", "0"]
    argv += ["--questions", "1", "--held-out", "0", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "training.pipeline_pairs", "build", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "gather.pkl: not a training.gather file" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
