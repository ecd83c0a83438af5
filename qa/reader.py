"""The reader: a small cross-encoder that reads a question with one candidate
sentence and says how well the sentence answers it, and which words do.

Trained by the project (`training/train_reader.py`, on SQuAD v1.1 train only)
from the packaged all-MiniLM-L6-v2 encoder, shipped as an int8 ONNX graph in
`qa/reader_model/`. Answering runs it on the few best candidates only; its
logit is one signal of the quote scorer (`qa.quotes`), never the ranking alone.

Input layout, shared by training and answering so both see the same tokens:

    [CLS] question [SEP] sentence [SEP] the previous sentence's first words [SEP]

Segment 0 is the question, segment 1 the rest. The previous sentence's opening
usually names what "he", "its" or "the company" in the candidate refers to
("The Quillmarsh lighthouse stands ..." before "In 1911 its keeper painted
..."). Outputs: one relevance logit per pair, and start/end logits over the
sentence's tokens for the highlight (the words that answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "reader_model"
MODEL_FILE = "reader-int8.onnx"
QUESTION_TOKENS = 32  # a question longer than this is cut (rare: most are 10-20)
SENTENCE_TOKENS = 72  # the candidate sentence, cut at its end when longer
# The opening of the sentence before it, where news prose names its subject.
# Readers up to run 9 read its last 20 word pieces; the shipped one (run 12)
# its first 10, so its six layers read fewer word pieces than four layers did
# (training/README.md, "Runs 11 and 12").
CONTEXT_TOKENS = 10
MAX_ANSWER_TOKENS = 24  # the longest highlight considered


@dataclass(frozen=True)
class Pair:
    """One encoded (question, sentence) pair, unpadded."""

    ids: list[int]
    types: list[int]
    sentence_lo: int  # the sentence's first token position in `ids`
    offsets: list[tuple[int, int]]  # each sentence token's (start, end) in the sentence text


def load_tokenizer(path: Path):
    """The encoder's tokenizer without its padding and truncation (qa.encoder's
    pads a batch and cuts at 256 pieces): `encode_pairs` cuts each part itself,
    so training and answering cut the same way whatever the tokenizer file says."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def encode_pairs(
    tokenizer, question: str, sentences: Sequence[str], before: Sequence[str]
) -> list[Pair]:
    """Encode `question` with each sentence and the sentence before it ("" for none)."""
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    q = tokenizer.encode(question, add_special_tokens=False).ids[:QUESTION_TOKENS]
    sents = tokenizer.encode_batch(list(sentences), add_special_tokens=False)
    ctxs = tokenizer.encode_batch([b or "" for b in before], add_special_tokens=False)
    head = [cls, *q, sep]
    pairs = []
    for s, c in zip(sents, ctxs, strict=True):
        sids = s.ids[:SENTENCE_TOKENS]
        cids = c.ids[:CONTEXT_TOKENS]
        tail = [*sids, sep, *cids, sep] if cids else [*sids, sep]
        pairs.append(
            Pair(
                ids=head + tail,
                types=[0] * len(head) + [1] * len(tail),
                sentence_lo=len(head),
                offsets=list(s.offsets[: len(sids)]),
            )
        )
    return pairs


def pad(pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(len(p.ids) for p in pairs)
    ids = np.zeros((len(pairs), width), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, p in enumerate(pairs):
        ids[row, : len(p.ids)] = p.ids
        types[row, : len(p.ids)] = p.types
        mask[row, : len(p.ids)] = 1
    return ids, types, mask


def best_span(pair: Pair, start: np.ndarray, end: np.ndarray) -> tuple[int, int, float]:
    """The highest-scoring (start token, end token) inside the sentence, as
    character offsets into the sentence, with its start+end logit."""
    n = len(pair.offsets)
    lo = pair.sentence_lo
    s = start[lo : lo + n]
    e = end[lo : lo + n]
    # score[i, j] = s[i] + e[j] for i <= j < i + MAX_ANSWER_TOKENS
    grid = s[:, None] + e[None, :]
    i, j = np.indices(grid.shape)
    grid = np.where((j >= i) & (j < i + MAX_ANSWER_TOKENS), grid, -np.inf)
    a, b = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return pair.offsets[a][0], pair.offsets[b][1], float(grid[a, b])


@dataclass(frozen=True)
class Reading:
    logit: float  # how well the sentence answers the question (higher: better)
    span: tuple[int, int] | None  # the answering words, offsets into the sentence
    span_logit: float = 0.0  # the span's start + end logit: how sure the reader is of it


class Reader:
    """The shipped reader model, run with onnxruntime (no torch)."""

    def __init__(self, model: Path | None = None, threads: int | None = None) -> None:
        from qa.encoder import onnx_session, packaged_model_path

        self.tokenizer = load_tokenizer(packaged_model_path() / "tokenizer.json")
        self.session = onnx_session(model or MODEL_DIR / MODEL_FILE, threads)

    @staticmethod
    def available(model: Path | None = None) -> bool:
        return (model or MODEL_DIR / MODEL_FILE).is_file()

    def read(self, question: str, sentences: Sequence[str], before: Sequence[str]) -> list[Reading]:
        if not sentences:
            return []
        pairs = encode_pairs(self.tokenizer, question, sentences, before)
        ids, types, mask = pad(pairs)
        rel, start, end = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        out = []
        for row, pair in enumerate(pairs):
            span, sure = None, 0.0
            if pair.offsets:
                a, b, sure = best_span(pair, start[row], end[row])
                span = (a, b)
            out.append(Reading(float(rel[row]), span, sure))
        return out
