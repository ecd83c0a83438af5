"""`Settings` without a store → a Milvus Lite file in its index directory (tests only)."""

from __future__ import annotations

from pathlib import Path


def lite_uri(index_dir: Path) -> str:
    return f"milvus://{Path(index_dir).resolve()}/milvus.db"


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
            self.store = lite_uri(self.index_dir)

    Settings.__init__ = __init__
