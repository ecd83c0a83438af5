"""Question sets with gold answers → accuracy, abstention and latency figures.

In: a question file (the seed JSON-lines format, or SQuAD-format JSON) and an
`Answerer` over whatever index the caller built. Out: an `EvalReport`.

A question counts as answerable when its gold answers are non-empty and its
article (a SQuAD set's title, or a JSON line's `article`: id or title), if it
names one, is in the index; the others should be refused. Refusal is reported
apart for questions on topic (no answer, but the article named is indexed, or
none is named: SQuAD 2.0's unanswerable questions, WikiQA's empty ones) and off
topic (the article named is not indexed: XQuAD asked of BBC alone).

A quote or passage is right when it contains one of the gold answers, compared
case-insensitively with whitespace collapsed; a gold answer that is a whole
sentence (WikiQA's, 8 words or more) also counts when the quote's words match
it with F1 >= 0.6, since sentence splitters differ.

A JSON line may carry `filters` (`{"since", "until", "source", "article"}`, as
`qa ask` takes them): that question is asked, and its passages found, with them.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from qa.answering import Answerer
from qa.errors import InvalidInput
from qa.models import Filters


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    answers: tuple[str, ...]
    article: str | None = None  # its article's title or id, when the set names one
    filters: Filters | None = None  # asked with these filters


class EvalReport(BaseModel):
    questions: int
    answerable: int
    unanswerable: int
    top1_accuracy: float | None
    top3_accuracy: float | None
    passage_recall_at_5: float | None
    answered_rate: float | None
    abstention_rate: float | None
    refusal_on_topic: float | None = None  # no answer in the article, which is indexed
    refusal_off_topic: float | None = None  # the question's article is not indexed
    highlight_f1: float | None = None  # word F1 of the top quote's highlight, when right
    latency_ms_p50: float
    latency_ms_p95: float
    misses: list[dict]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load_questions(path: Path) -> list[EvalQuestion]:
    raw = _read_text(path)
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
            article = obj.get("article")
            if not str(obj["question"]).strip():
                raise ValueError("the question is empty")
            filters = _filters(obj.get("filters"))
            out.append(
                EvalQuestion(
                    obj["question"],
                    tuple(obj.get("answers") or ()),
                    str(article) if article else None,
                    filters,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}: line {n}: not a question object ({exc})") from None
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: line {n}: filters: {exc.message}") from None
    if not out:
        raise InvalidInput(f"{path}: no questions found")
    return out


def _filters(value: object) -> Filters | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("'filters' is not an object")
    unknown = set(value) - set(Filters.model_fields)
    if unknown:
        raise ValueError(f"'filters' has unknown fields {sorted(unknown)}")
    return Filters.of(**value)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


SENTENCE_WORDS = 8  # a gold answer this long is a sentence, matched by word F1
SENTENCE_F1 = 0.6


def contains_answer(text: str, answers: tuple[str, ...]) -> bool:
    t = _norm(text)
    for a in answers:
        gold = _norm(a)
        if gold in t:
            return True
        if len(gold.split()) >= SENTENCE_WORDS and word_f1(t, gold) >= SENTENCE_F1:
            return True
    return False


_TOKEN = re.compile(r"\w+")


def word_f1(predicted: str, gold: str) -> float:
    """SQuAD's token F1 over lower-cased words (punctuation dropped)."""
    p, g = _TOKEN.findall(predicted.lower()), _TOKEN.findall(gold.lower())
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _rate(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def indexed_names(answerer: Answerer) -> set[str]:
    """Titles and ids of the indexed articles: what a question's `article` names."""
    return {name for a in answerer.snapshot().articles() for name in (a.title, a.id)}


def evaluate(answerer: Answerer, questions: list[EvalQuestion], k: int = 3) -> EvalReport:
    snap = answerer.snapshot()
    indexed = indexed_names(answerer)
    texts: dict[str, str] = {}
    top1, top3, recall, answered, latencies, misses = [], [], [], [], [], []
    on_topic, off_topic, highlight = [], [], []
    for item in questions:
        started = time.perf_counter()
        answer = answerer.ask(item.question, k, filters=item.filters)
        latencies.append((time.perf_counter() - started) * 1000)
        present = item.article is None or item.article in indexed
        if not (item.answers and present):
            (on_topic if present else off_topic).append(not answer.answered)
            continue
        answered.append(answer.answered)
        quotes = [q.text for q in answer.quotes]
        top1.append(bool(quotes) and contains_answer(quotes[0], item.answers))
        top3.append(any(contains_answer(q, item.answers) for q in quotes[:3]))
        if top1[-1] and answer.quotes[0].highlight is not None:
            shown = answer.quotes[0].highlighted or ""
            highlight.append(max(word_f1(shown, a) for a in item.answers))
        hit = False
        for article_id, start, end in answerer.passages(item.question, 5, item.filters):
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
        unanswerable=len(on_topic) + len(off_topic),
        top1_accuracy=_rate(top1),
        top3_accuracy=_rate(top3),
        passage_recall_at_5=_rate(recall),
        answered_rate=_rate(answered),
        abstention_rate=_rate(on_topic + off_topic),
        refusal_on_topic=_rate(on_topic),
        refusal_off_topic=_rate(off_topic),
        highlight_f1=round(sum(highlight) / len(highlight), 4) if highlight else None,
        latency_ms_p50=round(statistics.median(lat), 2) if lat else 0.0,
        latency_ms_p95=round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2) if lat else 0.0,
        misses=misses,
    )


