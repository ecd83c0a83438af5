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

The writer builds these files from the rows in two passes over a scratch file
of term ids, writing the score matrix straight into its memory-mapped `.npy`,
so building takes the vocabulary's memory, not the corpus's; the scores equal
bm25s's own build (method "lucene") value for value. A reader maps the arrays
instead of reading them.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

DIR = "lexical"
IDS_FILE = "chunk_ids.npy"
SENTENCE_FILES = ("sentence_ids.npy", "sentence_indptr.npy", "sentence_terms.npy")
BUILD_ENTRIES = 8_000_000  # score-matrix entries filled per pass when writing (~64 MB)
K1 = 1.2  # FTS5's and Lucene's defaults
B = 0.75


def lucene_idf(n_docs: int, df: int) -> float:
    """BM25's idf as Lucene (and bm25s's "lucene" method) computes it: every store's
    BM25 weights use this one, so their scores agree."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


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
    def load(cls, folder: Path, mmap: bool = False) -> SavedBM25:
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method") != "lucene":  # other methods add a non-occurrence term
            raise ValueError(f"{folder}: BM25 variant {params.get('method')!r} is not read here")
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        mode = "r" if mmap else None  # memory-mapped: pages are read as queries touch them
        data, indices, indptr = (
            np.load(folder / n, allow_pickle=False, mmap_mode=mode) for n in cls.FILES
        )
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
        """From (chunk id, space-separated terms) rows, and the same for sentences,
        in memory (for versions saved before lexical/ was): `write` then `load`."""
        with tempfile.TemporaryDirectory() as scratch:
            cls.write(Path(scratch), rows, sentence_rows)
            return cls.load(Path(scratch), mmap=False)

    @staticmethod
    def write(
        folder: Path, rows: Iterable[tuple[int, str]], sentence_rows: Iterable[tuple[int, str]]
    ) -> list[Path]:
        """Build the index of (chunk id, terms) rows, and the sentences' (id, terms)
        rows, both in id order, into `folder` (created); the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        vocab: dict[str, int] = {}
        scratch = folder / "terms.tmp"
        try:
            chunk_ids, lengths, doc_freq = _write_term_ids(rows, vocab, scratch)
            np.save(folder / IDS_FILE, chunk_ids, allow_pickle=False)
            if len(chunk_ids):
                _write_scores(folder, scratch, lengths, doc_freq, vocab)
            _write_sentences(folder, sentence_rows, vocab if len(chunk_ids) else None, scratch)
        finally:
            scratch.unlink(missing_ok=True)
        return sorted(p for p in folder.iterdir() if p.is_file())

    def with_sentences(self, sentence_rows: Iterable[tuple[int, str]]) -> LexicalIndex:
        return LexicalIndex(self.model, self.chunk_ids, _sentence_arrays(self.model, sentence_rows))

    @property
    def has_sentences(self) -> bool:
        return len(self.sentence_ids) > 0 or self.model is None

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> LexicalIndex:
        """ValueError or OSError when the folder does not hold a whole index. The
        arrays are memory-mapped unless `mmap` is False; the vocabulary is read. A
        folder saved before sentence terms were kept loads without them
        (`has_sentences` False): the caller supplies them with `with_sentences`."""
        mode = "r" if mmap else None
        chunk_ids = np.load(folder / IDS_FILE, allow_pickle=False, mmap_mode=mode)
        sentences = _NO_SENTENCES
        if all((folder / name).exists() for name in SENTENCE_FILES):
            ids, indptr, terms = (
                np.load(folder / n, allow_pickle=False, mmap_mode=mode) for n in SENTENCE_FILES
            )
            if len(indptr) != len(ids) + 1 or indptr[-1] != len(terms):
                raise ValueError(f"{folder}: sentence terms do not match their offsets")
            sentences = (ids, indptr, terms)
        if len(chunk_ids) == 0:
            return cls(None, chunk_ids)
        model = SavedBM25.load(folder, mmap=mmap)
        if model.scores.get("num_docs") != len(chunk_ids):
            raise ValueError(f"{folder}: {len(chunk_ids)} chunk ids for a different index")
        # Sentence term ids are not checked against the vocabulary here: that reads
        # every one. An id outside it matches no question term, so it is harmless.
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
    """(sentence id, space-separated terms) rows → sorted ids, offsets, term ids,
    for an index loaded without them (saved before they were kept)."""
    if model is None:
        return _NO_SENTENCES
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        ordered = sorted((int(i), str(t)) for i, t in rows)
        _write_sentences(folder, ordered, model.vocab_dict, folder / "terms.tmp")
        return tuple(np.load(folder / n, allow_pickle=False) for n in SENTENCE_FILES)


