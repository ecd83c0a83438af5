"""A question and the earlier turns of its conversation → what to search.

In: the new question, the earlier turns (`PriorTurn`s, oldest first: each a
question and the offsets it quoted) and an open `Snapshot`. Out: `Understood`,
the self-contained question to search and the articles to prefer, or the
question itself, untouched, when it stands on its own.

No model and no network: a follow-up is recognised by its form and by what the
index knows of its words, then rewritten from the earlier turns.

- A dangling reference ("When was *it* launched?", "What did *he* say?",
  "*this* platform") takes the subject of the previous question: its named
  thing, or for he/she after a "who" question, the person the answer named.
- A fragment ("And K-MELLODDY?", "What about in 2019?") borrows the previous
  question's shape, with its subject, year or number swapped for the new one.
- A question about the previous answer ("Who said that?", "Why?") is searched
  with that answer's rarest words, read from the index (a client's copy of a
  quote is never trusted, only its article and offsets).
- A short question with no subject of its own ("How much did the order cost?"),
  or one naming a thing the last turn named ("the bakery"), is asked about the
  conversation's subject.
- A question with its own name (a topic switch), or whose rare words belong to
  another article than the one being discussed, is answered exactly as it
  would be alone.

The answerer then prefers the articles the last answer quoted, and ranks their
sentences by the question's own words (`Understood.borrowed` are the others).

Each earlier turn is itself understood in the context of the ones before it,
so "And K-MELLODDY?" → "When was it launched?" follows the newest subject.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from qa.models import PriorTurn, QuoteRef
from qa.store import Snapshot
from qa.terms import terms

MAX_TURNS = 20  # earlier turns taken into account (the API's limit too)
RARE_IDF = 7.0  # a term this rare (in ~0.08% of chunks or fewer) marks a subject of its own
RARE_IDF_SUBJECTLESS = 5.0  # ... or ~0.7%, in a question without a pronoun to tie it back
GIST_TERMS = 3  # words of the previous answer a question about it is searched with


@dataclass(frozen=True)
class Understood:
    """What to search for a question, given its conversation."""

    text: str  # the standalone question (the question itself when no context was used)
    prefer: tuple[str, ...] = ()  # article ids the previous answer quoted: their passages first
    kind: str = "alone"  # alone | reference | fragment | about_answer | missing_subject
    subject: str | None = None  # what a rewritten question is about, for the next turn
    # Words taken from the earlier turns: they find the article and count in the
    # score, but once the article is known they name what every sentence of it is
    # about, so they do not order the sentences (else the first one naming the
    # subject wins).
    borrowed: str = ""

    @property
    def used_context(self) -> bool:
        return self.kind != "alone"


@dataclass(frozen=True)
class _Context:
    """What the conversation is about after a turn."""

    question: str  # that turn's standalone question
    subject: str | None  # the phrase naming what it was about
    person: str | None  # a person its answer named (for "he"/"she")
    articles: tuple[str, ...]  # articles its answer quoted
    quote: str | None  # the text of its best quote, read from the index


_TOKEN = re.compile(r"[^\W_](?:[\w'’&.-]*[^\W_])?")
_PRONOUNS = frozenset("it he she they him them its his her their theirs this these those".split())
_PERSONAL = frozenset("he she him his her".split())
_POSSESSIVE = frozenset("its his her their".split())
# A capitalised first word that is not a name: question words, auxiliaries, openers.
_OPENERS = frozenset(
    """what who whom whose when where why how which is are was were do does did can could will
    would should shall may might has have had and but so or also then now ok okay tell name
    list give describe explain please in on at for of to from by with the a an what's who's
    where's how's i you we yes no well right hmm about if""".split()
)
_AUX = frozenset(
    """is are was were be been do does did can could will would should has have had
    about of after before since from with by for on in at like""".split()
)
_NAME_GLUE = frozenset("of and for the & de von van der upon on".split())
_FRAGMENT_LEAD = re.compile(
    r"^\s*(?:(?:and|but|so|also|or|then)\s+)?(?:what|how)\s+about\s+|^\s*(?:and|also|or)\s+",
    re.I,
)
_WH_START = re.compile(
    r"^\s*(?:what|who|whom|whose|when|where|why|how|which|is|are|was|were|do|does|did|can|"
    r"could|will|would|should|has|have|had)\b",
    re.I,
)
_RELATIVE_TIME = re.compile(
    r"\b(?:before|after|earlier|later|previous|next|last|prior|following)\b", re.I
)
_YEAR_OR_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_WH_LEAD = re.compile(
    r"^\s*(?:(?:in|on|at|for|since|by|from|to)\s+)?(?:what|who|whom|whose|when|where|why|which|"
    r"how(?:\s+(?:much|many|long|old|far|often|big|large))?)\b\s*",
    re.I,
)
_WH_NOUN = re.compile(r"\b(?:how many|how much|which|what)\s+([a-z][\w'’-]*)", re.I)
_PREPOSITIONS = ("in ", "on ", "at ", "for ", "during ", "by ", "from ", "to ", "with ")
_WH_WORD = re.compile(r"\b(?:what|who|whom|whose|when|where|why|how|which)\b", re.I)
_ASKS_NAME = re.compile(
    r"^\s*(?:who|whom|whose|which|what (?:company|firm|team|country|city))\b", re.I
)
_WHO = re.compile(r"^\s*(?:who|whom|whose)\b", re.I)


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def _is_name(token: str, first: bool) -> bool:
    if first and token.lower() in _OPENERS:
        return False
    if token.lower() in _PRONOUNS or token == "I":
        return False
    return token[0].isupper() or (
        any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    )


def name_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the named things in a question or sentence: runs of
    capitalised words and acronyms ("Korea Pharmaceutical and Bio-Pharma
    Manufacturers Association", "K-SPACE", "BIO 2023"), glued by "of", "and"..."""
    toks = _tokens(text)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(toks):
        word = toks[i].group()
        first = i == 0 or _sentence_start(text, toks[i].start())
        if not _is_name(word, first) or (
            # A capitalised first word is a name only when it looks like one on its
            # own (an acronym, "BIO2023") or a name goes on after it ("Tony Blair").
            first
            and not (word.isupper() or any(c.isdigit() for c in word))
            and not (i + 1 < len(toks) and _is_name(toks[i + 1].group(), False))
        ):
            i += 1
            continue
        start, end, j = toks[i].start(), toks[i].end(), i + 1
        while j < len(toks) and text[toks[j - 1].end() : toks[j].start()].isspace():
            word = toks[j].group()
            if _is_name(word, False) or word.isdigit():
                end, j = toks[j].end(), j + 1
            elif (
                word.lower() in _NAME_GLUE
                and j + 1 < len(toks)
                and text[toks[j].end() : toks[j + 1].start()].isspace()
                and _is_name(toks[j + 1].group(), False)
            ):
                j += 1
            else:
                break
        spans.append((start, end))
        i = j
    return spans


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in '.!?"“:'