# -- conversations ------------------------------------------------------------------------
@dataclass(frozen=True)
class ConversationTurn:
    question: str  # as asked in the conversation
    answers: tuple[str, ...]  # gold substrings; empty: the articles hold no answer
    standalone: str  # the self-contained rewrite a person would write
    kind: str = ""  # start, pronoun, ellipsis, about_answer, switch... (for the breakdown)


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[ConversationTurn, ...]


class ModeFigures(BaseModel):
    """One way of asking the follow-ups."""

    top1_accuracy: float | None  # answerable follow-ups whose top quote holds the answer
    abstention_rate: float | None  # unanswerable follow-ups answered "not found"
    latency_ms_p50: float


class ConversationReport(BaseModel):
    conversations: int
    follow_ups: int  # turns after the first
    answerable: int
    unanswerable: int
    in_context: ModeFigures  # asked as in the conversation, with the earlier turns
    standalone: ModeFigures  # the rewrites, asked alone
    no_context: ModeFigures  # the follow-ups as typed, asked alone (the floor)
    by_kind: dict[str, dict[str, float | int | None]]  # top 1 per kind and mode
    misses: list[dict]


def load_conversations(path: Path) -> list[Conversation]:
    """JSON lines, one conversation a line: `{"id", "turns": [{"question", "answers",
    "standalone", "kind"}]}` (`standalone` defaults to the question)."""
    out: list[Conversation] = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            turns = tuple(
                ConversationTurn(
                    question=str(t["question"]),
                    answers=tuple(str(a) for a in t.get("answers") or ()),
                    standalone=str(t.get("standalone") or t["question"]),
                    kind=str(t.get("kind") or ("start" if i == 0 else "")),
                )
                for i, t in enumerate(obj["turns"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}: line {n}: not a conversation object ({exc})") from None
        if not turns:
            raise InvalidInput(f"{path}: line {n}: a conversation needs at least one turn")
        out.append(Conversation(str(obj.get("id") or f"line-{n}"), turns))
    if not out:
        raise InvalidInput(f"{path}: no conversations found")
    return out


def is_conversation_file(path: Path) -> bool:
    """Does the file's first non-empty line hold a conversation (a `turns` list)?"""
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError:
                    return False
                return isinstance(obj, dict) and isinstance(obj.get("turns"), list)
    return False


def evaluate_conversations(
    answerer: Answerer, conversations: list[Conversation], k: int = 3
) -> ConversationReport:
    """Ask every conversation three ways and score its follow-ups (turns after the
    first): in context, with the earlier turns as this answerer answered them;
    each standalone rewrite alone; each follow-up as typed, alone."""
    from qa.models import PriorTurn

    modes = ("in_context", "standalone", "no_context")
    right: dict[str, list[bool]] = {m: [] for m in modes}
    refused: dict[str, list[bool]] = {m: [] for m in modes}
    took: dict[str, list[float]] = {m: [] for m in modes}
    kinds: dict[str, dict[str, list[bool]]] = {}
    misses: list[dict] = []
    follow_ups = 0
    for conv in conversations:
        history: list[PriorTurn] = []
        for i, turn in enumerate(conv.turns):
            started = time.perf_counter()
            in_context = answerer.ask(turn.question, k, history)
            elapsed = (time.perf_counter() - started) * 1000
            history.append(PriorTurn.of(in_context))
            if i == 0:
                continue
            follow_ups += 1
            answers = {
                "in_context": (in_context, elapsed),
                "standalone": _timed(answerer, turn.standalone, k),
                "no_context": _timed(answerer, turn.question, k),
            }
            for mode, (answer, ms) in answers.items():
                took[mode].append(ms)
                if not turn.answers:
                    refused[mode].append(not answer.answered)
                    continue
                hit = bool(answer.quotes) and contains_answer(answer.quotes[0].text, turn.answers)
                right[mode].append(hit)
                kinds.setdefault(turn.kind or "?", {m: [] for m in modes})[mode].append(hit)
            if turn.answers and not right["in_context"][-1]:
                misses.append(
                    {
                        "conversation": conv.id,
                        "question": turn.question,
                        "searched": in_context.standalone_question,
                        "standalone": turn.standalone,
                        "gold": list(turn.answers),
                        "top": in_context.quotes[0].text if in_context.quotes else None,
                        "standalone_right": right["standalone"][-1],
                    }
                )

    def figures(mode: str) -> ModeFigures:
        lat = took[mode]
        return ModeFigures(
            top1_accuracy=_rate(right[mode]),
            abstention_rate=_rate(refused[mode]),
            latency_ms_p50=round(statistics.median(lat), 2) if lat else 0.0,
        )

    by_kind = {
        kind: {"turns": len(hits["in_context"])} | {m: _rate(hits[m]) for m in modes}
        for kind, hits in sorted(kinds.items())
    }
    return ConversationReport(
        conversations=len(conversations),
        follow_ups=follow_ups,
        answerable=len(right["in_context"]),
        unanswerable=len(refused["in_context"]),
        in_context=figures("in_context"),
        standalone=figures("standalone"),
        no_context=figures("no_context"),
        by_kind=by_kind,
        misses=misses,
    )


def _timed(answerer: Answerer, question: str, k: int):
    started = time.perf_counter()
    answer = answerer.ask(question, k)
    return answer, (time.perf_counter() - started) * 1000


def xquad_chains(path: Path, xquad: Path) -> list[Conversation]:
    """Conversations made from XQuAD: each line names XQuAD questions by id (`xquad`)
    and gives the follow-up wording (`question`) for all but the first; the original
    XQuAD question is the standalone rewrite and its answers are the gold."""
    by_id: dict[str, tuple[str, tuple[str, ...]]] = {}
    for item in json.loads(_read_text(xquad))["data"]:
        for para in item["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                by_id[qa["id"]] = (" ".join(qa["question"].split()), answers)
    out = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            turns = []
            for i, t in enumerate(obj["turns"]):
                original, answers = by_id[t["xquad"]]
                asked = original if i == 0 else str(t["question"])
                kind = "start" if i == 0 else str(t.get("kind") or "pronoun")
                turns.append(ConversationTurn(asked, answers, original, kind))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}: line {n}: not an XQuAD chain ({exc})") from None
        out.append(Conversation(str(obj.get("id") or f"line-{n}"), tuple(turns)))
    return out
