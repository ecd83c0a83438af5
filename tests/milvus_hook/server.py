"""The Milvus server of `pytest --qa-store=milvus-server` (tests only).

tests/conftest.py starts it with bench.shared.start_milvus_server (the engine
milvus-lite embeds, serving gRPC on TCP as a Milvus server does), so tests whose
`qa serve` or `qa` command opens the index the test process holds (two
processes, which a Lite file refuses) run against Milvus too. Here: stopping it,
and copying an index's collections when a test copies its directory.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from qa.stores import milvus as store
from tests.milvus_hook.redirect import server_prefix


def stop(server) -> None:
    with contextlib.suppress(Exception):
        server.stop()


def copy_collections(address: str, source: Path, target: Path) -> None:
    """Give index directory `target` a copy of `source`'s collections, as copying
    the directory copies a Lite file or the directory store's versions."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=f"http://{address}")
    try:
        old, new = server_prefix(source), server_prefix(target)
        names = store._schemas(client, store._pymilvus())
        for name, (schema, index) in names.items():
            if not client.has_collection(f"{old}_{name}"):
                continue
            client.create_collection(
                f"{new}_{name}", schema=schema, index_params=index, consistency_level="Strong"
            )
            key = next(f.name for f in schema.fields if f.is_primary)
            fields = [f.name for f in schema.fields]
            if name == "state":  # its key is text: one query holds its few rows
                rows = client.query(f"{old}_{name}", filter='key != ""', output_fields=fields)
            else:
                rows = _all_rows(client, f"{old}_{name}", key, fields)
            for i in range(0, len(rows), store.WRITE_BATCH):
                client.insert(f"{new}_{name}", rows[i : i + store.WRITE_BATCH])
            client.load_collection(f"{new}_{name}")
    finally:
        client.close()


def _all_rows(client, name: str, key: str, fields: list[str]) -> list[dict]:
    """Every row, fetched over ranges of the int primary key split until each fits
    under Milvus's 16,384-row cap (keys are sparse: a version's BM25 rows start
    at version << 32; the query iterator is not trusted, as qa.stores.milvus says)."""

    def count(lo: int, hi: int) -> int:
        rows = client.query(name, filter=_between(key, lo, hi), output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    out: list[dict] = []
    todo = [(-(2**63), 2**63 - 1)]
    while todo:
        lo, hi = todo.pop()
        n = count(lo, hi)
        if n == 0:
            continue
        if n <= store.ID_WINDOW or hi - lo < 2:
            out += client.query(name, filter=_between(key, lo, hi), output_fields=fields)
        else:
            mid = lo + (hi - lo) // 2
            todo += [(lo, mid), (mid, hi)]
    return out


def _between(key: str, lo: int, hi: int) -> str:
    return f"{key} >= {lo} and {key} < {hi}"
