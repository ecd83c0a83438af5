"""Chunk and sentence vectors on disk: written as they come, memory-mapped to read.

In: float32 vectors (normalised, so inner product is cosine) with their ids,
which only grow within an index's lineage. Out, in a version's `dense/`:

    chunks.npy, chunk_ids.npy        chunk vectors, one row per id, ids increasing
    sentences.npy, sentence_ids.npy  the same for sentences
    chunks.hnsw.faiss, ann.json      from `ann_min_chunks` chunks on: an approximate
    chunks.hnsw.removed.npy          index of the chunk vectors, and the ids it still
                                     holds that are gone (see below)

Opening maps the arrays (`np.load(mmap_mode="r")`): nothing is read until a
row is asked for, so opening costs the same at any size and the process holds
only the pages it touches. The writer appends new vectors to files in its work
folder and merges them with the previous version's rows on publish, a block
at a time, so indexing never holds the vectors in memory.

Search is exact (one matrix-vector product over the mapped chunk rows) below
`ann_min_chunks`; from there on an HNSW graph over 8-bit scalar-quantised codes
proposes candidates and they are re-scored exactly from chunks.npy, so the
cosines callers see are exact. HNSW was chosen over IVF by measurement
(bench/bench_ann.py, bench/RESULTS.md): questions are not drawn from the
passages' distribution, and IVF needed a third of its lists probed to find
0.97 of the exact 10 nearest where HNSW finds 0.98 in 1.5 ms. A new version
adds its new chunks to the previous version's graph; HNSW cannot delete, so
removed chunks stay in the graph as tombstones, filtered out of every search,
until they pass a tenth of it and the graph is rebuilt. Searches can be
restricted to a set of chunk ids (`allowed`), as FAISS selectors do.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from qa.encoder import DIM
from qa.lexical import npy_file

DIR = "dense"
ANN_FILE = "chunks.hnsw.faiss"
ANN_REMOVED = "chunks.hnsw.removed.npy"
ANN_META = "ann.json"
ANN_MIN_CHUNKS = 20_000  # below this, exact search takes a few ms (bench/RESULTS.md)
HNSW_LINKS = 32
EF_CONSTRUCTION = 40
EF_SEARCH = 256  # recall@10 0.984 against exact on real questions (bench/bench_ann.py)
RERANK = 8  # candidates re-scored exactly per result asked for ...
MIN_CANDIDATES = 100  # ... and at least this many
MAX_TOMBSTONES = 0.1  # rebuild the graph once this share of it is removed chunks
TRAIN_ROWS = 20_000  # rows the 8-bit codes' ranges are learnt from
BLOCK_ROWS = 32_768  # rows copied at a time when merging (~48 MB of float32)


def _faiss():
    import faiss

    # Queries are single vectors; threads only add contention on 2 cores.
    faiss.omp_set_num_threads(1)
    return faiss


class VectorSet:
    """Vectors by id: `ids` increasing, `vectors[i]` the vector of `ids[i]`."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if vectors.shape != (len(ids), DIM):
            raise ValueError(f"{len(ids)} ids for vectors of shape {vectors.shape}")
        self.ids = ids
        self.vectors = vectors

    @classmethod
    def empty(cls) -> VectorSet:
        return cls(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))

    @classmethod
    def open(cls, folder: Path, name: str) -> VectorSet:
        """Memory-mapped; ValueError or OSError when the files are damaged."""
        ids = np.load(folder / f"{name}_ids.npy", mmap_mode="r", allow_pickle=False)
        vectors = np.load(folder / f"{name}s.npy", mmap_mode="r", allow_pickle=False)
        if ids.dtype != np.int64 or vectors.dtype != np.float32:
            raise ValueError(f"{folder}: unexpected vector or id types")
        return cls(ids, vectors)

    @classmethod
    def from_faiss(cls, path: Path) -> VectorSet:
        """A version written before `dense/` (a FAISS IndexIDMap2 file), read into memory."""
        faiss = _faiss()
        index = faiss.read_index(str(path))
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if len(ids) else None
        order = np.argsort(ids, kind="stable")
        if vectors is None:
            return cls.empty()
        return cls(ids[order], np.ascontiguousarray(vectors[order], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (rows.max() >= len(self.ids) or (self.ids[rows] != ids).any()):
            raise KeyError("vector ids not in this index")
        return rows

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of these ids, in the order given (a copy, not a view)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, DIM), np.float32)
        return np.asarray(self.vectors[self.rows(ids)], dtype=np.float32)


