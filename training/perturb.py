"""On-topic questions without an answer, made from answerable SQuAD-train ones.

    python -m training.perturb --fit-dir DIR [--limit 6000]

Removing a question's paragraph (training/fit_data.py) makes a question whose
article is present but silent. People also ask questions that sit right next
to what an article says: about the last where it names the first, about a
name the paragraph does not hold, about a year it does not mention, about
what did not happen. Such a question shares its words with a sentence of the
article that looks like an answer and is not one. This script rewrites
answerable fit questions (their paragraph kept) in those four ways, by rules
over the question and its article only:

- antonym: a word with an opposite the paragraph does not use (first -> last,
  largest -> smallest, before -> after, won -> lost ...);
- name: a capitalised name the paragraph holds, swapped for another name of
  the same article the paragraph lacks; skipped when another kept paragraph
  holds the new name with most of the question's other terms (it might be
  answerable there);
- number: a year or number the question names, moved to one the article never
  mentions;
- negation: "not" after the auxiliary a wh-word is subject of ("Who was ..."
  -> "Who was not ...").

Every rewrite is labelled unanswerable. The rules make mistakes (an antonym
the article states elsewhere), which is noise a linear blend tolerates. Writes
DIR/perturbed.json (SQuAD format, empty answers) for `training.gather`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from qa.terms import terms

_PAIRS = """first last; most least; largest smallest; biggest smallest; highest lowest;
earliest latest; oldest newest; longest shortest; best worst; before after; more less;
increase decrease; increased decreased; won lost; win lose; north south; east west;
northern southern; eastern western; early late; started ended; began ended; opened closed;
major minor; maximum minimum; rise fall; rose fell; higher lower; larger smaller; above below;
inside outside; ancient modern; positive negative; strongest weakest; strong weak;
allowed banned; accepted rejected; public private; internal external; upper lower;
male female; men women; successful unsuccessful; older younger; oldest youngest;
cheapest dearest; wealthiest poorest; richest poorest; popular unpopular; legal illegal;
import export; imported exported; buy sell; bought sold; join leave; joined left;
agreed refused; support oppose; supported opposed; created destroyed; built demolished;
entered left; arrived departed; birth death; born died; beginning end; top bottom;
fastest slowest; heaviest lightest; deepest shallowest; warmest coldest; hottest coldest;
increase reduce; gained lost; allies enemies; victory defeat; success failure; true false"""
ANTONYMS: dict[str, str] = {}
for _pair in _PAIRS.replace("\n", " ").split(";"):
    _a, _b = _pair.split()
    ANTONYMS.setdefault(_a, _b)
    ANTONYMS.setdefault(_b, _a)

_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][a-zA-Z]+(?: (?:of |the |de )?[A-Z][a-zA-Z]+)*")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_WH_AUX = re.compile(
    r"^(Who|What|Which \w+)\s+(was|is|were|are)\s",  # the copula: "not" goes right after
    re.I,
)
_NEGATED = re.compile(r"\b(not|never|n't|no)\b", re.I)


def _keep_case(old: str, new: str) -> str:
    return new.capitalize() if old[:1].isupper() else new


def names_of(text: str) -> list[str]:
    """Capitalised names of an article, leaving out words it also writes in
    lower case ("House" of "the house") and broken-off fragments ("Qur'an")."""
    lower = set(re.findall(r"\b[a-z]+\b", text))
    found = set()
    for m in _NAME.finditer(text):
        name = m.group()
        if len(name) < 4 or text[m.end() : m.end() + 1] in "'’-":
            continue
        if len(name.split()) == 1 and name.lower() in lower:
            continue
        found.add(name)
    return sorted(found)


def antonym(question: str, paragraph: str, rng: random.Random) -> str | None:
    words = [m for m in re.finditer(r"[A-Za-z]+", question) if m.group().lower() in ANTONYMS]
    para = paragraph.lower()
    words = [m for m in words if not re.search(rf"\b{ANTONYMS[m.group().lower()]}\b", para)]
    if not words:
        return None
    m = rng.choice(words)
    new = _keep_case(m.group(), ANTONYMS[m.group().lower()])
    return question[: m.start()] + new + question[m.end() :]


def name_swap(
    question: str, paragraph: str, names: list[str], others: list[str], rng: random.Random
) -> str | None:
    """`names`: the article's names; `others`: its other kept paragraphs."""
    mine = [m for m in _NAME.finditer(question) if m.group() in paragraph]
    pool = [n for n in names if n not in paragraph and n not in question]
    if not mine or not pool:
        return None
    m = rng.choice(mine)
    shape = len(m.group().split())
    pool = [n for n in pool if len(n.split()) == shape] or pool
    new = rng.choice(pool)
    rewritten = question[: m.start()] + new + question[m.end() :]
    rest = set(terms(question[: m.start()] + " " + question[m.end() :]))
    for text in others:
        if new in text and len(rest & set(terms(text))) >= 0.7 * max(1, len(rest)):
            return None  # another paragraph may answer the rewritten question
    return rewritten