def _write_term_ids(
    rows: Iterable[tuple[int, str]], vocab: dict[str, int], scratch: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First pass: each document's term ids appended to `scratch` (int32), the
    vocabulary grown in order of first use; returns ids, lengths, document frequencies."""
    ids, lengths = array("q"), array("q")
    doc_freq = np.zeros(1024, np.int64)
    with open(scratch, "wb") as out:
        for doc, text in rows:
            term_ids = np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in text.split()), dtype=np.int32
            )
            out.write(term_ids.tobytes())
            ids.append(doc)
            lengths.append(len(term_ids))
            if len(vocab) > len(doc_freq):
                doc_freq = np.concatenate([doc_freq, np.zeros(len(vocab), np.int64)])
            doc_freq[np.unique(term_ids)] += 1
    return (
        np.frombuffer(ids, np.int64).copy(),
        np.frombuffer(lengths, np.int64).copy(),
        doc_freq[: len(vocab)],
    )


def npy_file(path: Path, dtype: np.dtype | str, shape: tuple[int, ...]):
    """An open `.npy` file, its header written, for the caller to write the data into
    in order: written by plain writes, not through a map, so the data written
    never counts in the process's memory."""
    fh = open(path, "wb")  # noqa: SIM115 - the caller closes it
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_2_0(fh, header)
    return fh


def _write_scores(
    folder: Path, scratch: Path, lengths: np.ndarray, doc_freq: np.ndarray, vocab: dict[str, int]
) -> None:
    """Second pass: the BM25 score matrix in bm25s's compressed-column files,
    computed per document exactly as bm25s computes it. The matrix is filled a
    range of columns (terms) at a time, at most BUILD_ENTRIES entries each, and
    written out in order, so memory stays bounded whatever the corpus size."""
    bm25s = _bm25s()
    model = bm25s.BM25(k1=K1, b=B, method="lucene")
    n_docs = len(lengths)
    avg_len = lengths.mean()  # a numpy float64, as bm25s has it
    idf = np.array([lucene_idf(n_docs, df) for df in doc_freq.tolist()], dtype=model.dtype)
    indptr = np.zeros(len(vocab) + 1, np.int64)
    np.cumsum(doc_freq, out=indptr[1:])
    nnz = int(indptr[-1])
    data_out = npy_file(folder / "data.csc.index.npy", model.dtype, (nnz,))
    indices_out = npy_file(folder / "indices.csc.index.npy", model.int_dtype, (nnz,))
    norms = K1 * ((1 - B) + B * lengths / avg_len)  # bm25s's length term, per document
    with data_out, indices_out:
        first = 0
        while first < len(vocab):
            reach = int(np.searchsorted(indptr, indptr[first] + BUILD_ENTRIES, side="right")) - 1
            last = max(first + 1, min(reach, len(vocab)))
            base = indptr[first]
            data = np.zeros(int(indptr[last] - base), dtype=model.dtype)
            indices = np.zeros(len(data), dtype=model.int_dtype)
            fill = indptr[first:last] - base  # next free slot of each column in range
            whole = first == 0 and last == len(vocab)
            with open(scratch, "rb") as terms:
                for doc, length in enumerate(lengths.tolist()):
                    term_ids = np.frombuffer(terms.read(4 * length), np.int32)
                    if not whole:
                        term_ids = term_ids[(term_ids >= first) & (term_ids < last)]
                        if not len(term_ids):
                            continue
                    term_ids, tf = np.unique(term_ids, return_counts=True)
                    tf = tf.astype(model.dtype)
                    # bm25s: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), times idf
                    slots = fill[term_ids - first]
                    data[slots] = idf[term_ids] * (tf / (norms[doc] + tf))
                    indices[slots] = doc
                    fill[term_ids - first] += 1
            data_out.write(data.tobytes())
            indices_out.write(indices.tobytes())
            first = last
    np.save(folder / "indptr.csc.index.npy", indptr, allow_pickle=False)
    # bm25s adds an empty token after the vocabulary when it indexes; kept alike.
    vocab_out = {**vocab, "": len(vocab)} if "" not in vocab else vocab
    (folder / "vocab.index.json").write_text(json.dumps(vocab_out, ensure_ascii=False))
    params = {
        "k1": K1,
        "b": B,
        "delta": model.delta,
        "method": model.method,
        "idf_method": model.idf_method,
        "dtype": model.dtype,
        "int_dtype": model.int_dtype,
        "num_docs": n_docs,
        "version": bm25s.__version__,
        "backend": model.backend,
    }
    (folder / "params.index.json").write_text(json.dumps(params, indent=4))


def _write_sentences(
    folder: Path, rows: Iterable[tuple[int, str]], vocab: dict[str, int] | None, scratch: Path
) -> None:
    """(sentence id, terms) rows in id order → sentence_ids, offsets and term ids
    (a compressed sparse row layout). A sentence term found in no chunk (only a word
    cut by a hard split of an overlong sentence can be) is left out: no question can
    match it anyway. Without a vocabulary (no chunks) the arrays are empty."""
    ids, ends = array("q"), array("q", [0])
    total = 0
    with open(scratch, "wb") as out:
        for sid, text in rows if vocab is not None else ():
            term_ids = np.fromiter((vocab[t] for t in text.split() if t in vocab), dtype=np.int32)
            out.write(term_ids.tobytes())
            total += len(term_ids)
            ids.append(int(sid))
            ends.append(total)
    np.save(folder / SENTENCE_FILES[0], np.frombuffer(ids, np.int64), allow_pickle=False)
    np.save(folder / SENTENCE_FILES[1], np.frombuffer(ends, np.int64), allow_pickle=False)
    with (
        npy_file(folder / SENTENCE_FILES[2], np.int32, (total,)) as out,
        open(scratch, "rb") as src,
    ):
        while block := src.read(1 << 24):
            out.write(block)