def _dangling(text: str) -> re.Match[str] | None:
    """The first pronoun or demonstrative that points outside the question: none
    of the question's own names comes before it ("What did the Normans do when
    they arrived?" refers to the Normans)."""
    names = name_spans(text)
    toks = _tokens(text)
    for n, m in enumerate(toks):
        word = m.group().lower()
        if word == "that" and not _pronoun_that(toks, n):
            continue
        if word not in _PRONOUNS and word not in {"that", "there"}:
            continue
        prev = toks[n - 1].group().lower() if n else ""
        nxt = toks[n + 1].group().lower() if n + 1 < len(toks) else ""
        if word == "there" and (nxt in _AUX or prev in _AUX):
            continue  # "are there", "there is": existential, not a place
        if word in _DEMONSTRATIVES and nxt in _TIME_WORDS:
            continue  # "this season", "that year": a time, not a reference
        if any(end <= m.start() for _, end in names):
            return None
        if word in _THING_PRONOUNS and len(set(terms(text[: m.start()]))) >= 3:
            return None  # "... the restored tapes able to have color added to them"
        if (
            word == "it"
            and n + 1 < len(toks)
            and toks[n + 1].group().lower() in _IMPERSONAL
            and any(start > m.end() for start, _ in names)
        ):
            continue  # "How much will it cost the Westmoor team to ...?": no referent
        return m
    return None


