"""`Settings` without a store → a Milvus store for its index directory (tests only).

Under `--qa-store=milvus` that is a Milvus Lite file inside the directory
(INDEX_DIR/milvus.db). Under `--qa-store=milvus-server` it is a prefix of
collections, named after the directory, on the Milvus server the test run
started (QA_TEST_MILVUS=HOST:PORT), which every process of the run reaches.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def lite_uri(index_dir: Path) -> str:
    return f"milvus://{Path(index_dir).resolve()}/milvus.db"


def server_prefix(index_dir: Path) -> str:
    """The collections' prefix of an index directory: a name Milvus accepts,
    the same in every process for the same directory."""
    return "t" + hashlib.sha1(str(Path(index_dir).resolve()).encode()).hexdigest()[:24]


def server_uri(index_dir: Path) -> str:
    return f"milvus://{os.environ['QA_TEST_MILVUS']}?prefix={server_prefix(index_dir)}"


def store_uri(index_dir: Path) -> str:
    if os.environ.get("QA_TEST_STORE") == "milvus-server":
        return server_uri(index_dir)
    return lite_uri(index_dir)


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    from qa.settings import Settings

    plain_init = Settings.__init__

    def __init__(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        if self.store is None:
            self.store = store_uri(self.index_dir)

    Settings.__init__ = __init__
