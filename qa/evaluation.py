"""Question sets with gold answers → accuracy, abstention and latency figures.

In: a question file (the seed JSON-lines format, or SQuAD-format JSON) and an
`Answerer` over whatever index the caller built. Out: an `EvalReport`.

A question counts as answerable when its gold answers are non-empty and, for
SQuAD sets, when its article (by title) is in the index; the others should be
refused ("abstention"). A quote or passage is right when it contains one of the
gold answers, compared case-insensitively with whitespace collapsed.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from qa.answering import Answerer
from qa.errors import InvalidInput


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    answers: tuple[str, ...]
    article_title: str | None = None


class EvalReport(BaseModel):
    questions: int
    answerable: int
    unanswerable: int
    top1_accuracy: float | None
    top3_accuracy: float | None
    passage_recall_at_5: float | None
    answered_rate: float | None
    abstention_rate: float | None
    latency_ms_p50: float
    latency_ms_p95: float
    misses: list[dict]


def load_questions(path: Path) -> list[EvalQuestion]:
    raw = path.read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        out = []
        for item in data["data"]:
            title = str(item.get("title", "")).replace("_", " ")
            for para in item.get("paragraphs", []):
                for qa in para.get("qas", []):
                    answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                    out.append(EvalQuestion(qa["question"], answers, title))
        return out
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append(EvalQuestion(obj["question"], tuple(obj.get("answers") or ())))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}: line {n}: not a question object ({exc})") from None
    if not out:
        raise InvalidInput(f"{path}: no questions found")
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def contains_answer(text: str, answers: tuple[str, ...]) -> bool:
    t = _norm(text)
    return any(_norm(a) in t for a in answers)


def _rate(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def evaluate(answerer: Answerer, questions: list[EvalQuestion], k: int = 3) -> EvalReport:
    snap = answerer.snapshot()
    titles = {a.title for a in snap.articles()}
    texts: dict[str, str] = {}
    top1, top3, recall, answered, abstained, latencies, misses = [], [], [], [], [], [], []
    for item in questions:
        started = time.perf_counter()
        answer = answerer.ask(item.question, k)
        latencies.append((time.perf_counter() - started) * 1000)
        answerable = bool(item.answers) and (
            item.article_title is None or item.article_title in titles
        )
        if not answerable:
            abstained.append(not answer.answered)
            continue
        answered.append(answer.answered)
        quotes = [q.text for q in answer.quotes]
        top1.append(bool(quotes) and contains_answer(quotes[0], item.answers))
        top3.append(any(contains_answer(q, item.answers) for q in quotes[:3]))
        hit = False
        for article_id, start, end in answerer.passages(item.question, 5):
            if article_id not in texts:
                texts[article_id] = snap.article(article_id).text
            hit = hit or contains_answer(texts[article_id][start:end], item.answers)
        recall.append(hit)
        if not top1[-1]:
            misses.append(
                {
                    "question": item.question,
                    "gold": list(item.answers),
                    "top": quotes[0] if quotes else None,
                    "score": answer.quotes[0].score if answer.quotes else None,
                }
            )
    lat = sorted(latencies)
    return EvalReport(
        questions=len(questions),
        answerable=len(top1),
        unanswerable=len(abstained),
        top1_accuracy=_rate(top1),
        top3_accuracy=_rate(top3),
        passage_recall_at_5=_rate(recall),
        answered_rate=_rate(answered),
        abstention_rate=_rate(abstained),
        latency_ms_p50=round(statistics.median(lat), 2) if lat else 0.0,
        latency_ms_p95=round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2) if lat else 0.0,
        misses=misses,
    )
