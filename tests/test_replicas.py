"""Two `qa serve` replicas over one index directory follow one writer.

Scaling out (docs/operations.md, "Scaling out") runs several `qa serve`
processes over the same index directory, with `qa index` as the only writer.
Here two real servers on two ports share one directory: both answer a question,
then `qa index` adds an article that alone answers a new question, and within
a few seconds both servers quote it. Meanwhile a client thread asks both
servers, one after the other, without pause: not one of its requests may fail
while the version switches under them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.browser_support import LiveServer, build_index

from .conftest import BBC_DIR, PROJECT, SAMPLES

OLD_QUESTION = "How many new stations will the bike share add?"
OLD_ARTICLE = "bike-share-expansion"
NEW_QUESTION = "What colour did the keeper paint the Quillmarsh lighthouse?"
NEW_ARTICLE = "quillmarsh-lighthouse"
NEW_TEXT = (
    "The Quillmarsh lighthouse stands on a shingle bank east of the harbour. In 1911 its "
    "keeper, Edda Thornquist, painted the whole tower vermilion so that fishing boats could "
    "find it in the sea fog. The tower was automated in 1968 and is now a small museum."
)
SWITCH_WITHIN = 10.0  # seconds from `qa index` returning to both servers quoting the article


@pytest.fixture
def shared_index(tmp_path, encoder_dir) -> Path:
    bbc = sorted(BBC_DIR.glob("business/*.txt"))[:3]
    return build_index(tmp_path / "index", encoder_dir, [SAMPLES, *bbc])


@pytest.fixture
def replicas(shared_index):
    servers = [LiveServer(shared_index), LiveServer(shared_index)]
    try:
        with ThreadPoolExecutor(2) as pool:  # both start (load their models) at once
            list(pool.map(LiveServer.start, servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


def ask(client: httpx.Client, server: LiveServer, question: str) -> dict:
    resp = client.post(server.base + "/api/ask", json={"question": question})
    resp.raise_for_status()
    return resp.json()


def top_article(body: dict) -> str | None:
    quotes = body.get("quotes") or []
    return quotes[0]["article"]["id"] if quotes else None


class Asker:
    """Asks both servers in turn until stopped; counts answers and failures per server."""

    def __init__(self, servers: list[LiveServer]) -> None:
        self.servers = servers
        self.ok: Counter[int] = Counter()
        self.failed: Counter[int] = Counter()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="replica-asker", daemon=True)

    def run(self) -> None:
        questions = (OLD_QUESTION, NEW_QUESTION)
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                port = self.servers[n % 2].port
                try:
                    ask(client, self.servers[n % 2], questions[(n // 2) % 2])
                    self.ok[port] += 1
                except httpx.HTTPError as exc:  # a 5xx or a refused connection alike
                    self.failed[port] += 1
                    self.errors.append(f"{port}: {exc!r}")
                n += 1


def qa_index(path: Path, index_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QA_INDEX_DIR"}
    run = subprocess.run(
        [sys.executable, "-m", "qa", "index", str(path), "--index-dir", str(index_dir)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.directory_store
def test_two_replicas_over_one_index_both_follow_the_writer(replicas, shared_index, tmp_path):
    a, b = replicas
    assert a.port != b.port
    with httpx.Client(timeout=60) as client:
        for server in replicas:  # both serve the same live version
            assert top_article(ask(client, server, OLD_QUESTION)) == OLD_ARTICLE
            assert top_article(ask(client, server, NEW_QUESTION)) != NEW_ARTICLE
        before = {s.port: client.get(s.base + "/api/health").json() for s in replicas}

    asker = Asker(replicas)
    asker.thread.start()
    time.sleep(1.0)  # both servers under the client's requests before the writer starts
    new = tmp_path / "new.jsonl"
    row = {"id": NEW_ARTICLE, "title": "The Quillmarsh lighthouse", "text": NEW_TEXT}
    new.write_text(json.dumps(row) + "\n", encoding="utf-8")
    during_before = sum(asker.ok.values())
    qa_index(new, shared_index)
    indexed_at = time.monotonic()

    followed: dict[int, float] = {}
    with httpx.Client(timeout=60) as client:
        while len(followed) < 2 and time.monotonic() - indexed_at < SWITCH_WITHIN:
            for server in replicas:
                if server.port in followed:
                    continue
                if top_article(ask(client, server, NEW_QUESTION)) == NEW_ARTICLE:
                    followed[server.port] = time.monotonic() - indexed_at
            time.sleep(0.1)
        time.sleep(1.0)  # a little more load on the new version
        asker.stop.set()
        asker.thread.join(timeout=60)
        after = {s.port: client.get(s.base + "/api/health").json() for s in replicas}
        for server in replicas:  # the old answer is still there on the new version
            assert top_article(ask(client, server, OLD_QUESTION)) == OLD_ARTICLE

    print(
        f"\nreplicas: answered {dict(asker.ok)}, failed {dict(asker.failed)} by port; "
        f"{sum(asker.ok.values()) - during_before} answers from the writer's start on; "
        f"quoted the new article after {followed} s"
    )
    assert sorted(followed) == sorted(s.port for s in replicas), (
        f"only {followed} quoted the new article within {SWITCH_WITHIN} s"
    )
    assert sum(asker.failed.values()) == 0, asker.errors[:5]
    assert all(asker.ok[s.port] > 0 for s in replicas), asker.ok
    for server in replicas:
        assert after[server.port]["articles"] == before[server.port]["articles"] + 1
