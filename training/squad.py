"""SQuAD v1.1 train, read the way answering reads articles.

Shared by the reader's pair mining and the scorer's fitting: the article
split (which articles train the reader, which fit the scorer) and the
sentence split come from here, so neither sees the other's questions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from qa.sentences import split_sentences

TRAIN_FILE = Path("train/squad-train-v1.1.json")  # under ../shared
SCORER_SHARE = 20  # per cent of the articles kept away from the reader, for the scorer


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    answer: str
    start: int  # offset of the answer in its paragraph


@dataclass(frozen=True)
class Paragraph:
    text: str
    questions: list[Question]


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: list[Paragraph]


def load(shared: Path) -> list[Article]:
    data = json.loads((shared / TRAIN_FILE).read_text(encoding="utf-8"))["data"]
    articles = []
    for a in data:
        paragraphs = []
        for p in a["paragraphs"]:
            qs = [
                Question(
                    q["id"], q["question"], q["answers"][0]["text"], q["answers"][0]["answer_start"]
                )
                for q in p["qas"]
                if q.get("answers")
            ]
            paragraphs.append(Paragraph(p["context"], qs))
        articles.append(Article(a["title"].replace("_", " "), paragraphs))
    return articles


def for_scorer(title: str) -> bool:
    """A fixed fifth of the articles, by a hash of the title (stable across runs)."""
    return int(hashlib.sha1(title.encode()).hexdigest(), 16) % 100 < SCORER_SHARE


def sentences(text: str) -> list[tuple[int, int]]:
    return split_sentences(text)
