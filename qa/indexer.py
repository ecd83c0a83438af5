"""Files → articles → chunks → vectors → a new index version.

In: paths (files or folders) and a store (`qa.stores.open_store`: the index
directory or Milvus; only `writer()` and `encoder_dir` are used). Out: an `IndexReport` of
what changed. Articles are streamed: read (a JSON-lines export line by line),
chunked and embedded in bounded batches, their vectors written to disk as they
come, so memory stays flat however large the input. Unchanged articles are
not re-embedded (their content hash is compared first, so a rerun passes over
them quickly); an edited one replaces its old chunks; unreadable files are
reported and skipped while the rest is indexed. Nothing is published unless
the whole run succeeds (see `Store.writer`), or, with `checkpoint`, every
that many changed articles: a killed run then resumes from the last version.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from qa.chunking import chunk_text
from qa.encoder import Encoder, export_onnx_encoder, has_onnx_encoder, load_encoder
from qa.errors import UnreadableFile
from qa.models import IndexReport, SourceArticle
from qa.readers import iter_article_files, stream_file
from qa.store import ChunkRecord, StoredArticle
from qa.stores.base import Store, WriteSession
from qa.terms import terms

BATCH_CHUNKS = 256  # chunks embedded together: enough to sort by length, small in memory
MAX_ID_CHARS = 200

ProgressCallback = Callable[[Path], None]
CheckpointCallback = Callable[[IndexReport], None]


def article_id(src: SourceArticle) -> str:
    """The given id, else one derived from where the article lives (its URL or
    file), so re-indexing an edited file replaces the old version."""
    if src.id:
        given = re.sub(r"\s+", " ", str(src.id)).strip()
        if given:
            return given[:MAX_ID_CHARS]
    key = src.url or src.origin
    stem = Path(src.origin.split("#", 1)[0]).stem
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "article"
    suffix = "-" + src.origin.split("#", 1)[1] if "#" in src.origin and not src.url else ""
    return f"{slug}{suffix}-{hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:10]}"


def content_hash(src: SourceArticle) -> str:
    fields = [src.title, src.text, src.url, src.published, src.author, src.source]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def ensure_encoder(store: Store, export_onnx: bool = True) -> Encoder:
    """The index's encoder, exporting the ONNX copy on first use."""
    if export_onnx and not has_onnx_encoder(store.encoder_dir):
        export_onnx_encoder(store.encoder_dir)
    return load_encoder(store.encoder_dir, bulk=True)


def describe_encoder(encoder: Encoder) -> dict:
    meta = getattr(encoder, "meta", None)
    return {"kind": encoder.kind, **({"quantized": meta["quantized"]} if meta else {})}


class _Batch:
    """Articles waiting to be embedded and written together."""

    def __init__(self, writer: WriteSession, encoder: Encoder) -> None:
        self.writer = writer
        self.encoder = encoder
        self.items: list[tuple[StoredArticle, list[ChunkRecord]]] = []
        self.size = 0

    def add(self, article: StoredArticle, chunks: list[ChunkRecord]) -> None:
        self.items.append((article, chunks))
        self.size += len(chunks)
        if self.size >= BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        chunk_inputs = [
            f"{a.title}\n{a.text[c.start : c.end]}" for a, chunks in self.items for c in chunks
        ]
        sentence_inputs = [
            a.text[s:e] for a, chunks in self.items for c in chunks for s, e in c.sentences
        ]
        chunk_vecs = self.encoder.embed(chunk_inputs)
        sent_vecs = self.encoder.embed(sentence_inputs)
        ci = si = 0
        for article, chunks in self.items:
            n_s = sum(len(c.sentences) for c in chunks)
            self.writer.put(
                article, chunks, chunk_vecs[ci : ci + len(chunks)], sent_vecs[si : si + n_s]
            )
            ci += len(chunks)
            si += n_s
        self.items, self.size = [], 0


def stored_article(src: SourceArticle) -> StoredArticle:
    return StoredArticle(
        id=article_id(src),
        title=src.title,
        text=src.text,
        content_hash=content_hash(src),
        url=src.url,
        published=src.published,
        author=src.author,
        source=src.source,
        origin=src.origin,
    )


def chunk_records(article: StoredArticle, encoder: Encoder) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            start=c.start,
            end=c.end,
            sentences=c.sentences,
            terms=" ".join(terms(article.title + "\n" + article.text[c.start : c.end])),
            sentence_terms=tuple(" ".join(terms(article.text[s:e])) for s, e in c.sentences),
        )
        for c in chunk_text(article.text, encoder.count_tokens)
    ]


# (source, its articles, problems): the articles may be a lazy iterator that
# appends to `problems` while it is consumed, so problems are read afterwards.
FileBatch = tuple[Path | str, Iterable[SourceArticle], list[str]]


def _guarded(articles: Iterator[SourceArticle], problems: list[str]) -> Iterator[SourceArticle]:
    try:
        yield from articles
    except UnreadableFile as exc:
        problems.append(exc.message)


def read_file_batches(files: Iterable[Path]) -> Iterator[FileBatch]:
    """Each file as a stream of its articles (a JSON-lines export of any size is
    read article by article); what cannot be read becomes a problem."""
    for path in files:
        problems: list[str] = []
        yield path, _guarded(stream_file(path, problems), problems), problems


