"""Question → Answer: the pipeline's last step, and the one object faces call.

In: a question and a store (qa.stores.open_store: the index directory, or
Milvus). Out: an `Answer` whose quotes are whole
sentences sliced from the stored article text, best first, scored on a scale
that means the same for every question, so one threshold (settings'
`min_score`) separates answers from "not found".

question → vector + terms → `retrieval.retrieve` (passages) →
`quotes.QuoteSelector` (candidate sentences, scored) → quotes → Answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from qa.conversation import MAX_TURNS, ConversationReader, Understood
from qa.encoder import Encoder, has_onnx_encoder, load_encoder
from qa.errors import IndexEmpty, InvalidInput
from qa.models import Answer, Filters, PriorTurn, Quote
from qa.quotes import BLEND, Candidate, QuoteSelector, ScoreModel
from qa.reader import Reader
from qa.recency import asks_for_latest, keep_answered, recency_bonus
from qa.retrieval import Passages, retrieve
from qa.settings import Settings
from qa.store import Snapshot
from qa.stores.opening import open_store
from qa.terms import terms

NOT_FOUND = "The indexed articles do not appear to answer this question."
NO_MATCH = "No indexed article matches the filter ({}), so there is nothing to quote from."


class Answerer:
    """Answers questions over the settings' store, following its live version."""

    def __init__(
        self, settings: Settings, encoder: Encoder | None = None, model: ScoreModel | None = None
    ) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.selector = QuoteSelector(model, blend=BLEND if model is None else None)
        self._reader_loaded = False
        self.conversation = ConversationReader()
        self._snapshot: Snapshot | None = None
        self._encoder = encoder
        self._lock = threading.Lock()
        self._reader_lock = threading.Lock()
        # Answers are immutable and depend only on (version, question, k): popular
        # questions are answered once per index version. A new version misses.
        self._cache: OrderedDict[tuple[str, str, int], Answer] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.store.encoder_dir, self.settings.encoder)
        return self._encoder

    def load_reader(self) -> None:
        """Load the reader on first use (its ONNX session takes ~0.2 s to open)."""
        if self._reader_loaded:
            return
        with self._reader_lock:  # not self._lock: opening a snapshot goes on meanwhile
            if not self._reader_loaded:
                if self.settings.reader and Reader.available():
                    self.selector.reader = Reader()
                self._reader_loaded = True

    def _load_models_aside(self) -> list[threading.Thread]:
        """On the first question, build the encoder's and the reader's ONNX
        sessions in two threads while the caller opens the index: onnxruntime
        releases the GIL while it builds, so a cold `qa ask` overlaps all three.
        A failure there is left for the main path to raise again, clearly."""

        def reader() -> None:
            with contextlib.suppress(Exception):  # raised again on the main path
                self.load_reader()

        def encoder() -> None:
            # Only the index's own ONNX encoder: a missing index must still fail
            # at once, not after a torch import in the background.
            with contextlib.suppress(Exception):
                folder = self.store.encoder_dir
                if self.settings.encoder != "torch" and folder and has_onnx_encoder(folder):
                    _ = self.encoder

        jobs = [] if self._reader_loaded else [reader]
        if self._encoder is None:
            jobs.append(encoder)
        threads = [threading.Thread(target=job, name="qa-load-models", daemon=True) for job in jobs]
        for thread in threads:
            thread.start()
        return threads

    def snapshot(self) -> Snapshot:
        """The live version, reopened when a writer has published a new one."""
        current = self.store.current_version()
        snap = self._snapshot
        if snap is None or snap.version != current:
            with self._lock:
                snap = self._snapshot
                if snap is None or snap.version != current:
                    snap = self.store.open()
                    self._snapshot = snap  # the old one is closed by the GC when unused
        return snap

    def validate(self, question: str, k: int | None) -> tuple[str, int]:
        q = " ".join((question or "").split())
        if not q:
            raise InvalidInput("the question is empty: ask something about the articles")
        _check_text(q, "the question")
        if len(q) > self.settings.max_question_chars:
            raise InvalidInput(
                f"the question is {len(q)} characters long; the limit is "
                f"{self.settings.max_question_chars}"
            )
        k = self.settings.k if k is None else k
        if not 1 <= k <= 20:
            raise InvalidInput(f"k must be between 1 and 20, not {k}")
        return q, k

    def ask(
        self,
        question: str,
        k: int | None = None,
        history: Sequence[PriorTurn] = (),
        filters: Filters | None = None,
    ) -> Answer:
        """Answer `question`; `history` holds the earlier turns, oldest first, so a
        follow-up ("When was it launched?") is searched in a self-contained form.
        With `filters`, every quote comes from an article that satisfies them; a
        filter no article satisfies is answered "not found", saying so."""
        started = time.perf_counter()
        q, k = self.validate(question, k)
        if len(history) > MAX_TURNS:
            raise InvalidInput(
                f"the history has {len(history)} turns; at most {MAX_TURNS} are taken"
            )
        for n, turn in enumerate(history):
            _check_text(turn.question, f"earlier question {n + 1}")
        loading = self._load_models_aside()
        try:
            snap = self.snapshot()
        finally:
            # Also when the index is missing: a loader thread still inside
            # onnxruntime when the process exits is torn down there, and the C++
            # runtime aborts with "FATAL: exception not rethrown" after our message.
            for thread in loading:
                thread.join()
        seen = self.understand(q, history, snap)
        # The answer depends on what is searched, not on how it was asked.
        filters = filters if filters is not None and filters.active else None
        key = (snap.version, seen.text.casefold(), seen.prefer, seen.borrowed, k, filters)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            return cached.model_copy(update={"question": q, "took_ms": _ms_since(started)})
        among = snap.chunks_matching(filters) if filters else None
        # A filter no article satisfies: nothing to search (an empty index still says so).
        unmatched = among is not None and not len(among) and snap.n_chunks > 0
        ranked: list[Candidate] = []
        if not unmatched:
            ranked, _ = self.analyse(seen.text, snap, seen.prefer, seen.borrowed, among)
        quotes = self.selector.quotes(ranked, k)
        answered = bool(quotes) and quotes[0].score >= self.settings.min_score
        if not answered:
            quotes = []
        refusal = NO_MATCH.format(filters.describe()) if unmatched and filters else NOT_FOUND
        answer = Answer(
            question=q,
            answered=answered,
            answer=_lead(quotes[0]) if answered else refusal,
            quotes=quotes,
            took_ms=_ms_since(started),
            standalone_question=seen.text,
        )
        if self.settings.answer_cache:
            with self._cache_lock:
                self._cache[key] = answer
                while len(self._cache) > self.settings.answer_cache:
                    self._cache.popitem(last=False)
        return answer

    def understand(
        self, q: str, history: Sequence[PriorTurn], snap: Snapshot | None = None
    ) -> Understood:
        """What a question is searched as, given the earlier turns."""
        if not history:
            return Understood(q)
        return self.conversation.understand(q, history, snap or self.snapshot())

    def analyse(
        self,
        q: str,
        snap: Snapshot | None = None,
        prefer: Sequence[str] = (),
        borrowed: str = "",
        among: np.ndarray | None = None,
    ) -> tuple[list[Candidate], Passages]:
        """Scored candidate sentences (best first) and the ranked passages.
        `prefer` and `borrowed`: see `Understood`; `among`: the chunk ids a filter
        allows (`Snapshot.chunks_matching`), None for all."""
        snap = snap or self.snapshot()
        if snap.n_chunks == 0:
            raise IndexEmpty(
                f"the index at {self.store.location} has no articles: add some with `qa index PATH`"
            )
        self.load_reader()
        qvec = self.encoder.embed([q])[0]
        qterms = terms(q)
        passages = retrieve(snap, qvec, qterms, prefer, among)
        lent = frozenset(terms(borrowed)) if prefer and borrowed else frozenset()
        candidates = self.selector.candidates(snap, q, qvec, qterms, passages, lent)
        bonus = recency_bonus(candidates) if asks_for_latest(q) else None
        ranked = self.selector.score(candidates, q, bonus)
        if bonus is not None:
            ranked = keep_answered(ranked, self.settings.min_score)
        return ranked, passages

    def passages(
        self, question: str, n: int = 5, filters: Filters | None = None
    ) -> list[tuple[str, int, int]]:
        """The best passages as (article id, start, end): what `qa eval` calls recall."""
        q, _ = self.validate(question, None)
        snap = self.snapshot()
        among = snap.chunks_matching(filters) if filters and filters.active else None
        if among is not None and not len(among):
            return []
        _, passages = self.analyse(q, snap, among=among)
        rows = snap.chunks_by_id(passages.ranked[:n])
        return [(r.article_id, r.start, r.end) for r in rows]


def _lead(quote: Quote) -> str:
    """The answer sentence: the words that answer first, when the reader found
    them, then the quote they come from."""
    words = quote.highlighted
    if words and len(words) < len(quote.text):
        return f"{words} — {quote.text} [1]"
    return f"{quote.text} [1]"


def _check_text(text: str, what: str) -> None:
    """Refuse a lone surrogate (JSON's "\\ud800", undecodable bytes on a command
    line): no text holds one, and the tokenizer would fail on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} is not valid text: it holds a lone surrogate code point (U+D800-U+DFFF)"
        ) from None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
