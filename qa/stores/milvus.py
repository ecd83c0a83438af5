"""The index in Milvus: the same versions, chunks, sentences and articles as the
index directory, kept in Milvus collections through `pymilvus.MilvusClient`.

In: a store URI (qa.stores.uri: a server, or a Milvus Lite file) and, for
writing, the same `StoredArticle`/`ChunkRecord`/vectors the indexer gives the
directory store. Out: a `MilvusView` (a `ReadView`) of the published version.

How it is wired: `qa.stores.open_store(settings)` gives `IndexStore` without
a store URI and `MilvusStore(uri, encoder_dir=...)` with `--store`/`QA_STORE`
(qa/stores/opening.py says where the encoder folder is: Milvus holds data, not
the model). `Answerer` calls `store.current_version()` per question and
`store.open()` when that changes, as with the directory; the indexer needs
only `store.writer()` and `store.encoder_dir`.

Collections (names start with the URI's prefix, default `qa_`):

    state      "current:<N>" → N was published (the highest is live);
               "v<N>" → version N's manifest
    articles   one row per piece of an article's text (VARCHAR holds 64 KB)
    chunks     id, article, offsets, terms, FLOAT_VECTOR(384) (FLAT, inner product)
    sentences  id, chunk, article, offsets, terms, FLOAT_VECTOR(384)
    bm25       per version: chunk id and its BM25 weights as a SPARSE_FLOAT_VECTOR
    terms      per version: term, its id in the sparse vectors, document frequency

Versions. Article, chunk and sentence rows are written once, by the version
that adds them (`born`), and carry the version that removed them (`died`, a
huge number while live): version V sees a row when `floor(V) <= born <= V <
died`, where `floor` is the version a rebuild (`writer(fresh=True)`) started
afresh from. So a write adds only the changed articles' rows, and marks the
replaced ones died (an upsert of those rows alone). BM25 weights depend on
the whole version (chunk count, average length, document frequencies), so
each version writes its own `bm25` and `terms` rows, as the directory store
rebuilds its bm25s index on every publish. Publishing is one insert of a
"current:N" row: a reader opens the highest version so named and sees all of
it or none. A writer that dies leaves rows of a version never so named; the
next writer deletes them and revives rows it had marked died, before it
starts. The version before the live one stays readable (as in the directory);
older rows are deleted after each publish.

Milvus Lite lets one process open a file at a time, so reading and writing a
Lite store happen in one process (a server, or a test); `MilvusStore.close()`
hands the file back once no store of the process uses it. Nothing connects
before it must: a Lite file that does not exist yet reads as "no index" and
is made by the first writer. On a server nothing stops two processes from
writing at once: run one indexer at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import ChunkerSettings
from qa.encoder import DIM
from qa.errors import (
    ArticleNotFound,
    IndexBusy,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    QAError,
    StoreUnavailable,
)
from qa.models import ArticleDetail, ArticleRef, ArticleSummary, Filters
from qa.spans import SpanRow, SpanTable
from qa.store import (
    FILTER_CACHE,
    ArticleTextCache,
    ChunkRecord,
    StoredArticle,
    check_vectors,
    expected_manifest,
    published_day,
)
from qa.stores.sparse_bm25 import bm25_weights
from qa.stores.uri import StoreURI, parse_store_uri

LIVE = 2**62  # `died` of a row no version has removed
TEXT_PART_CHARS = 16_000  # at most 4 UTF-8 bytes a character: under VARCHAR's 65,535
MAX_VARCHAR = 65_535
WRITE_BATCH = 2_000  # rows per insert call
ID_WINDOW = 8_000  # ids per paged query: Milvus caps one query's result at 16,384 rows
NO_VECTOR = [0.0, 0.0]  # Milvus 2.5 wants a vector field in every collection
STATE_CURRENT = "current"
# The published versions' pointer rows: "current:N" with version -N (negative, so
# no filter on manifests' versions matches them), and the one upserted "current"
# row (version N) of stores written before; the highest N is live.
_POINTERS = f'version < 0 or key == "{STATE_CURRENT}"'
SENTENCE_FIELDS = ["id", "chunk_id", "article_id", "start", "end", "terms", "vector"]
CONNECT_TIMEOUT = 5.0  # seconds before an unreachable server is reported
LITE_WAIT = 3.0  # seconds a Lite file locked by another process is waited for

# pymilvus shares one connection between the clients of an address (closing one
# client closes it for all), and Milvus Lite runs one engine per file and
# process: both are let go when the last store of the process using them closes.
_USERS: dict[str, int] = {}
_USERS_LOCK = threading.Lock()
_OPEN: weakref.WeakSet[_Milvus] = weakref.WeakSet()  # closed by release_lite_files
_LITE_LOCKS: dict[str, Any] = {}  # Lite file → this process's handle on its lock


def _pymilvus():
    try:
        with warnings.catch_warnings():  # milvus-lite 2.5.1 imports the deprecated pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            with contextlib.suppress(ImportError):  # absent: a server URI needs no Lite
                import milvus_lite  # noqa: F401
        import pymilvus
    except ImportError as exc:  # an optional extra
        raise StoreUnavailable(
            "a Milvus store needs pymilvus: pip install 'qa[milvus]' "
            "(milvus-lite==2.5.1, pymilvus>=2.5,<2.6, setuptools<81)"
        ) from exc
    # pymilvus logs a failed connection itself; the StoreUnavailable says it once.
    for name in ("pymilvus", "pymilvus.milvus_client"):  # it configures both at import
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


class _HeldElsewhere(Exception):
    def __init__(self) -> None:
        super().__init__("the file is open in another process")


def _hold_lite_lock(db_file: Path) -> None:
    """Take milvus-lite's lock on `db_file` for this process before milvus-lite
    does, or raise `_HeldElsewhere` if another process runs an engine on it.

    Why ask first: when milvus-lite's own open fails on that lock, the failed
    server object deletes the lock file as it is collected, and the next open
    (ours on retry, or any other process's) then starts a second engine on the
    same file, whose writes the first never sees (a `qa index` beside a
    `qa serve` removed articles the server went on quoting). The lock is held
    until the engine is let go: POSIX locks belong to the process, so
    milvus-lite's own lock on the same file succeeds, and closing this handle
    earlier would drop that one too."""
    with _USERS_LOCK:
        if str(db_file) in _LITE_LOCKS:
            return
        # milvus-lite's lock file; kept open past this call, on purpose (see above)
        fd = open(db_file.parent / f".{db_file.name}.lock", "a")  # noqa: SIM115
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fd.close()
            raise _HeldElsewhere() from None
        _LITE_LOCKS[str(db_file)] = fd


def _let_go_lite_lock(db_file: str) -> None:
    fd = _LITE_LOCKS.pop(db_file, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            fd.close()


def release_lite_files() -> None:
    """Stop every Milvus Lite engine this process runs, so other processes may
    open the files. Their connections go first: pymilvus keeps one per file
    path, which a later client of the same file would otherwise reuse with the
    stopped engine's socket (and wait on forever)."""
    with _USERS_LOCK:
        for db in list(_OPEN):
            if db.uri.kind == "lite":
                _USERS.pop(db.uri.address, None)
                _OPEN.discard(db)
        # Also the connections of stores dropped unclosed: a Lite one is named by its path.
        with contextlib.suppress(ImportError):
            from pymilvus import connections

            for alias, _ in connections.list_connections():
                if alias.startswith("/"):
                    connections.remove_connection(alias)
    with contextlib.suppress(ImportError):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_all()
    with _USERS_LOCK:
        for path in list(_LITE_LOCKS):
            _let_go_lite_lock(path)


def article_key(article_id: str) -> int:
    """A signed 64-bit key for an article id. Filters match on it rather than on
    the id as a string literal (Milvus Lite's parser mishandles some escapes);
    rows are checked against the id itself after a fetch, so a collision costs
    a row read, never a wrong answer."""
    digest = hashlib.blake2b(article_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _ints(values: Iterable[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def _safe_terms(values: Iterable[str]) -> list[str]:
    # qa.terms yields letters and digits only; anything else could not be quoted safely.
    return [t for t in values if t and '"' not in t and "\\" not in t]


def _text_parts(text: str) -> list[str]:
    return [text[i : i + TEXT_PART_CHARS] for i in range(0, len(text), TEXT_PART_CHARS)] or [""]


# -- schema --------------------------------------------------------------------


def _schemas(client, pymilvus) -> dict[str, tuple[Any, Any]]:
    """Each collection's schema and index parameters."""
    dt = pymilvus.DataType

    def schema(*fields: tuple[str, Any, dict]):
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        for i, (name, kind, extra) in enumerate(fields):
            s.add_field(name, kind, is_primary=(i == 0), **extra)
        return s

    def index(field: str, kind: str = "FLAT"):
        params = client.prepare_index_params()
        params.add_index(field, index_type=kind, metric_type="IP")
        return params

    text = {"max_length": MAX_VARCHAR}
    life = [("born", dt.INT64, {}), ("died", dt.INT64, {})]
    return {
        "state": (
            schema(
                ("key", dt.VARCHAR, {"max_length": 64}),
                ("version", dt.INT64, {}),
                ("info", dt.VARCHAR, text),
                ("nothing", dt.FLOAT_VECTOR, {"dim": 2}),
            ),
            index("nothing"),
        ),
        "articles": (
            schema(
                ("row", dt.INT64, {}),
                ("article_key", dt.INT64, {}),
                ("article_id", dt.VARCHAR, {"max_length": 1024}),
                *life,
                ("part", dt.INT64, {}),
                ("content_hash", dt.VARCHAR, {"max_length": 128}),
                ("title", dt.VARCHAR, text),
                ("meta", dt.JSON, {}),  # url, published, author, source, origin; chunks
                ("text", dt.VARCHAR, text),
                ("nothing", dt.FLOAT_VECTOR, {"dim": 2}),
            ),
            index("nothing"),
        ),
        "chunks": (
            schema(
                ("id", dt.INT64, {}),
                ("article_key", dt.INT64, {}),
                ("article_id", dt.VARCHAR, {"max_length": 1024}),
                *life,
                ("start", dt.INT64, {}),
                ("end", dt.INT64, {}),
                ("terms", dt.VARCHAR, text),
                ("vector", dt.FLOAT_VECTOR, {"dim": DIM}),
            ),
            index("vector"),
        ),
        "sentences": (
            schema(
                ("id", dt.INT64, {}),
                ("chunk_id", dt.INT64, {}),
                ("article_key", dt.INT64, {}),
                ("article_id", dt.VARCHAR, {"max_length": 1024}),
                *life,
                ("start", dt.INT64, {}),
                ("end", dt.INT64, {}),
                ("terms", dt.VARCHAR, text),
                ("vector", dt.FLOAT_VECTOR, {"dim": DIM}),
            ),
            index("vector"),
        ),
        "bm25": (
            schema(
                ("row", dt.INT64, {}),
                ("chunk_id", dt.INT64, {}),
                ("version", dt.INT64, {}),
                ("weights", dt.SPARSE_FLOAT_VECTOR, {}),
            ),
            index("weights", "SPARSE_INVERTED_INDEX"),
        ),
        "terms": (
            schema(
                ("row", dt.INT64, {}),
                ("version", dt.INT64, {}),
                ("term", dt.VARCHAR, text),
                ("term_id", dt.INT64, {}),
                ("df", dt.INT64, {}),
                ("nothing", dt.FLOAT_VECTOR, {"dim": 2}),
            ),
            index("nothing"),
        ),
    }


class _Milvus:
    """One client and the collection names of one store; every call's Milvus
    error becomes a QAError with the store named."""

    def __init__(self, uri: StoreURI) -> None:
        self.uri = uri
        pymilvus = _pymilvus()
        self.error = pymilvus.MilvusException
        lite = uri.kind == "lite"
        if lite:
            Path(uri.address).parent.mkdir(parents=True, exist_ok=True)
        with _USERS_LOCK:
            _USERS[uri.address] = _USERS.get(uri.address, 0) + 1
        # A Lite file another process has just let go stays locked for a moment.
        deadline = time.monotonic() + (LITE_WAIT if lite else 0)
        while True:
            try:
                if lite:
                    _hold_lite_lock(Path(uri.address))
                self.client = pymilvus.MilvusClient(uri.address, timeout=CONNECT_TIMEOUT)
                _OPEN.add(self)
                break
            except Exception as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                self._release(connected=False)
                why = getattr(exc, "message", None) or str(exc)
                if isinstance(exc, _HeldElsewhere):
                    why = (
                        "another process has this Milvus Lite file open, and Milvus Lite "
                        "allows one (write through that process, e.g. the ingest API of "
                        "its qa serve, or use a Milvus server)"
                    )
                elif lite:
                    why += " (is another process using this Milvus Lite file?)"
                raise StoreUnavailable(
                    f"cannot open the Milvus store at {uri.shown}: {why}"
                ) from exc
        self.names = {n: uri.collection(n) for n in _schemas(self.client, pymilvus)}
        self._pymilvus = pymilvus

    def close(self) -> None:
        self._release(connected=True)

    def _release(self, connected: bool) -> None:
        with _USERS_LOCK:
            left = _USERS.get(self.uri.address, 1) - 1
            if left > 0:
                _USERS[self.uri.address] = left
                return
            _USERS.pop(self.uri.address, None)
            _OPEN.discard(self)
        if connected:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.uri.kind == "lite":
            with contextlib.suppress(Exception):
                from milvus_lite.server_manager import server_manager_instance

                if str(Path(self.uri.address).resolve()) in server_manager_instance._servers:
                    server_manager_instance.release_server(self.uri.address)
            with _USERS_LOCK:
                _let_go_lite_lock(self.uri.address)

    def exists(self) -> bool:
        return self._call(self.client.has_collection, self.names["state"])

    def create(self) -> None:
        for name, (schema, index) in _schemas(self.client, self._pymilvus).items():
            if not self._call(self.client.has_collection, self.names[name]):
                self._call(
                    self.client.create_collection,
                    self.names[name],
                    schema=schema,
                    index_params=index,
                    consistency_level="Strong",  # a reader sees every acknowledged write
                )

    def load(self) -> None:
        """Load every collection (a server may have released them on restart)."""
        for name in self.names.values():
            self._call(self.client.load_collection, name)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self.error as exc:
            why = getattr(exc, "message", None) or str(exc)
            raise StoreUnavailable(f"the Milvus store at {self.uri.shown} failed: {why}") from exc

    def query(self, coll: str, flt: str, fields: list[str], limit: int | None = None) -> list[dict]:
        extra = {"limit": limit} if limit else {}
        return self._call(
            self.client.query, self.names[coll], filter=flt, output_fields=fields, **extra
        )

    def query_ids(self, coll: str, key: str, ids: Sequence[int], flt: str, fields: list[str]):
        """Rows whose `key` is among `ids`, asked for in slices under Milvus's row cap."""
        ids = list(ids)
        out: list[dict] = []
        for i in range(0, len(ids), ID_WINDOW):
            part = ids[i : i + ID_WINDOW]
            where = f"{key} in {_ints(part)}" + (f" and ({flt})" if flt else "")
            out.extend(self.query(coll, where, fields))
        return out

    def scan(self, coll: str, key: str, top: int, flt: str, fields: list[str]) -> Iterator[dict]:
        """Every row matching `flt`, paged over windows of the int primary key
        `key` in [0, top): pymilvus's query iterator loops forever on Milvus Lite."""
        for lo in range(0, max(top, 1), ID_WINDOW):
            yield from self.query(
                coll, f"{key} >= {lo} and {key} < {lo + ID_WINDOW} and ({flt})", fields
            )

    def count(self, coll: str, flt: str) -> int:
        rows = self.query(coll, flt, ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def insert(self, coll: str, rows: list[dict]) -> None:
        for i in range(0, len(rows), WRITE_BATCH):
            self._call(self.client.insert, self.names[coll], rows[i : i + WRITE_BATCH])

    def upsert(self, coll: str, rows: list[dict]) -> None:
        for i in range(0, len(rows), WRITE_BATCH):
            self._call(self.client.upsert, self.names[coll], rows[i : i + WRITE_BATCH])

    def delete(self, coll: str, flt: str) -> None:
        self._call(self.client.delete, self.names[coll], filter=flt)

    def search(self, coll: str, field: str, vector, n: int, flt: str, fields: list[str]):
        hits = self._call(
            self.client.search,
            self.names[coll],
            data=[vector],
            anns_field=field,
            limit=n,
            filter=flt,
            output_fields=fields,
            search_params={"metric_type": "IP"},
        )
        return hits[0] if hits else []


def _visible(version: int, floor: int) -> str:
    return f"born >= {floor} and born <= {version} and died > {version}"


# -- the store -------------------------------------------------------------------


class MilvusStore:
    """A Milvus (or Milvus Lite) store: open the live version, or write a new one."""

    def __init__(
        self, uri: str | StoreURI, encoder_dir=None, chunker: ChunkerSettings | None = None
    ):
        self.uri = parse_store_uri(uri) if isinstance(uri, str) else uri
        self.encoder_dir = encoder_dir  # the model stays a local folder
        self.chunker = chunker or ChunkerSettings()
        self._db: _Milvus | None = None
        self._db_lock = threading.Lock()
        self._write_lock = threading.Lock()

    @property
    def location(self) -> str:
        """The store as messages and /api/health name it (a URI takes no credentials)."""
        return self.uri.shown

    @property
    def db(self) -> _Milvus:
        """The connection, made on first use."""
        if self._db is None:
            with self._db_lock:
                if self._db is None:
                    self._db = _Milvus(self.uri)
        return self._db

    def _unmade(self) -> bool:
        """A Milvus Lite file not made yet: no index, and reading makes none."""
        return self._db is None and self.uri.kind == "lite" and not Path(self.uri.address).exists()

    def close(self) -> None:
        with self._db_lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    # -- versions ---------------------------------------------------------------
    def _current(self) -> int:
        if self._unmade() or not self.db.exists():
            return 0
        rows = self.db.query("state", _POINTERS, ["version"])
        return max((abs(int(r["version"])) for r in rows), default=0)

    def current_version(self) -> str | None:
        n = self._current()
        return f"v{n:06d}" if n else None

    def exists(self) -> bool:
        return self._current() > 0

    def _manifest(self, version: int) -> dict:
        rows = self.db.query("state", f'key == "v{version}"', ["info"])
        if not rows:
            raise IndexCorrupt(f"the Milvus store at {self.uri.shown} lost version {version}")
        return json.loads(rows[0]["info"])

    def open(self) -> MilvusView:
        version = self._current()
        if not version:
            raise IndexMissing(
                f"no index in the Milvus store at {self.uri.shown}: index articles into it "
                "first with `qa index PATH --store URI`"
            )
        manifest = self._manifest(version)
        for key, value in expected_manifest(self.chunker).items():
            if manifest.get(key) != value:
                raise IndexIncompatible(
                    f"the Milvus store at {self.uri.shown} was built with {key}="
                    f"{manifest.get(key)!r}, this qa uses {value!r}: rebuild it"
                )
        return MilvusView(self.db, version, manifest)

    @contextlib.contextmanager
    def writer(self, fresh: bool = False) -> Iterator[MilvusWriteSession]:
        """Yield a session for the next version; publish it on a clean exit when it
        changed something, throw it away on an error. `fresh` starts it empty."""
        if not self._write_lock.acquire(blocking=False):
            raise IndexBusy(f"another writer is writing the Milvus store at {self.uri.shown}")
        try:
            self.db.create()
            current = self._current()
            self._recover(current)
            base = self._manifest(current) if current else None
            session = MilvusWriteSession(self.db, current + 1, base, fresh, self.chunker)
            try:
                yield session
                if session.changed:
                    session.finish()
            except BaseException:
                session.abandon()
                raise
            if not session.changed:
                session.abandon()
                return
            # The switch: one new row; readers take the highest. Not an upsert of
            # one "current" row: Milvus upserts by deleting then inserting, and a
            # reader between the two found no version at all (index_missing to 1
            # of 801 answers during a feed refresh on a Milvus server).
            self.db.insert(
                "state",
                [
                    {
                        "key": f"{STATE_CURRENT}:{session.version}",
                        "version": -session.version,
                        "info": "",
                        "nothing": NO_VECTOR,
                    }
                ],
            )
            self._prune(session.version)
        finally:
            self._write_lock.release()

    def _recover(self, current: int) -> None:
        """Undo what writers that never published left: rows of later versions,
        and the marks they put on rows that are still live."""
        _undo(self.db, f"> {current}")

    def _prune(self, published: int) -> None:
        """Delete what neither the published version nor the one before can see."""
        previous = published - 1
        floor = self._manifest(previous)["floor"] if previous > 0 else published
        for coll in ("articles", "chunks", "sentences"):
            self.db.delete(coll, f"died <= {previous} or born < {floor}")
        for coll in ("bm25", "terms"):
            self.db.delete(coll, f"version < {previous}")
        manifests = f'version > 0 and version < {previous} and key != "{STATE_CURRENT}"'
        self.db.delete("state", manifests)
        # Older pointers: the one just written names a newer version.
        self.db.delete(
            "state", f'(version < 0 and version > {-published}) or key == "{STATE_CURRENT}"'
        )

    def stored_articles(self) -> Iterator[StoredArticle]:
        """Every article of the live version (for a rebuild)."""
        view = self.open()
        ids = [a.id for a in view.articles()]
        for i in range(0, len(ids), 200):
            found = view.article_rows(ids[i : i + 200])
            yield from (found[a] for a in ids[i : i + 200] if a in found)


def _undo(db: _Milvus, versions: str) -> None:
    """Remove every trace of the versions matching `versions` ("> 3", "== 4"):
    their rows, their BM25 and terms rows, their manifests, and their died
    marks on rows older versions still hold live."""
    for coll in ("articles", "chunks", "sentences"):
        db.delete(coll, f"born {versions}")
        # Revived rows no longer match, so each round asks for the next ones.
        while marked := db.query(coll, f"died {versions} and died < {LIVE}", ["*"], ID_WINDOW):
            db.upsert(coll, [{**r, "died": LIVE} for r in marked])
    for coll in ("bm25", "terms"):
        db.delete(coll, f"version {versions}")
    db.delete("state", f'version {versions} and key != "{STATE_CURRENT}"')


# -- reading -----------------------------------------------------------------------


class MilvusView:
    """One published version, read-only; safe to share between threads (the
    client is, and the caches take a lock)."""

    def __init__(self, db: _Milvus, version: int, manifest: dict) -> None:
        self.db = db
        self.number = version
        self.version = f"v{version:06d}"
        self.manifest = manifest
        counts = manifest.get("counts", {})
        self.n_articles = int(counts.get("articles", 0))
        self.n_chunks = int(counts.get("chunks", 0))
        self.n_sentences = int(counts.get("sentences", 0))
        self.where = _visible(version, int(manifest["floor"]))
        self._lock = threading.Lock()
        self._terms: dict[str, tuple[int, int] | None] = {}  # term → (id, df), per version
        # Rows of the sentences quote selection is looking at: one query brings
        # their spans, vectors and terms together (ids are never reused, so a
        # cached row is right in every version that holds it).
        self._sentences: OrderedDict[int, dict] = OrderedDict()
        self._texts = ArticleTextCache()
        self._metas: list[tuple[str, str | None, str | None]] | None = None
        self._filtered: OrderedDict[Filters, np.ndarray] = OrderedDict()

    def close(self) -> None:
        """Nothing to release: the client belongs to the store."""

    # -- search ---------------------------------------------------------------
    def nearest_chunks(
        self, qvec: np.ndarray, n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.n_chunks == 0 or n < 1 or (among is not None and not len(among)):
            return empty
        flt = self.where + (f" and id in {_ints(among)}" if among is not None else "")
        vector = np.asarray(qvec, dtype=np.float32).reshape(-1).tolist()
        hits = self.db.search("chunks", "vector", vector, min(n, self.n_chunks), flt, ["id"])
        ids = np.array([h["id"] for h in hits], dtype=np.int64)
        return ids, np.array([h["distance"] for h in hits], dtype=np.float32)

    def _lookup_terms(self, query_terms: Iterable[str]) -> dict[str, tuple[int, int]]:
        wanted = set(_safe_terms(query_terms))
        with self._lock:
            missing = sorted(t for t in wanted if t not in self._terms)
        if missing:
            rows = self.db.query(
                "terms",
                f"version == {self.number} and term in {json.dumps(missing, ensure_ascii=False)}",
                ["term", "term_id", "df"],
            )
            found = {r["term"]: (int(r["term_id"]), int(r["df"])) for r in rows}
            with self._lock:
                for t in missing:
                    self._terms[t] = found.get(t)
        with self._lock:
            return {t: v for t in wanted if (v := self._terms.get(t)) is not None}

    def best_by_terms(
        self, query_terms: Sequence[str], n: int, among: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        known = self._lookup_terms(query_terms)
        if not known or n < 1 or (among is not None and not len(among)):
            return empty
        query = {term_id: 1.0 for term_id, _ in known.values()}
        flt = f"version == {self.number}"
        if among is not None:
            flt += f" and chunk_id in {_ints(among)}"
        hits = self.db.search("bm25", "weights", query, n, flt, ["chunk_id"])
        pairs = [(int(h["entity"]["chunk_id"]), float(h["distance"])) for h in hits]
        # Best first, equal scores by chunk id (as the embedded index orders them).
        pairs.sort(key=lambda p: (-p[1], p[0]))
        pairs = [p for p in pairs if p[1] > 0]
        return (
            np.array([p[0] for p in pairs], dtype=np.int64),
            np.array([p[1] for p in pairs], dtype=np.float32),
        )

    def doc_freqs(self, query_terms: Sequence[str]) -> dict[str, int]:
        return {t: df for t, (_, df) in self._lookup_terms(query_terms).items()}

    def chunk_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, DIM), dtype=np.float32)
        rows = self.db.query_ids("chunks", "id", ids, "", ["id", "vector"])
        by_id = {int(r["id"]): r["vector"] for r in rows}
        return self._in_order(by_id, ids, "chunk")

    @staticmethod
    def _in_order(by_id: dict[int, Any], ids, what: str) -> np.ndarray:
        try:
            return np.array([by_id[int(i)] for i in ids], dtype=np.float32).reshape(-1, DIM)
        except KeyError as exc:
            raise IndexCorrupt(f"no vector for {what} {exc.args[0]} in the Milvus store") from exc

    # -- sentences --------------------------------------------------------------

    def _sentence_rows(self, ids: Sequence[int]) -> dict[int, dict]:
        with self._lock:
            found = {int(i): self._sentences[int(i)] for i in ids if int(i) in self._sentences}
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            rows = self.db.query_ids("sentences", "id", missing, "", SENTENCE_FIELDS)
            found.update(self._remember(rows))
        return found

    def _remember(self, rows: list[dict]) -> dict[int, dict]:
        out = {int(r["id"]): r for r in rows}
        with self._lock:
            self._sentences.update(out)
            while len(self._sentences) > 20_000:
                self._sentences.popitem(last=False)
        return out

    def sentences_of_chunks(self, chunk_ids: Sequence[int]) -> list[SpanRow]:
        if not len(chunk_ids):
            return []
        rows = self.db.query_ids("sentences", "chunk_id", chunk_ids, self.where, SENTENCE_FIELDS)
        self._remember(rows)
        return sorted(_span(r) for r in rows)

    def sentences_around_chunks(self, chunk_ids: Sequence[int]) -> SpanTable:
        """The chunks' sentences and, beside each chunk, the sentences with the
        ids just before and after it, when this version holds them."""
        rows = {r.id: r for r in self.sentences_of_chunks(chunk_ids)}
        ends: dict[int, list[int]] = {}
        for r in rows.values():
            ends.setdefault(r.chunk_id, []).append(r.id)
        beside = {i for ids in ends.values() for i in (min(ids) - 1, max(ids) + 1)} - rows.keys()
        if beside:
            more = self.db.query_ids("sentences", "id", sorted(beside), self.where, SENTENCE_FIELDS)
            self._remember(more)
            rows.update({r.id: r for r in map(_span, more)})
        return SpanTable.of([rows[i] for i in sorted(rows)])

    def sentence_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, DIM), dtype=np.float32)
        rows = self._sentence_rows(ids)
        return self._in_order({i: r["vector"] for i, r in rows.items()}, ids, "sentence")

    def term_presence(self, sentence_ids: Sequence[int], query_terms: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(sentence_ids), len(query_terms)), dtype=bool)
        if not (len(sentence_ids) and len(query_terms)):
            return out
        rows = self._sentence_rows(sentence_ids)
        for i, sid in enumerate(sentence_ids):
            row = rows.get(int(sid))
            if row is not None:
                held = set(row["terms"].split())
                out[i] = [t in held for t in query_terms]
        return out

    def term_counts(self, sentence_ids: Sequence[int]) -> np.ndarray:
        if not len(sentence_ids):
            return np.zeros(0, dtype=np.int64)
        rows = self._sentence_rows(sentence_ids)
        return np.array(
            [len(rows[int(i)]["terms"].split()) if int(i) in rows else 0 for i in sentence_ids],
            dtype=np.int64,
        )

    # -- chunks and articles -----------------------------------------------------
    def chunks_of_articles(self, article_ids: Sequence[str]) -> np.ndarray:
        if not article_ids:
            return np.zeros(0, np.int64)
        keys = {article_key(a) for a in article_ids}
        rows = self.db.query_ids(
            "chunks", "article_key", sorted(keys), self.where, ["id", "article_id"]
        )
        wanted = set(article_ids)
        return np.array(sorted(int(r["id"]) for r in rows if r["article_id"] in wanted), np.int64)

    def chunks_by_id(self, ids: Sequence[int]) -> list[SpanRow]:
        if not ids:
            return []
        rows = self.db.query_ids("chunks", "id", ids, "", ["id", "article_id", "start", "end"])
        by_id = {
            int(r["id"]): SpanRow(
                int(r["id"]), int(r["id"]), r["article_id"], int(r["start"]), int(r["end"])
            )
            for r in rows
        }
        return [by_id[int(i)] for i in ids if int(i) in by_id]

    def article_rows(self, ids: Sequence[str]) -> dict[str, StoredArticle]:
        """The stored articles with these ids (unknown ids are left out)."""
        if not ids:
            return {}
        keys = sorted({article_key(a) for a in ids})
        rows = self.db.query_ids(
            "articles",
            "article_key",
            keys,
            self.where,
            ["article_id", "part", "content_hash", "title", "meta", "text"],
        )
        wanted = set(ids)
        parts: dict[str, list[dict]] = {}
        for r in rows:
            if r["article_id"] in wanted:
                parts.setdefault(r["article_id"], []).append(r)
        out = {}
        for aid, pieces in parts.items():
            pieces.sort(key=lambda r: r["part"])
            head, meta = pieces[0], pieces[0]["meta"]
            out[aid] = StoredArticle(
                id=aid,
                title=head["title"],
                text="".join(p["text"] for p in pieces),
                content_hash=head["content_hash"],
                **{k: meta.get(k) for k in ("url", "published", "author", "source", "origin")},
            )
        return out

    def article_texts(self, ids: Sequence[str]) -> dict[str, tuple[ArticleRef, str]]:
        return self._texts.get(ids, self._read_texts)

    def _read_texts(self, ids: list[str]) -> dict[str, tuple[ArticleRef, str]]:
        return {
            a.id: (ArticleRef(id=a.id, title=a.title, url=a.url, published=a.published), a.text)
            for a in self.article_rows(ids).values()
        }

    def article(self, article_id: str) -> ArticleDetail:
        a = self.article_rows([article_id]).get(article_id)
        if a is None:
            raise ArticleNotFound(f"no article with id {article_id!r} in the index")
        return ArticleDetail(
            id=a.id,
            title=a.title,
            url=a.url,
            published=a.published,
            author=a.author,
            source=a.source,
            text=a.text,
        )

    # -- filters --------------------------------------------------------------------
    def _article_metas(self) -> list[tuple[str, str | None, str | None]]:
        """(id, day published, source) of every article of this version, read once:
        filters are decided here rather than in Milvus expressions, whose string
        literals Milvus Lite parses unreliably (see `article_key`)."""
        if self._metas is None:
            top = int(self.manifest.get("next_ids", {}).get("articles", 1))
            rows = self.db.scan(
                "articles", "row", top, f"part == 0 and {self.where}", ["article_id", "meta"]
            )
            metas = [
                (
                    r["article_id"],
                    published_day(r["meta"].get("published")),
                    r["meta"].get("source"),
                )
                for r in rows
            ]
            with self._lock:
                self._metas = metas
        return self._metas

    def chunks_matching(self, filters: Filters) -> np.ndarray:
        """The ids (sorted) of the chunks of the articles that satisfy `filters`."""
        with self._lock:
            hit = self._filtered.get(filters)
            if hit is not None:
                self._filtered.move_to_end(filters)
                return hit
        since = filters.since.isoformat() if filters.since else None
        until = filters.until.isoformat() if filters.until else None
        wanted = set(filters.article)
        ids = [
            aid
            for aid, day, source in self._article_metas()
            if (since is None or (day is not None and day >= since))
            and (until is None or (day is not None and day <= until))
            and (filters.source is None or source == filters.source)
            and (not wanted or aid in wanted)
        ]
        found = self.chunks_of_articles(ids)
        with self._lock:
            self._filtered[filters] = found
            while len(self._filtered) > FILTER_CACHE:
                self._filtered.popitem(last=False)
        return found

    def sources(self) -> list[str]:
        """The distinct source names of the indexed articles, sorted as SQLite's NOCASE."""
        names = {source for _, _, source in self._article_metas() if source is not None}
        return sorted(names, key=lambda n: (_ascii_fold(n), n))

    def articles(self) -> list[ArticleSummary]:
        top = int(self.manifest.get("next_ids", {}).get("articles", 1))
        rows = self.db.scan(
            "articles", "row", top, f"part == 0 and {self.where}", ["article_id", "title", "meta"]
        )
        items = [
            ArticleSummary(
                id=r["article_id"],
                title=r["title"],
                url=r["meta"].get("url"),
                published=r["meta"].get("published"),
                chunks=int(r["meta"].get("chunks", 0)),
            )
            for r in rows
        ]
        # As SQLite's COLLATE NOCASE orders them: ASCII letters folded, nothing else.
        return sorted(items, key=lambda a: (_ascii_fold(a.title), a.id))


def _ascii_fold(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def _span(row: dict) -> SpanRow:
    return SpanRow(
        int(row["id"]), int(row["chunk_id"]), row["article_id"], int(row["start"]), int(row["end"])
    )


# -- writing -----------------------------------------------------------------------


def article_rows(
    article: StoredArticle,
    chunks: Sequence[ChunkRecord],
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    version: int,
    take: Callable[[str], int],
) -> dict[str, list[dict]]:
    """One article's rows of version `version`, by collection; `take(collection)`
    gives each row its id ("articles", "chunks", "sentences")."""
    key = article_key(article.id)
    life = {"born": version, "died": LIVE}
    meta = {
        "url": article.url,
        "published": article.published,
        "author": article.author,
        "source": article.source,
        "origin": article.origin,
        "chunks": len(chunks),
    }
    out: dict[str, list[dict]] = {"articles": [], "chunks": [], "sentences": []}
    for part, text in enumerate(_text_parts(article.text)):
        out["articles"].append(
            {
                "row": take("articles"),
                "article_key": key,
                "article_id": article.id,
                **life,
                "part": part,
                "content_hash": article.content_hash,
                "title": article.title if part == 0 else "",
                "meta": meta if part == 0 else {},
                "text": text,
                "nothing": NO_VECTOR,
            }
        )
    s = 0
    for chunk, vector in zip(chunks, chunk_vectors, strict=True):
        cid = take("chunks")
        out["chunks"].append(
            {
                "id": cid,
                "article_key": key,
                "article_id": article.id,
                **life,
                "start": chunk.start,
                "end": chunk.end,
                "terms": chunk.terms,
                "vector": vector.tolist(),
            }
        )
        # A sentence term no chunk holds (a word cut by a hard split) can match
        # no question: left out, as the embedded index leaves it out.
        chunk_terms = set(chunk.terms.split())
        for (start, end), sentence_terms in zip(chunk.sentences, chunk.sentence_terms, strict=True):
            out["sentences"].append(
                {
                    "id": take("sentences"),
                    "chunk_id": cid,
                    "article_key": key,
                    "article_id": article.id,
                    **life,
                    "start": start,
                    "end": end,
                    "terms": " ".join(t for t in sentence_terms.split() if t in chunk_terms),
                    "vector": sentence_vectors[s].tolist(),
                }
            )
            s += 1
    return out


class MilvusWriteSession:
    """The changes that make the next version; published by `MilvusStore.writer`."""

    def __init__(
        self,
        db: _Milvus,
        version: int,
        base: dict | None,
        fresh: bool,
        chunker: ChunkerSettings,
    ) -> None:
        self.db = db
        self.version = version
        started = {**expected_manifest(chunker), "created": time.time(), "floor": version}
        self.manifest: dict[str, Any] = dict(base) if base and not fresh else started
        self.floor = int(self.manifest["floor"])
        # Ids are never reused, a rebuild included: they continue from the last version's.
        self._next = dict(
            (base or {}).get("next_ids", {"articles": 1, "chunks": 1, "sentences": 1})
        )
        self.changed = fresh
        self._live = f"born >= {self.floor} and died == {LIVE}"
        self._hashes: dict[str, str | None] = {}  # this session's puts (hash) and removes (None)
        self._pending: dict[str, list[dict]] = {"articles": [], "chunks": [], "sentences": []}

    # -- reads for change detection ---------------------------------------------
    def content_hash(self, article_id: str) -> str | None:
        if article_id in self._hashes:
            return self._hashes[article_id]
        rows = self.db.query(
            "articles",
            f"article_key == {article_key(article_id)} and part == 0 and {self._live}",
            ["article_id", "content_hash"],
        )
        return next((r["content_hash"] for r in rows if r["article_id"] == article_id), None)

    def id_with_hash(self, content_hash: str) -> str | None:
        for aid, h in self._hashes.items():
            if h == content_hash:
                return aid
        if not content_hash.isalnum():  # a hash is hex; anything else is not stored
            return None
        rows = self.db.query(
            "articles",
            f'content_hash == "{content_hash}" and part == 0 and {self._live}',
            ["article_id"],
        )
        return rows[0]["article_id"] if rows else None

    # -- changes ----------------------------------------------------------------
    def remove(self, article_id: str, keep: dict[str, Iterable[int]] | None = None) -> bool:
        """`keep`: ids, by collection, of rows of this version to leave in place
        (those `adopt` takes over)."""
        keep_ids = {coll: set(ids) for coll, ids in (keep or {}).items()}
        if any(r["article_id"] == article_id for r in self._pending["articles"]):
            self._flush()
        key = article_key(article_id)
        found = False
        for coll in ("articles", "chunks", "sentences"):
            rows = [
                r
                for r in self.db.query(coll, f"article_key == {key} and {self._live}", ["*"])
                if r["article_id"] == article_id
            ]
            if coll == "articles" and not rows:
                return False
            found = True
            pk = "row" if coll == "articles" else "id"
            kept = keep_ids.get(coll, set())
            mine = [r[pk] for r in rows if r["born"] == self.version and r[pk] not in kept]
            if mine:  # written by this session: no version ever saw them
                self.db.delete(coll, f"{pk} in {_ints(mine)}")
            older = [{**r, "died": self.version} for r in rows if r["born"] != self.version]
            self.db.upsert(coll, older)
        self._hashes[article_id] = None
        self.changed = True
        return found

    def put(
        self,
        article: StoredArticle,
        chunks: Sequence[ChunkRecord],
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> None:
        check_vectors(chunks, chunk_vectors, sentence_vectors)
        self.remove(article.id)
        for coll, rows in article_rows(
            article, chunks, chunk_vectors, sentence_vectors, self.version, self._take
        ).items():
            self._pending[coll].extend(rows)
        self._hashes[article.id] = article.content_hash
        self.changed = True
        if sum(map(len, self._pending.values())) >= WRITE_BATCH:
            self._flush()

    def _take(self, what: str) -> int:
        n = int(self._next.get(what, 1))
        self._next[what] = n + 1
        return n

    def _flush(self) -> None:
        for coll, rows in self._pending.items():
            if rows:
                self.db.insert(coll, rows)
        self._pending = {k: [] for k in self._pending}

    # -- rows written by other processes (qa.ray_ingest) -----------------------------
    # Ray workers write an article's rows of this version themselves, with ids
    # `reserve` handed out; the driver then `adopt`s each row set it keeps and
    # `drop`s the others (a duplicate, an unchanged article), in input order,
    # before `finish`. Nothing is visible until the writer publishes, and an
    # unpublished version's rows are cleaned up as any other's.
    def live_hashes(self) -> dict[str, str]:
        """The articles this version starts from: id → content hash."""
        top = int(self._next.get("articles", 1))
        flt = f"part == 0 and {self._live}"
        rows = self.db.scan("articles", "row", top, flt, ["article_id", "content_hash"])
        return {r["article_id"]: r["content_hash"] for r in rows}

    @property
    def next_ids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._next.items()}

    def advance_ids(self, next_ids: dict[str, int]) -> None:
        """Ids up to these were handed out elsewhere: never give them again."""
        for coll, n in next_ids.items():
            self._next[coll] = max(int(self._next.get(coll, 1)), int(n))

    def adopt(self, article_id: str, content_hash: str, written: dict[str, list[int]]) -> None:
        """Make the rows written for this article (ids by collection) its rows in
        this version: its older rows die here, other rows this version holds for
        it go."""
        self.remove(article_id, keep=written)
        self._hashes[article_id] = content_hash
        self.changed = True

    def drop(self, written: dict[str, list[int]]) -> None:
        """Delete rows written for this version that it will not hold."""
        for coll, ids in written.items():
            if ids:
                pk = "row" if coll == "articles" else "id"
                self.db.delete(coll, f"{pk} in {_ints(ids)}")

    # -- publish ----------------------------------------------------------------
    def finish(self) -> None:
        """Write the version's BM25 weights, terms and manifest; `writer()` then
        switches "current" to it."""
        self._flush()
        top = int(self._next.get("chunks", 1))
        chunks = self.db.scan("chunks", "id", top, self._live, ["id", "terms"])
        bm25 = bm25_weights((r["id"], r["terms"]) for r in chunks)
        row = self.version << 32  # bm25/terms rows of version V: keys V·2³² + i
        self.db.insert(
            "bm25",
            [
                {"row": row + i, "chunk_id": cid, "version": self.version, "weights": weights}
                for i, (cid, weights) in enumerate(sorted(bm25.weights.items()))
            ],
        )
        self.db.insert(
            "terms",
            [
                {
                    "row": row + tid,
                    "version": self.version,
                    "term": term,
                    "term_id": tid,
                    "df": bm25.doc_freqs[term],
                    "nothing": NO_VECTOR,
                }
                for term, tid in bm25.term_ids.items()
            ],
        )
        counts = {
            "articles": self.db.count("articles", f"part == 0 and {self._live}"),
            "chunks": bm25.n_chunks,
            "sentences": self.db.count("sentences", self._live),
        }
        self.manifest.update(
            counts=counts, next_ids=self._next, floor=self.floor, updated=time.time()
        )
        info = json.dumps(self.manifest)
        self.db.upsert(
            "state",
            [
                {
                    "key": f"v{self.version}",
                    "version": self.version,
                    "info": info,
                    "nothing": NO_VECTOR,
                }
            ],
        )

    def abandon(self) -> None:
        """Remove every row this session wrote and every mark it made."""
        self._pending = {k: [] for k in self._pending}
        with contextlib.suppress(QAError):
            _undo(self.db, f"== {self.version}")