_THING_PRONOUNS = frozenset("it its they them their".split())
_DEMONSTRATIVES = frozenset("this that these those".split())
_TIME_WORDS = frozenset(
    "season year week month time morning evening weekend summer spring autumn winter".split()
)
_IMPERSONAL = frozenset("cost costs take takes took mean means seem seems".split())


def _pronoun_that(toks: list[re.Match[str]], n: int) -> bool:
    """ "that" as a pronoun ("Who said that?", "When did that happen?", "that deal"),
    not as a conjunction or relative ("said that the...", "the firm that makes")."""
    if n == len(toks) - 1:
        return True
    prev = toks[n - 1].group().lower() if n else ""
    return n == 0 or prev in _AUX or prev in {"what", "why", "when", "where", "how", "who"}


class ConversationReader:
    """Understands questions in their conversation over one index version at a time."""

    def __init__(self, cache_size: int = 256) -> None:
        self._article_terms: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        # What a conversation is about after each of its turns, keyed by the turns so
        # far: the next question of the same conversation reads only its last turn.
        self._contexts: OrderedDict[tuple, _Context] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def understand(self, question: str, history: Sequence[PriorTurn], snap: Snapshot) -> Understood:
        context: _Context | None = None
        key: tuple = (snap.version,)
        for turn in list(history)[-MAX_TURNS:]:
            key = (*key, turn)
            with self._lock:
                cached = self._contexts.get(key)
                if cached is not None:
                    self._contexts.move_to_end(key)
            if cached is None:
                understood = self._understand_one(turn.question, context, snap)
                cached = self._context_after(understood, turn.quotes, snap, context)
                with self._lock:
                    self._contexts[key] = cached
                    while len(self._contexts) > self._cache_size:
                        self._contexts.popitem(last=False)
            context = cached
        return self._understand_one(question, context, snap)

    # -- one question ----------------------------------------------------------
    def _understand_one(self, q: str, ctx: _Context | None, snap: Snapshot) -> Understood:
        if ctx is None:
            return Understood(q)
        asked = q  # what a self-contained question is searched as: exactly what was asked
        lead = _FRAGMENT_LEAD.match(q)
        if lead and _WH_START.match(q[lead.end() :]):
            rest = q[lead.end() :]  # "And who runs it?": a whole question after the "and"
            q = rest[0].upper() + rest[1:]
        elif lead or (not _WH_START.match(q) and len(_tokens(q)) <= 4 and terms(q)):
            return self._fragment(q[lead.end() :] if lead else q, ctx)
        qterms = terms(q)
        if not qterms:
            return self._about_answer(q, ctx, snap)
        ref = _dangling(q)
        if ref is None:
            # No pronoun: a question with no name of its own that is short ("How
            # much did the order cost?") or names a thing the last turn named ("When
            # was the system hooked up?") is about what was talked about; one with
            # its own subject, or words of a new topic, stands alone.
            if name_spans(q) or not (len(set(qterms)) <= 2 or self._names_known_thing(q, ctx)):
                return Understood(asked)
            if self._belongs_elsewhere(qterms, ctx, snap, RARE_IDF_SUBJECTLESS):
                return Understood(asked)
            return self._with_subject(q, ctx, kind="missing_subject")
        if self._belongs_elsewhere(qterms, ctx, snap):
            return Understood(asked)  # a topic switch: its rare words are not the context's
        if ref.group().lower() in {"that", "this"} and ctx.quote and _about_answer_shape(q, ref):
            return self._about_answer(q, ctx, snap)
        return self._replace(q, ref, ctx)

    @staticmethod
    def _names_known_thing(q: str, ctx: _Context) -> bool:
        """ "What will the bakery spend it on?" after a turn about the bakery: a
        "the X" whose X the previous question, its subject or its answer named."""
        known = set(terms(ctx.question)) | set(terms(ctx.subject or ""))
        if ctx.quote:
            known |= set(terms(ctx.quote))
        return any(known.intersection(terms(m.group(1))) for m in _DEFINITE.finditer(q))

    def _belongs_elsewhere(
        self, qterms: list[str], ctx: _Context, snap: Snapshot, rare: float = RARE_IDF
    ) -> bool:
        """Does the question hold a rare term the conversation so far never met?"""
        known = set(terms(ctx.question))
        for article_id in ctx.articles:
            known |= self._terms_of(article_id, snap)
        if not ctx.articles and ctx.quote:
            known |= set(terms(ctx.quote))
        foreign = [t for t in set(qterms) if t not in known]
        if not foreign:
            return False
        df = snap.doc_freqs(foreign)
        n = max(snap.n_chunks, 1)
        return any(
            df.get(t, 0) > 0 and math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) >= rare
            for t in foreign
        )

    def _terms_of(self, article_id: str, snap: Snapshot) -> frozenset[str]:
        key = (snap.version, article_id)
        with self._lock:
            found = self._article_terms.get(key)
            if found is not None:
                self._article_terms.move_to_end(key)
                return found
        text = snap.article_texts([article_id]).get(article_id)
        found = frozenset(terms(f"{text[0].title}\n{text[1]}")) if text else frozenset()
        with self._lock:
            self._article_terms[key] = found
            while len(self._article_terms) > self._cache_size:
                self._article_terms.popitem(last=False)
        return found

    def _replace(self, q: str, ref: re.Match[str], ctx: _Context) -> Understood:
        word = ref.group().lower()
        subject = ctx.person if word in _PERSONAL and ctx.person else ctx.subject
        if not subject:
            return self._with_subject(q, ctx, kind="reference")
        start, end = ref.span()
        before = q[:start].split()[-1].lower() if q[:start].split() else ""
        if word in {"this", "that", "these", "those"} and before not in _AUX:
            # "this platform" / "that deal": the demonstrative and its noun become the
            # subject ("How was that paid for?": after an auxiliary it stands alone)
            after = _TOKEN.match(q, end + 1) if end < len(q) else None
            if after and after.group().lower() not in _AUX and after.group()[0].islower():
                end = after.end()
        if word == "there":
            phrase = f"in {subject}" if q[start - 1 : start] == " " else subject
        elif word in _POSSESSIVE:
            phrase = subject + ("'" if subject.endswith("s") else "'s")
        else:
            phrase = subject
        text = q[:start] + phrase + q[end:]
        return Understood(text, ctx.articles, "reference", subject, subject)

    def _with_subject(self, q: str, ctx: _Context, kind: str) -> Understood:
        """No place to put the subject in: name it after the question."""
        about = ctx.subject or _content_words(ctx.question)
        if not about:
            return Understood(q, ctx.articles, kind)
        return Understood(f"{q.rstrip(' ?')} ({about})?", ctx.articles, kind, ctx.subject, about)

    def _fragment(self, rest: str, ctx: _Context) -> Understood:
        rest = rest.strip().rstrip("?").strip()
        base = ctx.question.rstrip().rstrip("?")
        if not rest:
            return Understood(ctx.question, ctx.articles, "fragment")
        ref = _dangling(f"What is {rest}?")
        if ref is not None and ref.group().lower() in _POSSESSIVE:
            # "And its price?": another thing about the same subject
            asked = self._replace(f"What is {rest}?", ref, ctx)
            return replace(asked, kind="fragment")
        named = _is_name(rest.split()[0], False)  # "And K-MELLODDY?", "And Roc-A-Fella?"
        rest = rest if named else rest[0].lower() + rest[1:]
        if _WH_WORD.search(rest):
            # "For how long?" after "When does it start?": the new question word on
            # the old question's words, "For how long does it start?"
            lead = _WH_LEAD.match(base)
            body = base[lead.end() :] if lead else base
            return self._fragment_of(f"{rest} {body}?", ctx)
        if _RELATIVE_TIME.search(rest):
            return self._fragment_of(f"{base}, {rest}?", ctx)
        new_number = _YEAR_OR_NUMBER.search(rest)
        old_number = _YEAR_OR_NUMBER.search(base)
        if new_number and old_number and len(terms(rest)) <= 2:
            swapped = base[: old_number.start()] + new_number.group() + base[old_number.end() :]
            return self._fragment_of(swapped + "?", ctx)
        counted = _WH_NOUN.search(base)
        if counted and not terms(counted.group(1)):
            counted = None  # "what is ...": no noun asked for
        if counted and not named and not rest.lower().startswith(_PREPOSITIONS):
            # "And tyres?" after "How many bags did they fill?": the thing counted
            noun = re.sub(r"^(?:the|a|an)\s+", "", rest, flags=re.I)
            swapped = base[: counted.start(1)] + noun + base[counted.end(1) :]
            return self._fragment_of(swapped + "?", ctx)
        if ctx.subject and ctx.subject in base and not rest.lower().startswith(_PREPOSITIONS):
            i = base.index(ctx.subject)
            swapped = base[:i] + rest + base[i + len(ctx.subject) :]
            # A new subject in the old question's shape: no preferred article.
            return Understood(swapped + "?", (), "fragment", rest)
        return self._fragment_of(f"{base} {rest}?", ctx)

    @staticmethod
    def _fragment_of(text: str, ctx: _Context) -> Understood:
        return Understood(text, ctx.articles, "fragment", ctx.subject, ctx.subject or "")

    def _about_answer(self, q: str, ctx: _Context, snap: Snapshot) -> Understood:
        """ "Who said that?": the question with the rarest words of the last answer
        (its whole text would find that sentence again, not the one answering)."""
        if not ctx.quote:
            return self._with_subject(q, ctx, kind="about_answer")
        words = [m.group() for m in _TOKEN.finditer(ctx.quote)]
        by_word = {w: t[0] for w in words if (t := terms(w))}
        df = snap.doc_freqs(list(set(by_word.values())))
        rarest = sorted(set(by_word.values()), key=lambda t: (df.get(t, 0), t))[:GIST_TERMS]
        keep, seen = [], set()
        for w in words:
            t = by_word.get(w)
            if t in rarest and t not in seen:
                keep.append(w)
                seen.add(t)
        text = f"{q.rstrip(' ?')} ({', '.join(keep)})?" if keep else q
        return Understood(text, ctx.articles, "about_answer", ctx.subject, ctx.subject or "")

    # -- what a turn leaves behind ---------------------------------------------------
    def _context_after(
        self,
        understood: Understood,
        quotes: Sequence[QuoteRef],
        snap: Snapshot,
        before: _Context | None,
    ) -> _Context:
        text = understood.text
        spans = name_spans(text)
        subject = understood.subject or (_subject_at(text, *spans[0]) if spans else None)
        if subject is None and before is not None:
            subject = before.subject  # "How much did it cost?" keeps talking about the library
        if subject is None:
            subject = _noun_phrase(text)
        quote, articles = _read_quotes(quotes, snap)
        answered = _name_answered(text, quote) if quote and _ASKS_NAME.match(text) else None
        person = answered if answered and _WHO.match(text) else None
        if answered and not person and not understood.used_context:
            subject = answered  # "Which bakery won?": the bakery it named is talked about next
        if person is None and before is not None and understood.used_context:
            person = before.person
        if person is None:
            person = next((text[s:e] for s, e in spans if " " in text[s:e]), None)
        if not articles and before is not None and understood.used_context:
            articles = before.articles
        return _Context(text, subject, person, articles, quote)


