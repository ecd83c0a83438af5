"""Settings → the store they name: the one place faces get a store from.

Without a store URI (`--store`, `QA_STORE`) it is the index directory, exactly
as before. With one it is Milvus; the index directory then keeps only what is
local to a machine: the sources registry (sources.sqlite and its lock) and,
when it holds one, the encoder.

Where the encoder is with Milvus: Milvus holds data, not the model, so the
encoder is a local folder on every machine that indexes or answers:
`INDEX_DIR/encoder` when it holds an ONNX encoder (a copy of an index's), else
`$XDG_CACHE_HOME/qa/encoder` (`~/.cache/qa/encoder`), which the first
`qa index --store` on that machine exports the packaged model into. A machine
that answers without either falls back to sentence-transformers (torch), as a
directory index without its ONNX copy does.
"""

from __future__ import annotations

import os
from pathlib import Path

from qa.encoder import has_onnx_encoder
from qa.settings import Settings
from qa.store import IndexStore
from qa.stores.uri import parse_store_uri


def encoder_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa" / "encoder"


def milvus_encoder_dir(index_dir: Path) -> Path:
    local = Path(index_dir) / "encoder"
    return local if has_onnx_encoder(local) else encoder_cache()


def open_store(settings: Settings):
    """The settings' store: an `IndexStore`, or a `MilvusStore` for a store URI
    (connected on first use, so building one never waits on the network)."""
    if not settings.store:
        return IndexStore(settings.index_dir, ann_min_chunks=settings.ann_min_chunks)
    from qa.stores.milvus import MilvusStore

    return MilvusStore(
        parse_store_uri(settings.store), encoder_dir=milvus_encoder_dir(settings.index_dir)
    )
