"""Where the shared data (the seed and BBC corpora, the eval question sets) lives,
and `run_qa`, the `qa` command as the benchmark scripts run it.

CI and developers keep it at ../shared beside the checkout. A throwaway clone
(`git clone . /tmp/x`) has no such neighbour, so the checkout it was cloned
from is tried next; QA_SHARED overrides both.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404 - runs git and this package with fixed arguments
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _origin_checkout() -> Path | None:
    """The local checkout this one was cloned from, if it was cloned from a path."""
    try:
        done = subprocess.run(  # nosec B603 B607
            ["git", "remote", "get-url", "origin"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    url = done.stdout.strip()
    if done.returncode != 0 or not url or "://" in url or url.startswith("git@"):
        return None
    return (ROOT / url).resolve()


def find_shared() -> Path:
    """The shared data folder; FileNotFoundError says where it was looked for."""
    tried = []
    if os.environ.get("QA_SHARED"):
        tried.append(Path(os.environ["QA_SHARED"]))
    tried.append(ROOT.parent / "shared")
    origin = _origin_checkout()
    if origin is not None:
        tried.append(origin.parent / "shared")
    tried = list(dict.fromkeys(tried))
    for folder in tried:
        if (folder / "corpus").is_dir() and (folder / "eval").is_dir():
            return folder
    where = ", ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"the shared data (corpus/ and eval/) is not in {where}: "
        "put it beside this checkout as ../shared, or set QA_SHARED=/path/to/shared"
    )


def run_qa(*args: str, checkout: Path = ROOT) -> str:
    """`python -m qa ARGS` from `checkout` (this one, or another commit's worktree),
    importing that checkout's package; its stdout."""
    done = subprocess.run(  # nosec B603 - this interpreter and fixed arguments
        [sys.executable, "-m", "qa", *args],
        check=True,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    return done.stdout


def start_milvus_server(work: Path, wait: float = 60.0):
    """A Milvus server on a free 127.0.0.1 port, its data in `work`: milvus-lite
    2.5.1 runs the engine it embeds as a gRPC server on TCP when given an
    address, which a `milvus://HOST:PORT` store reaches from any process, as a
    real server (no Docker here). Returns the server (`.stop()`) and HOST:PORT."""
    import socket
    import time

    from qa.stores.milvus import _pymilvus

    _pymilvus()  # milvus-lite imported with its pkg_resources warning silenced
    from milvus_lite.server import Server
    from pymilvus import MilvusClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    server = Server(str(Path(work) / "milvus.db"), address=address)
    if not server.init() or not server.start():
        raise RuntimeError(f"the Milvus server did not start on {address}")
    deadline = time.monotonic() + wait
    while True:
        try:
            MilvusClient(uri=f"http://{address}", timeout=2).close()
            return server, address
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.5)
