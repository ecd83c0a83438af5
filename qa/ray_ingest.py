"""Indexing on Ray: read, chunk and embed in Ray Data, into a Milvus store.

In: paths (files or folders), a `MilvusStore`, and a Ray cluster's address
(None starts a local one). Out: the same `IndexReport` as `qa.indexer`.

The pipeline is `from_items(files)` → a read stage (each file streamed
article by article, a JSON-lines export of any size included) → an actor pool
(`map_batches`), each actor holding one ONNX encoder on one thread, which
chunks and embeds exactly as the single-process path does (the same
`chunk_records`, the same encoder inputs). Articles whose content hash the
live version already holds are dropped in the read stage, before any model
work.

Who writes. Milvus Lite is a file one process at a time may open, so with a
Lite store (`milvus:///PATH.db`) the actors send chunks and vectors back and
the driver writes them through the ordinary `MilvusWriteSession.put`. With a
server (`milvus://HOST:PORT`) each actor writes its own rows of the version
the driver opened; ids come from one `_IdBlocks` actor that hands every
article (named by its place in the input: file number, article number) the
same block however often its task is retried, and rows are upserted, so a
retried task rewrites the same rows. Either way the driver takes each
article's outcome in input order and makes the single-process path's
decisions (added, updated, unchanged, duplicate, no text): it adopts the rows
it keeps and drops the others, then publishes the version (one "current:N"
row) only after every batch has succeeded. A failure anywhere abandons the
version; a killed driver leaves an unpublished one, which the next writer
deletes before it starts (`MilvusStore.writer`).

Workers read the input files and the encoder folder at the paths the driver
gives: on a cluster of several machines, those paths (and `qa[ray]`) must be
on every node.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from qa.encoder import DIM, OnnxEncoder, export_onnx_encoder, has_onnx_encoder
from qa.errors import EncoderUnavailable, InvalidInput, QAError
from qa.indexer import ProgressCallback, chunk_records, describe_encoder, read_file_batches
from qa.models import IndexReport
from qa.readers import iter_article_files
from qa.store import ChunkRecord, StoredArticle
from qa.stores.milvus import MilvusStore, MilvusWriteSession, article_rows
from qa.stores.uri import StoreURI

BATCH_ARTICLES = 32  # articles per actor call: a few hundred encoder inputs
READ_BATCH = 64  # articles per block the read stage yields
LOCAL_OBJECT_STORE = 256 * 1024**2  # a local cluster's object store: small on purpose
COLLECTIONS = ("articles", "chunks", "sentences")


class RayUnavailable(QAError):
    """Indexing on Ray cannot start: ray missing, or the cluster unreachable."""

    code = "ray_unavailable"
    status = 503


class RayIngestFailed(QAError):
    """A Ray task failed after its retries: nothing was published."""

    code = "ray_ingest_failed"
    status = 500


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:  # an optional extra
        raise RayUnavailable("indexing on Ray needs ray: pip install 'qa[ray]'") from exc
    return ray


# -- rows passed between stages ------------------------------------------------------
# Every stage emits the same columns, so Ray Data keeps one schema:
#   kind      "file" (a file's end: its problems and article count), "unchanged",
#             "empty" (an article with no text to index), or "article"
#   key       "FILE:N", the article's place in the input (file number, article number)
#   article   the StoredArticle as JSON (its text left out when workers write)
#   chunks    the ChunkRecords as JSON ("" when workers write)
#   vectors   chunk then sentence vectors, float32 bytes ("" when workers write)
#   written   row ids by collection, as JSON, when workers write ("" otherwise)


def _row(kind: str, key: str, article: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "article": article,
        "chunks": extra.get("chunks", ""),
        "vectors": extra.get("vectors", b""),
        "written": extra.get("written", ""),
    }


_NAMES = ("kind", "key", "article", "chunks", "vectors", "written")


def _columns(rows: list[dict[str, Any]]):
    """A block as an Arrow table with explicit types: through numpy, bytes would
    lose their trailing zero bytes (fixed-width 'S' arrays strip them)."""
    import pyarrow as pa

    types = {"vectors": pa.binary()}
    return pa.table(
        {n: pa.array([r[n] for r in rows], type=types.get(n, pa.string())) for n in _NAMES}
    )


def _records_json(records: Sequence[ChunkRecord]) -> str:
    return json.dumps([[c.start, c.end, c.terms, c.sentences, c.sentence_terms] for c in records])


def _records(text: str) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            start=start,
            end=end,
            terms=terms,
            sentences=tuple((s, e) for s, e in sentences),
            sentence_terms=tuple(sentence_terms),
        )
        for start, end, terms, sentences, sentence_terms in json.loads(text)
    ]


# -- stage 1: read -------------------------------------------------------------------


def _read_files(batch: dict[str, Any], live: dict[str, str]) -> Iterator[Any]:
    """Each file of the batch streamed as article rows, in blocks of READ_BATCH,
    then one "file" row with its problems. `live`: id → hash already stored."""
    from qa.indexer import stored_article

    for number, path in zip(batch["file"], batch["path"], strict=True):
        rows: list[dict[str, Any]] = []
        found = 0
        for _, articles, problems in read_file_batches([Path(path)]):
            for src in articles:
                key = f"{number}:{found}"
                found += 1
                stored = stored_article(src)
                if live.get(stored.id) == stored.content_hash:
                    rows.append(_row("unchanged", key))
                else:
                    rows.append(_row("article", key, json.dumps(asdict(stored))))
                if len(rows) >= READ_BATCH:
                    yield _columns(rows)
                    rows = []
            info = json.dumps({"path": path, "found": found, "problems": problems})
            rows.append(_row("file", f"{number}:-1", info))
        yield _columns(rows)


# -- stage 2: chunk, embed (and, on a server, write) -----------------------------------


class _IdBlocks:
    """Hands out row ids: the same block to the same article however often it
    asks, so a retried task writes the same rows. One actor per run."""

    def __init__(self, next_ids: dict[str, int]) -> None:
        self.next = {c: int(next_ids.get(c, 1)) for c in COLLECTIONS}
        self.given: dict[str, dict[str, int]] = {}

    def take(self, wants: list[tuple[str, dict[str, int]]]) -> list[dict[str, int]]:
        out = []
        for key, counts in wants:
            if key not in self.given:
                self.given[key] = {c: self.next[c] for c in COLLECTIONS}
                for c in COLLECTIONS:
                    self.next[c] += counts[c]
            out.append(self.given[key])
        return out

    def next_ids(self) -> dict[str, int]:
        return dict(self.next)


class _Embedder:
    """One actor: the encoder loaded once, on one thread; with `target` set
    (a Milvus server), it writes each article's rows of `version` itself."""

    def __init__(
        self,
        encoder_dir: str,
        target: StoreURI | None,
        version: int,
        blocks: Any,
        batch_size: int,
    ) -> None:
        self.encoder = OnnxEncoder(Path(encoder_dir), threads=1, bulk=True)
        self.version = version
        self.blocks = blocks
        self.batch_size = batch_size
        self.db = None
        if target is not None:
            from qa.stores.milvus import _Milvus

            self.db = _Milvus(target)

    def __call__(self, batch: dict[str, Any]) -> Any:
        rows: list[dict[str, Any]] = []
        todo: list[tuple[int, str, StoredArticle, list[ChunkRecord]]] = []
        for i, (kind, key, text) in enumerate(
            zip(batch["kind"], batch["key"], batch["article"], strict=True)
        ):
            if kind != "article":
                rows.append(_row(kind, key, text))
                continue
            article = StoredArticle(**json.loads(text))
            records = chunk_records(article, self.encoder)
            rows.append(_row("empty" if not records else "article", key, text))
            if records:
                todo.append((i, key, article, records))
        if todo:
            self._embed(rows, todo)
        return _columns(rows)

    def _embed(self, rows: list[dict], todo: list[tuple[int, str, StoredArticle, list]]) -> None:
        # The single-process path's encoder inputs, embedded together per call.
        chunk_inputs = [f"{a.title}\n{a.text[c.start : c.end]}" for _, _, a, rs in todo for c in rs]
        sentence_inputs = [a.text[s:e] for _, _, a, rs in todo for c in rs for s, e in c.sentences]
        chunk_vecs = self.encoder.embed(chunk_inputs, self.batch_size)
        sent_vecs = self.encoder.embed(sentence_inputs, self.batch_size)
        built = []
        ci = si = 0
        for i, key, article, records in todo:
            n_s = sum(len(c.sentences) for c in records)
            cv, sv = chunk_vecs[ci : ci + len(records)], sent_vecs[si : si + n_s]
            ci, si = ci + len(records), si + n_s
            if self.db is None:  # the driver writes
                rows[i]["chunks"] = _records_json(records)
                rows[i]["vectors"] = np.concatenate([cv, sv]).astype(np.float32).tobytes()
            else:
                built.append((i, key, _numbered_from_zero(article, records, cv, sv, self.version)))
                head = {k: v for k, v in asdict(article).items() if k != "text"}
                rows[i]["article"] = json.dumps({**head, "text": "", "chunks": len(records)})
        if built:
            self._write(rows, built)

    def _write(self, rows: list[dict], built: list[tuple[int, str, dict]]) -> None:
        """Give each article's rows its id block and upsert them all: a retried
        task gets the same blocks, so it rewrites the same rows."""
        import ray

        wants = [(key, {c: len(out[c]) for c in COLLECTIONS}) for _, key, out in built]
        blocks = ray.get(self.blocks.take.remote(wants))
        batch: dict[str, list[dict]] = {c: [] for c in COLLECTIONS}
        for (i, _, out), first in zip(built, blocks, strict=True):
            for r in out["articles"]:
                r["row"] += first["articles"]
            for r in out["chunks"]:
                r["id"] += first["chunks"]
            for r in out["sentences"]:
                r["id"] += first["sentences"]
                r["chunk_id"] += first["chunks"]
            rows[i]["written"] = json.dumps(
                {c: [r["row" if c == "articles" else "id"] for r in out[c]] for c in COLLECTIONS}
            )
            for c in COLLECTIONS:
                batch[c].extend(out[c])
        for coll, items in batch.items():
            self.db.upsert(coll, items)


