"""Chunk terms → BM25 scores, with bm25s.

Each index version stores its chunks' terms (qa.terms) in SQLite; on publish
the writer also builds a bm25s index of them and saves it beside them
(`lexical/`: numpy arrays and JSON, loaded without pickle). A question's
scores are then a sum over a few sparse columns in memory, about a tenth of
what the same query cost through SQLite FTS5, and without holding the
database's lock. bm25s numbers documents 0..n-1; `chunk_ids.npy` maps them
back to chunk ids.

Beside the BM25 index sit the terms of every sentence, as ids into the same
vocabulary (`sentence_*.npy`, a compressed sparse row layout): quote
selection asks which of a question's terms each candidate sentence holds, and
reading that from arrays costs a few microseconds where analysing the text
again cost about 18 per sentence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

DIR = "lexical"
IDS_FILE = "chunk_ids.npy"
SENTENCE_FILES = ("sentence_ids.npy", "sentence_indptr.npy", "sentence_terms.npy")
K1 = 1.2  # FTS5's and Lucene's defaults
B = 0.75


def _bm25s():
    import bm25s

    # bm25s reports progress and empty queries through logging/tqdm; a server keeps quiet.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class SavedBM25:
    """A saved bm25s index read back with numpy alone: answering never imports
    bm25s (and the scipy.sparse it pulls in, ~0.3 s of a cold `qa ask`). The
    files are bm25s's own; its scores are precomputed per (term, chunk), so a
    query's scores are sums over the query terms' columns."""

    FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")

    def __init__(self, vocab_dict: dict[str, int], scores: dict) -> None:
        self.vocab_dict = vocab_dict
        self.scores = scores  # bm25s's layout: data, indices, indptr, num_docs

    @classmethod
    def load(cls, folder: Path) -> SavedBM25:
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method") != "lucene":  # other methods add a non-occurrence term
            raise ValueError(f"{folder}: BM25 variant {params.get('method')!r} is not read here")
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        data, indices, indptr = (np.load(folder / n, allow_pickle=False) for n in cls.FILES)
        # bm25s keeps an empty term in its vocabulary that owns no column.
        whole = indptr[-1] == len(data) == len(indices)
        if not (whole and len(indptr) in (len(vocab), len(vocab) + 1)):
            raise ValueError(f"{folder}: BM25 arrays do not match its vocabulary")
        arrays = {"data": data, "indices": indices, "indptr": indptr}
        return cls(vocab, {**arrays, "num_docs": int(params["num_docs"])})

    def get_scores(self, query_terms: Sequence[str]) -> np.ndarray:
        s = self.scores
        cols = [self.vocab_dict[t] for t in query_terms if t in self.vocab_dict]
        cols = [j for j in cols if j < len(s["indptr"]) - 1]
        out = np.zeros(s["num_docs"], dtype=np.float32)
        for j in cols:
            lo, hi = int(s["indptr"][j]), int(s["indptr"][j + 1])
            out[s["indices"][lo:hi]] += s["data"][lo:hi]  # one entry per chunk in a column
        return out


_NO_SENTENCES = (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32))


class LexicalIndex:
    def __init__(
        self,
        model,
        chunk_ids: np.ndarray,
        sentences: tuple[np.ndarray, np.ndarray, np.ndarray] = _NO_SENTENCES,
    ) -> None:
        self.model = model  # bm25s.BM25, or None for an index with no chunks
        self.chunk_ids = chunk_ids
        # Sentence id i's terms are sentence_terms[indptr[j]:indptr[j + 1]], where
        # sentence_ids[j] == i (sorted, so found by binary search).
        self.sentence_ids, self.sentence_indptr, self.sentence_terms = sentences

    @classmethod
    def build(
        cls, rows: Iterable[tuple[int, str]], sentence_rows: Iterable[tuple[int, str]] = ()
    ) -> LexicalIndex:
        """From (chunk id, space-separated terms) rows, and the same for sentences."""
        ids: list[int] = []
        # Documents as lists of vocabulary ids: each list holds references to the
        # vocabulary's own ints, not a new string per token (~70 MB for BBC).
        vocab: dict[str, int] = {}
        corpus: list[list[int]] = []
        for doc, text in rows:
            ids.append(doc)
            corpus.append([vocab.setdefault(t, len(vocab)) for t in text.split()])
        if not ids:
            return cls(None, np.zeros(0, dtype=np.int64))
        model = _bm25s().BM25(k1=K1, b=B, method="lucene")
        model.index((corpus, vocab), show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64), _sentence_arrays(model, sentence_rows))

    def with_sentences(self, sentence_rows: Iterable[tuple[int, str]]) -> LexicalIndex:
        return LexicalIndex(self.model, self.chunk_ids, _sentence_arrays(self.model, sentence_rows))

    @property
    def has_sentences(self) -> bool:
        return len(self.sentence_ids) > 0 or self.model is None

    def save(self, folder: Path) -> list[Path]:
        """Write into `folder` (created); the files written, for the caller to fsync."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / IDS_FILE, self.chunk_ids, allow_pickle=False)
        arrays = (self.sentence_ids, self.sentence_indptr, self.sentence_terms)
        for name, array in zip(SENTENCE_FILES, arrays, strict=True):
            np.save(folder / name, array, allow_pickle=False)
        if self.model is not None:
            self.model.save(str(folder), show_progress=False)
        return sorted(p for p in folder.iterdir() if p.is_file())

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """ValueError or OSError when the folder does not hold a whole index. A
        folder saved before sentence terms were kept loads without them
        (`has_sentences` False): the caller supplies them with `with_sentences`."""
        chunk_ids = np.load(folder / IDS_FILE, allow_pickle=False)
        sentences = _NO_SENTENCES
        if all((folder / name).exists() for name in SENTENCE_FILES):
            ids, indptr, terms = (np.load(folder / n, allow_pickle=False) for n in SENTENCE_FILES)
            if len(indptr) != len(ids) + 1 or indptr[-1] != len(terms):
                raise ValueError(f"{folder}: sentence terms do not match their offsets")
            sentences = (ids, indptr, terms)
        if len(chunk_ids) == 0:
            return cls(None, chunk_ids)
        model = SavedBM25.load(folder)
        if model.scores.get("num_docs") != len(chunk_ids):
            raise ValueError(f"{folder}: {len(chunk_ids)} chunk ids for a different index")
        if len(sentences[2]) and sentences[2].max() >= len(model.vocab_dict):
            raise ValueError(f"{folder}: sentence terms outside the vocabulary")
        return cls(model, chunk_ids, sentences)

    def doc_freq(self, term: str) -> int:
        if self.model is None:
            return 0
        j = self.model.vocab_dict.get(term)
        if j is None:
            return 0
        indptr = self.model.scores["indptr"]
        return int(indptr[j + 1] - indptr[j])

    def search(self, query_terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        """The n best chunks by BM25 over the distinct query terms, best first."""
        ids, scores = self.top(query_terms, n)
        return list(zip(ids.tolist(), scores.tolist(), strict=True))

    def top(
        self, query_terms: Sequence[str], n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`search` as arrays: chunk ids and their BM25 scores, best first. `among`:
        only these chunk ids compete (the others' scores are zeroed before the cut)."""
        none = (np.zeros(0, np.int64), np.zeros(0, np.float32))
        if self.model is None or n < 1:
            return none
        known = sorted(t for t in set(query_terms) if t and t in self.model.vocab_dict)
        if not known:
            return none
        scores = self.model.get_scores(known)
        if among is not None:
            scores = np.where(np.isin(self.chunk_ids, among), scores, 0)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > n:
            hits = hits[np.argpartition(-scores[hits], n - 1)[:n]]
        # Best first; equal scores by chunk id, so results do not depend on layout.
        hits = hits[np.lexsort((self.chunk_ids[hits], -scores[hits]))]
        return self.chunk_ids[hits], scores[hits]

    def presence(self, sentence_ids: Sequence[int], query_terms: Sequence[str]) -> np.ndarray:
        """Which query terms each sentence holds: a bool matrix, one row per
        sentence id (in the order given), one column per query term."""
        out = np.zeros((len(sentence_ids), len(query_terms)), dtype=bool)
        # No terms: a question of stop words only ("What is it?").
        if self.model is None or not (len(self.sentence_ids) and len(sentence_ids) and query_terms):
            return out
        vocab = self.model.vocab_dict
        qids = np.asarray([vocab.get(t, -1) for t in query_terms], dtype=np.int64)
        ids = np.asarray(sentence_ids, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.sentence_ids, ids), len(self.sentence_ids) - 1)
        starts = self.sentence_indptr[rows]
        lengths = np.where(
            self.sentence_ids[rows] == ids, self.sentence_indptr[rows + 1] - starts, 0
        )
        # Gather every sentence's term ids into one array, tagged with its row.
        owner = np.repeat(np.arange(len(ids)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = self.sentence_terms[np.repeat(starts, lengths) + offsets]
        order = np.argsort(qids)
        sorted_q = qids[order]
        at = np.minimum(np.searchsorted(sorted_q, flat), len(sorted_q) - 1)
        hit = sorted_q[at] == flat
        out[owner[hit], order[at[hit]]] = True
        return out

    def term_counts(self, sentence_ids: Sequence[int]) -> np.ndarray:
        """How many terms each sentence holds (0 for an id not stored)."""
        if not (len(self.sentence_ids) and len(sentence_ids)):
            return np.zeros(len(sentence_ids), dtype=np.int64)
        ids = np.asarray(sentence_ids, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.sentence_ids, ids), len(self.sentence_ids) - 1)
        lengths = self.sentence_indptr[rows + 1] - self.sentence_indptr[rows]
        return np.where(self.sentence_ids[rows] == ids, lengths, 0)


def _sentence_arrays(
    model, rows: Iterable[tuple[int, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sentence id, space-separated terms) rows → sorted ids, offsets, term ids.
    A sentence term found in no chunk (only a word cut by a hard split of an
    overlong sentence can be) is left out: no question can match it anyway."""
    if model is None:
        return _NO_SENTENCES
    vocab = model.vocab_dict
    pairs = sorted((int(i), str(t)) for i, t in rows)
    ids = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    per_row = [[vocab[t] for t in text.split() if t in vocab] for _, text in pairs]
    indptr = np.zeros(len(pairs) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in per_row], out=indptr[1:])
    flat = np.fromiter((t for r in per_row for t in r), dtype=np.int32, count=int(indptr[-1]))
    return ids, indptr, flat