def _subject_at(text: str, start: int, end: int) -> str:
    """The named thing at text[start:end], with what it owns when it is a possessive:
    "Warsaw's stock exchange", not "Warsaw's"."""
    name = text[start:end]
    if not name.endswith(("'s", "’s")):
        return name
    words = []
    for m in _TOKEN.finditer(text, end):
        w = m.group()
        if (
            w.lower() in _AUX
            or w.lower() in _OPENERS
            or not w.islower()
            or w.endswith("ed")  # "When was Warsaw's stock exchange founded?"
            or len(words) == 3
        ):
            break
        words.append(w)
    return " ".join([name, *words]) if words else name[:-2]


def _name_answered(question: str, quote: str) -> str | None:
    """For "Who is the chairman of X?" or "Which bakery won?": the name in the
    answer nearest the words the question asked with ("Noh Yun-hong, chairman
    of ..."), not the first one; a person's name has two words or a hyphen."""
    asked = {question[s:e].lower() for s, e in name_spans(question)}
    wanted = set(terms(question))
    near = [m.start() for m in _TOKEN.finditer(quote) if wanted.intersection(terms(m.group()))]
    best: tuple[int, str] | None = None
    for s, e in name_spans(quote):
        name = quote[s:e]
        # Drop an asked name and a title the span may have swallowed ("X Chairman Noh").
        for a in asked:
            if name.lower().startswith(a):
                name = name[len(a) :].strip()
        words = name.split()
        while words and wanted.intersection(terms(words[0])):
            words.pop(0)
        name = " ".join(words)
        if not words or name.lower() in asked:
            continue
        if _WHO.match(question) and len(words) < 2 and "-" not in name:
            continue
        distance = min((abs(p - s) if p < s else abs(p - e) for p in near), default=len(quote))
        if best is None or distance < best[0]:
            best = (distance, name)
    return best[1] if best else None