def index_paths(
    paths: Iterable[Path],
    store: Store,
    *,
    export_onnx: bool = True,
    on_file: ProgressCallback | None = None,
    files: Sequence[Path] | None = None,
    checkpoint: int = 0,
    on_checkpoint: CheckpointCallback | None = None,
) -> IndexReport:
    """Add or update the articles found under `paths` (files or folders)."""
    files = list(files) if files is not None else list(iter_article_files(paths))
    return index_batches(
        read_file_batches(files),
        store,
        export_onnx=export_onnx,
        on_file=on_file,
        checkpoint=checkpoint,
        on_checkpoint=on_checkpoint,
    )


def index_articles(
    articles: Sequence[SourceArticle], store: Store, *, export_onnx: bool = True
) -> IndexReport:
    """Add or update articles already in memory (an upload, an API request)."""
    return index_batches([("request", list(articles), [])], store, export_onnx=export_onnx)


def _each_article(
    batches: Iterable[FileBatch],
    counts: dict[str, int],
    problems: list[str],
    on_file: ProgressCallback | None,
) -> Iterator[SourceArticle]:
    """The articles of every batch in order; files that yield none count as skipped."""
    for source, articles, file_problems in batches:
        found = 0
        for src in articles:
            found += 1
            yield src
        problems.extend(file_problems)
        if not found:
            counts["skipped"] += 1
        if on_file and isinstance(source, Path):
            on_file(source)


def index_batches(
    batches: Iterable[FileBatch],
    store: Store,
    *,
    export_onnx: bool = True,
    on_file: ProgressCallback | None = None,
    checkpoint: int = 0,
    on_checkpoint: CheckpointCallback | None = None,
    remove: Sequence[str] = (),
) -> IndexReport:
    """The one indexing loop: every way of adding articles ends here.

    `checkpoint` > 0 publishes a version after every that many added or updated
    articles (and at the end), so a long run that is killed keeps its work.
    `remove` names articles to delete in the first version written (a source's
    pruned pages), so they go together with what replaces them.
    """
    started = time.perf_counter()
    encoder = ensure_encoder(store, export_onnx)
    counts = {"added": 0, "updated": 0, "unchanged": 0, "duplicates": 0, "skipped": 0, "chunks": 0}
    counts["removed"] = 0
    problems: list[str] = []
    seen_hashes: set[str] = set()
    pending = _each_article(batches, counts, problems, on_file)

    def report() -> IndexReport:
        seconds = round(time.perf_counter() - started, 2)
        return IndexReport(**counts, seconds=seconds, problems=problems)

    finished = False
    while not finished:
        finished = True
        with store.writer() as writer:
            writer.manifest["encoder"] = describe_encoder(encoder)
            if remove:
                counts["removed"] = sum(writer.remove(i) for i in dict.fromkeys(remove))
                remove = ()
            batch = _Batch(writer, encoder)
            changed = 0
            for src in pending:
                stored = stored_article(src)
                old = writer.content_hash(stored.id)
                if old == stored.content_hash:
                    counts["unchanged"] += 1
                    continue
                if old is None and (
                    stored.content_hash in seen_hashes or writer.id_with_hash(stored.content_hash)
                ):
                    counts["duplicates"] += 1  # the same article again, from another file
                    continue
                records = chunk_records(stored, encoder)
                if not records:
                    counts["skipped"] += 1
                    problems.append(f"{src.origin}: no text to index")
                    continue
                seen_hashes.add(stored.content_hash)
                counts["updated" if old else "added"] += 1
                counts["chunks"] += len(records)
                batch.add(stored, records)
                changed += 1
                if checkpoint and changed >= checkpoint:
                    finished = False  # publish what is done, then carry on in a new version
                    break
            batch.flush()
            encoder.release()  # its model is loaded again by the next embed
        if on_checkpoint and not finished:
            on_checkpoint(report())
    return report()


def rebuild_index(store: Store, *, export_onnx: bool = True) -> IndexReport:
    """Re-chunk and re-embed every stored article into a fresh version: the way to
    carry an index over to a new chunker, term analysis or model, losing nothing."""
    started = time.perf_counter()
    articles = list(store.stored_articles())  # read before the writer takes the lock
    encoder = ensure_encoder(store, export_onnx)
    chunks = 0
    with store.writer(fresh=True) as writer:
        writer.manifest["encoder"] = describe_encoder(encoder)
        batch = _Batch(writer, encoder)
        for article in articles:
            records = chunk_records(article, encoder)
            chunks += len(records)
            if records:
                batch.add(article, records)
        batch.flush()
        encoder.release()
    return IndexReport(
        updated=len(articles), chunks=chunks, seconds=round(time.perf_counter() - started, 2)
    )


def remove_articles(store: Store, ids: Sequence[str]) -> list[str]:
    """Delete articles by id; returns the ids that existed."""
    store.open().close()  # a missing or corrupt index is an error, not a new index
    removed: list[str] = []
    with store.writer() as writer:
        for article_id_ in ids:
            if writer.remove(article_id_):
                removed.append(article_id_)
    return removed