def number_swap(question: str, article: str, rng: random.Random) -> str | None:
    found = list(_YEAR.finditer(question)) or list(_NUMBER.finditer(question))
    if not found:
        return None
    m = rng.choice(found)
    old = m.group()
    for _ in range(20):
        if _YEAR.fullmatch(old):
            new = str(int(old) + rng.choice([-1, 1]) * rng.randint(2, 30))
        else:
            value = float(old.replace(",", ""))
            new = str(max(2, round(value * rng.choice([0.3, 0.5, 2, 3, 4]))))
        if new != old and not re.search(rf"\b{re.escape(new)}\b", article):
            return question[: m.start()] + new + question[m.end() :]
    return None


def negation(question: str) -> str | None:
    m = _WH_AUX.match(question)
    if not m or _NEGATED.search(question):
        return None
    return question[: m.end()] + "not " + question[m.end() :]


def rewrite(
    question: str, paragraph: str, names: list[str], others: list[str], rng: random.Random
) -> tuple[str, str] | None:
    """One rewrite of `question` (its kind and text), the kinds tried in random order."""
    kinds = ["antonym", "name", "number", "negation"]
    rng.shuffle(kinds)
    article = "\n".join([paragraph, *others])
    for kind in kinds:
        if kind == "antonym":
            text = antonym(question, paragraph, rng)
        elif kind == "name":
            text = name_swap(question, paragraph, names, others, rng)
        elif kind == "number":
            text = number_swap(question, article, rng)
        else:
            text = negation(question)
        if text and text != question:
            return kind, text
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-dir", type=Path, required=True, help="training.fit_data's output")
    ap.add_argument("--limit", type=int, default=6000, help="rewrites written at most")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    articles = {
        a["title"]: [p["context"] for p in a["paragraphs"]]
        for a in json.loads((args.fit_dir / "articles.json").read_text())["data"]
    }
    asked = json.loads((args.fit_dir / "questions.json").read_text())["data"]
    names = {t: names_of("\n".join(ps)) for t, ps in articles.items()}
    # Each answerable question with the kept paragraph that holds its answer.
    items = []
    for entry in asked:
        title = entry["title"]
        for q in entry["paragraphs"][0]["qas"]:
            if not q["answers"]:
                continue
            answer = q["answers"][0]["text"]
            home = [p for p in articles[title] if answer in p]
            if home:
                items.append((title, q, home[0]))
    rng.shuffle(items)
    out: dict[str, list[dict]] = {}
    kinds: dict[str, int] = {}
    for title, q, para in items:
        if sum(kinds.values()) >= args.limit:
            break
        others = [p for p in articles[title] if p is not para]
        made = rewrite(q["question"], para, names[title], others, rng)
        if made:
            kind, text = made
            kinds[kind] = kinds.get(kind, 0) + 1
            qa = {"id": f"{q['id']}-{kind}", "question": text, "answers": []}
            out.setdefault(title, []).append(qa)
    data = [{"title": t, "paragraphs": [{"context": "", "qas": qs}]} for t, qs in out.items()]
    (args.fit_dir / "perturbed.json").write_text(json.dumps({"data": data, "version": "perturbed"}))
    print(f"{sum(kinds.values())} rewritten questions: {kinds}")


if __name__ == "__main__":
    main()