def _about_answer_shape(q: str, ref: re.Match[str]) -> bool:
    """ "Who said that?", "When was that shown?", "Why is that?": the demonstrative
    stands alone, at the end or after an auxiliary, rather than before a noun
    of its own ("this platform")."""
    after = q[ref.end() :].strip(" ?.!")
    before = q[: ref.start()].split()
    return not after or bool(before and before[-1].lower() in _AUX)


def _read_quotes(quotes: Sequence[QuoteRef], snap: Snapshot) -> tuple[str | None, tuple[str, ...]]:
    """The best quote's text and the quoted articles, from the index itself; a
    reference to an unknown article or to offsets outside its text is ignored."""
    ids = list(dict.fromkeys(q.article_id for q in quotes[:20]))
    texts = snap.article_texts(ids) if ids else {}
    first: str | None = None
    articles: list[str] = []
    for ref in quotes[:20]:
        found = texts.get(ref.article_id)
        if found is None or not 0 <= ref.start < ref.end <= len(found[1]):
            continue
        if first is None:
            first = found[1][ref.start : ref.end]
        if ref.article_id not in articles:
            articles.append(ref.article_id)
    return first, tuple(articles[:3])


_DEFINITE = re.compile(r"\b(?:the|this|these|those)\s+([\w'’-]+)", re.I)
_DETERMINER = re.compile(r"\b(?:the|a|an)\s+", re.I)


def _noun_phrase(text: str) -> str | None:
    """For a question without names, its last "the ..." phrase, cut at a
    preposition or auxiliary ("the library's solar roof")."""
    text = text.rstrip(" ?")
    starts = [m.end() for m in _DETERMINER.finditer(text)]
    for at in reversed(starts):
        words: list[str] = []
        rest = text[at:].split()
        for w in rest[:4]:
            if w.lower() in _AUX or w.lower() in _OPENERS:
                break
            words.append(w)
        if len(words) == len(rest) > 1 and _DO_FIRST.search(text[:at]):
            words.pop()  # "What did the company announce?": the last word is the verb
        if words:
            return "the " + " ".join(words)
    return None


_DO_FIRST = re.compile(r"\b(?:do|does|did|will|would|can|could|should|may|might)\b", re.I)


def _content_words(text: str) -> str:
    words = [m.group() for m in _TOKEN.finditer(text) if terms(m.group())]
    return " ".join(words[:8])