def _numbered_from_zero(article, records, cv, sv, version: int) -> dict[str, list[dict]]:
    """An article's rows with ids 0, 1, ... per collection (shifted to its block later)."""
    counters = dict.fromkeys(COLLECTIONS, 0)

    def take(coll: str) -> int:
        counters[coll] += 1
        return counters[coll] - 1

    return article_rows(article, records, cv, sv, version, take)


# -- the driver ----------------------------------------------------------------------


@contextlib.contextmanager
def ray_cluster(address: str | None, workers: int) -> Iterator[Any]:
    """Connect to the cluster at `address`, or start a small local one (shut
    down again at the end); a cluster this process is already connected to is
    used as it is."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    # Ray's own progress lines would bury the CLI's; warnings still show.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if address is None:
        # One CPU per encoder actor and one for reading (reads take a quarter each).
        options |= {"num_cpus": workers + 1, "object_store_memory": LOCAL_OBJECT_STORE}
        # Workers import the very qa this process runs (a checkout, not only an install).
        here = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        options["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    try:
        ray.init(address=address, **options)
    except Exception as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _encoder_dir(store: MilvusStore, export_onnx: bool) -> Path:
    folder = Path(store.encoder_dir) if store.encoder_dir else None
    if folder is None:
        raise EncoderUnavailable("indexing on Ray needs the index's encoder folder")
    if export_onnx and not has_onnx_encoder(folder):
        export_onnx_encoder(folder)
    if not has_onnx_encoder(folder):
        raise EncoderUnavailable(f"no ONNX encoder in {folder}: Ray workers load that one")
    return folder.resolve()


def index_with_ray(
    paths: Iterable[Path],
    store: MilvusStore,
    *,
    address: str | None = None,
    workers: int = 2,
    batch_size: int = BATCH_ARTICLES,
    export_onnx: bool = True,
    on_file: ProgressCallback | None = None,
    files: Sequence[Path] | None = None,
) -> IndexReport:
    """Add or update the articles under `paths` in `store`, the work done on Ray
    (`workers` encoder actors of `batch_size` articles a call)."""
    if not isinstance(store, MilvusStore):
        raise InvalidInput(
            "indexing on Ray writes into a Milvus store: give --store "
            "milvus://HOST:PORT or milvus:///PATH.db (or set QA_STORE)"
        )
    started = time.perf_counter()
    encoder_dir = _encoder_dir(store, export_onnx)
    files = list(files) if files is not None else list(iter_article_files(paths))
    workers = max(1, int(workers))
    with ray_cluster(address, workers) as ray, store.writer() as session:
        encoder = OnnxEncoder(encoder_dir, threads=1)
        session.manifest["encoder"] = describe_encoder(encoder)
        del encoder
        decide = _Decisions(session, on_file)
        try:
            for row in _run(ray, store, session, encoder_dir, files, workers, batch_size, decide):
                decide.take(row)
        except QAError:
            raise
        except Exception as exc:  # a task that failed after Ray's retries
            last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise RayIngestFailed(f"indexing on Ray failed, nothing published: {last}") from exc
        counts = decide.counts
    return IndexReport(
        **counts, seconds=round(time.perf_counter() - started, 2), problems=decide.problems
    )


def _run(ray, store, session, encoder_dir, files, workers, batch_size, decide) -> Iterator[dict]:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # outcomes reach the driver in input order
    ctx.enable_progress_bars = False
    live = decide.live = session.live_hashes()
    writes = store.uri.kind == "server"  # Milvus Lite: one process may open the file
    blocks = None
    if writes:
        blocks = ray.remote(num_cpus=0)(_IdBlocks).remote(session.next_ids)
    ds = ray.data.from_items([{"file": i, "path": str(p)} for i, p in enumerate(files)])
    ds = ds.map_batches(_read_files, batch_size=1, fn_kwargs={"live": live}, num_cpus=0.25)
    ds = ds.map_batches(
        _Embedder,
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        fn_constructor_kwargs={
            "encoder_dir": str(encoder_dir),
            "target": store.uri if writes else None,
            "version": session.version,
            "blocks": blocks,
            "batch_size": 32,
        },
    )
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield from table.to_pylist()
    if blocks is not None:
        session.advance_ids(ray.get(blocks.next_ids.remote()))


class _Decisions:
    """The single-process path's choices, made by the driver in input order."""

    def __init__(self, session: MilvusWriteSession, on_file: ProgressCallback | None) -> None:
        self.session = session
        self.on_file = on_file
        self.live: dict[str, str] = {}
        self.known: dict[str, str] = {}  # id → hash: accepted in this run (over `live`)
        self.by_hash: dict[str, str] = {}  # hash → id accepted in this run
        self.counts = dict.fromkeys(
            ("added", "updated", "unchanged", "duplicates", "skipped", "removed", "chunks"), 0
        )
        self.problems: list[str] = []
        self._live_ids: dict[str, str] | None = None

    def _hash_of(self, article_id: str) -> str | None:
        return self.known.get(article_id, self.live.get(article_id))

    def _id_with_hash(self, content_hash: str) -> str | None:
        if content_hash in self.by_hash:
            return self.by_hash[content_hash]
        if self._live_ids is None:
            self._live_ids = {h: i for i, h in self.live.items()}
        found = self._live_ids.get(content_hash)
        # An article replaced in this run no longer holds its old content.
        return None if found in self.known and self.known[found] != content_hash else found

    def take(self, row: dict) -> None:
        kind = row["kind"]
        written = json.loads(row["written"]) if row["written"] else {}
        if kind == "file":
            info = json.loads(row["article"])
            self.problems.extend(info["problems"])
            if not info["found"]:
                self.counts["skipped"] += 1
            if self.on_file:
                self.on_file(Path(info["path"]))
            return
        if kind == "unchanged":
            self.counts["unchanged"] += 1
            return
        fields = json.loads(row["article"])
        if kind == "empty":
            self.counts["skipped"] += 1
            self.problems.append(f"{fields['origin']}: no text to index")
            return
        n_chunks = fields.pop("chunks", None)
        article = StoredArticle(**fields)
        old = self._hash_of(article.id)
        if old == article.content_hash:
            self.counts["unchanged"] += 1
            self.session.drop(written)
            return
        if old is None and self._id_with_hash(article.content_hash) is not None:
            self.counts["duplicates"] += 1
            self.session.drop(written)
            return
        if written:
            self.session.adopt(article.id, article.content_hash, written)
        else:
            records = _records(row["chunks"])
            n_chunks = len(records)
            vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, DIM)
            self.session.put(article, records, vectors[:n_chunks], vectors[n_chunks:])
        self.known[article.id] = article.content_hash
        self.by_hash[article.content_hash] = article.id
        self.counts["updated" if old else "added"] += 1
        self.counts["chunks"] += int(n_chunks or 0)