def _top(ids: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best by score, best first; equal scores by id."""
    if len(scores) > n:
        keep = np.argpartition(-scores, n - 1)[:n]
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order].astype(np.float32)


class DenseIndex:
    """One version's vectors, opened read-only; safe to share between threads."""

    def __init__(
        self,
        chunks: VectorSet,
        sentences: VectorSet,
        ann: Any = None,
        tombstones: np.ndarray | None = None,
    ) -> None:
        self.chunks = chunks
        self.sentences = sentences
        self.ann = ann  # a faiss HNSW index over chunk ids, or None: exact search
        # Ids the graph holds that are no longer chunks: never returned.
        self.tombstones = np.zeros(0, np.int64) if tombstones is None else tombstones
        self.graph_file: Path | None = None  # the graph's file, read into `ann` or not yet

    @classmethod
    def open(cls, version: Path, graph: bool = True) -> DenseIndex:
        """ValueError, OSError or RuntimeError (FAISS) when the files are damaged.
        `graph` False leaves the HNSW graph on disk until `load_graph`: a writer
        grows it only when it publishes, and reading it first would hold it (about
        650 bytes a chunk) through the whole embedding run."""
        folder = version / DIR
        if not folder.is_dir() and (version / "chunks.faiss").exists():
            return cls(
                VectorSet.from_faiss(version / "chunks.faiss"),
                VectorSet.from_faiss(version / "sentences.faiss"),
            )
        chunks, sentences = VectorSet.open(folder, "chunk"), VectorSet.open(folder, "sentence")
        if not (folder / ANN_FILE).exists():
            return cls(chunks, sentences)
        tombstones = np.load(folder / ANN_REMOVED, allow_pickle=False)
        dense = cls(chunks, sentences, None, tombstones)
        dense.graph_file = folder / ANN_FILE
        if graph:
            dense.load_graph()
        return dense

    def load_graph(self) -> None:
        """Read the HNSW graph from `graph_file` if it is not in memory yet."""
        if self.ann is not None or self.graph_file is None:
            return
        ann = _faiss().read_index(str(self.graph_file))
        if ann.ntotal != len(self.chunks) + len(self.tombstones):
            raise ValueError(
                f"{self.graph_file.parent}: {ann.ntotal} graph vectors for {len(self.chunks)} "
                f"chunks and {len(self.tombstones)} removed"
            )
        self.ann = ann

    def search(
        self, qvec: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n chunks nearest `qvec` (among `allowed` chunk ids, if given):
        ids and exact cosines, best first."""
        q = np.asarray(qvec, dtype=np.float32).reshape(-1)
        chunks = self.chunks
        if n < 1 or not len(chunks):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is not None:
            allowed = np.intersect1d(np.asarray(allowed, dtype=np.int64), chunks.ids)
            if self.ann is None or len(allowed) <= n * MIN_CANDIDATES:
                # A small subset is cheaper to score exactly than to probe for.
                return _top(allowed, chunks.get(allowed) @ q, n)
        if self.ann is None:
            return _top(np.asarray(chunks.ids), chunks.vectors @ q, n)
        candidates = self._candidates(q, max(n * RERANK, MIN_CANDIDATES), allowed)
        return _top(candidates, chunks.get(candidates) @ q, n)

    def _candidates(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> np.ndarray:
        """Up to k chunk ids the graph finds nearest `q`, sorted by id."""
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(EF_SEARCH, k)
        # Selectors are kept referenced until the search returns (FAISS holds raw pointers).
        if allowed is not None:
            keep = faiss.IDSelectorBatch(allowed)
            params.sel = keep
        elif len(self.tombstones):
            gone = faiss.IDSelectorBatch(self.tombstones)
            keep = faiss.IDSelectorNot(gone)
            params.sel = keep
        _, ids = self.ann.search(q.reshape(1, -1), min(k, self.ann.ntotal), params=params)
        found = ids[0]
        return np.unique(found[found >= 0])


def _row_blocks(vectors: np.ndarray, keep: np.ndarray):
    """(first row, rows kept) of `vectors` a block at a time. A file-backed array is
    read with plain reads, not through its map: the pages of a map stay counted in
    the process's memory, and the writer reads every stored vector once."""
    path = getattr(vectors, "filename", None)
    offset = getattr(vectors, "offset", 0)
    with open(path, "rb") if path else _no_file() as fh:
        for lo in range(0, len(vectors), BLOCK_ROWS):
            hi = min(lo + BLOCK_ROWS, len(vectors))
            if not keep[lo:hi].any():
                continue
            if fh is None:
                block = np.asarray(vectors[lo:hi], dtype=np.float32)
            else:
                fh.seek(offset + lo * DIM * 4)
                block = np.fromfile(fh, np.float32, (hi - lo) * DIM).reshape(hi - lo, DIM)
            yield lo, block[keep[lo:hi]]


class _no_file:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class VectorAppender:
    """New vectors of one kind, appended to a raw float32 file as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids = array("q")
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._fh.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.ids.extend(int(i) for i in ids)

    def close(self) -> np.ndarray:
        """The vectors written, memory-mapped."""
        self._fh.close()
        if not self.ids:
            return np.zeros((0, DIM), np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(len(self.ids), DIM))


class DenseWriter:
    """A new version's vectors: the base version's, minus removed ids, plus new ones."""

    def __init__(self, work: Path, base: DenseIndex | None) -> None:
        self.folder = work / DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.base = base or DenseIndex(VectorSet.empty(), VectorSet.empty())
        self.new = {
            "chunk": VectorAppender(self.folder / "chunks.new"),
            "sentence": VectorAppender(self.folder / "sentences.new"),
        }
        self.removed: dict[str, set[int]] = {"chunk": set(), "sentence": set()}
        ids = self.base.chunks.ids
        self.base_max_chunk_id = int(ids[-1]) if len(ids) else 0

    def add(self, kind: str, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.new[kind].add(ids, vectors)

    def remove(self, kind: str, ids: list[int]) -> None:
        self.removed[kind].update(ids)

    def finish(self, ann_min_chunks: int) -> list[Path]:
        """Write the merged arrays (and the HNSW graph when due); the files written."""
        written = []
        merged = {}
        for kind, base in (("chunk", self.base.chunks), ("sentence", self.base.sentences)):
            merged[kind] = self._merge(kind, base)
            written += [self.folder / f"{kind}s.npy", self.folder / f"{kind}_ids.npy"]
        written += self._write_ann(merged["chunk"], ann_min_chunks)
        for kind in self.new:
            os.unlink(self.new[kind].path)
        return written

    def abandon(self) -> None:
        for appender in self.new.values():
            appender._fh.close()

    def _merge(self, kind: str, base: VectorSet) -> VectorSet:
        new_vectors = self.new[kind].close()
        new_ids = np.frombuffer(self.new[kind].ids, dtype=np.int64)
        removed = np.fromiter(self.removed[kind], np.int64)
        keep_base = ~np.isin(base.ids, removed)
        keep_new = ~np.isin(new_ids, removed)
        ids = np.concatenate([np.asarray(base.ids)[keep_base], new_ids[keep_new]])
        if len(ids) > 1 and (np.diff(ids) <= 0).any():
            # Ids only grow within a lineage, so base rows then new rows are in order.
            raise ValueError("vector ids out of order")
        np.save(self.folder / f"{kind}_ids.npy", ids, allow_pickle=False)
        with npy_file(self.folder / f"{kind}s.npy", np.float32, (len(ids), DIM)) as out:
            for source, keep in ((base.vectors, keep_base), (new_vectors, keep_new)):
                for _, block in _row_blocks(source, keep):
                    out.write(block.tobytes())
        del new_vectors
        return VectorSet.open(self.folder, kind)

    def _write_ann(self, chunks: VectorSet, ann_min_chunks: int) -> list[Path]:
        if len(chunks) < max(ann_min_chunks, 1):
            return []
        faiss = _faiss()
        removed = np.fromiter(self.removed["chunk"], np.int64)
        tombstones = np.union1d(self.base.tombstones, removed)
        self.base.load_graph()  # read only now (Writer.finish checks it first)
        index = self.base.ann  # the writer's own copy of the base graph: grown in place
        if index is not None and len(tombstones) <= MAX_TOMBSTONES * (
            len(chunks) + len(tombstones)
        ):
            keep = np.asarray(chunks.ids) > self.base_max_chunk_id  # the rows added
            ids = np.asarray(chunks.ids)
            for lo, block in _row_blocks(chunks.vectors, keep):
                index.add_with_ids(block, ids[lo : lo + BLOCK_ROWS][keep[lo : lo + BLOCK_ROWS]])
        else:
            index, tombstones = build_hnsw(chunks), np.zeros(0, np.int64)
        faiss.write_index(index, str(self.folder / ANN_FILE))
        np.save(self.folder / ANN_REMOVED, tombstones, allow_pickle=False)
        meta = {
            "kind": f"HNSW{HNSW_LINKS}_SQ8",
            "ef_construction": EF_CONSTRUCTION,
            "ef_search": EF_SEARCH,
            "vectors": int(index.ntotal),
            "removed": len(tombstones),
        }
        (self.folder / ANN_META).write_text(json.dumps(meta))
        return [self.folder / ANN_FILE, self.folder / ANN_REMOVED, self.folder / ANN_META]


def build_hnsw(chunks: VectorSet, seed: int = 1234) -> Any:
    """An HNSW graph over 8-bit codes of all of `chunks`, ids = chunk ids. The codes'
    ranges are learnt from a sample of rows; vectors are added a block at a time."""
    faiss = _faiss()
    n = len(chunks)
    index = faiss.index_factory(DIM, f"IDMap2,HNSW{HNSW_LINKS}_SQ8", faiss.METRIC_INNER_PRODUCT)
    faiss.downcast_index(index.index).hnsw.efConstruction = EF_CONSTRUCTION
    rng = np.random.default_rng(seed)
    sampled = np.zeros(n, dtype=bool)
    sampled[rng.choice(n, size=min(n, TRAIN_ROWS), replace=False)] = True
    index.train(np.concatenate([b for _, b in _row_blocks(chunks.vectors, sampled)]))
    ids = np.asarray(chunks.ids)
    for lo, block in _row_blocks(chunks.vectors, np.ones(n, dtype=bool)):
        index.add_with_ids(block, ids[lo : lo + len(block)])
    return index
