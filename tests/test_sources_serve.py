"""`qa serve` refreshes its sources in the background and keeps answering meanwhile.

A real `qa serve` (a subprocess, as a user runs it) over an index that already holds
the seed article, with a feed source registered on a local site (tests/feed_server.py,
admitted by QA_FETCH_ALLOW). bench/load.py's clients ask questions without pause
while the server's background thread fetches and indexes the feed; no request may
fail, and the feed's articles must be answerable once the refresh is published.
The default run refreshes 30 articles; `-m slow` refreshes 200.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from bench.load import run_load
from qa.sources.registry import SourceRegistry
from tests.browser_support import LiveServer, build_index

from .conftest import SEED_DIR
from .feed_server import SiteServer, site_with

QUESTIONS = (
    "What is K-SPACE?",
    "How many business meetings did the Korea Pavilion hold?",
    "What is the boiling point of mercury on Jupiter?",
)

pytestmark = pytest.mark.two_processes


def _refresh_under_load(tmp_path, encoder_dir, monkeypatch, articles: int) -> None:
    index_dir = build_index(tmp_path / "index", encoder_dir, [SEED_DIR])
    with SiteServer(site_with(articles)) as site:
        monkeypatch.setenv("QA_FETCH_ALLOW", json.dumps([site.allow_entry]))
        monkeypatch.setenv("QA_CRAWL_DELAY", "0")
        SourceRegistry(index_dir).add(site.base + "/feed.xml", "web", 3600)
        server = LiveServer(index_dir).start()  # due at once: refreshes as it starts
        try:
            registry = SourceRegistry(index_dir)

            def refreshed() -> bool:
                return registry.all()[0].status != "new"

            started = time.monotonic()
            result = asyncio.run(
                run_load(
                    server.base, QUESTIONS, clients=4, total=100_000, seconds=600,
                    should_stop=refreshed,
                )
            )  # fmt: skip
            took = time.monotonic() - started
            [source] = registry.all()
            print(
                f"\n{articles} articles refreshed in {took:.1f} s under load: "
                f"{result.requests} requests, {result.answers} answered, {result.failed} failed"
            )
            assert source.status == "ok", source.error
            assert result.failed == 0, result.summary()
            assert result.answers >= 10  # it answered all along, not only before and after

            health = httpx.get(server.base + "/api/health").json()
            assert health["articles"] == articles + 1
            assert health["sources"][0]["status"] == "ok"
            answer = httpx.post(
                server.base + "/api/ask",
                json={"question": "Who was elected treasurer in report number 5?"},
            ).json()
            assert "Member5 Okonkwo" in answer["quotes"][0]["text"]
        finally:
            server.stop()


def test_serve_keeps_answering_while_a_feed_is_refreshed(tmp_path, encoder_dir, monkeypatch):
    _refresh_under_load(tmp_path, encoder_dir, monkeypatch, 30)


@pytest.mark.slow
def test_serve_keeps_answering_while_200_articles_are_refreshed(tmp_path, encoder_dir, monkeypatch):
    _refresh_under_load(tmp_path, encoder_dir, monkeypatch, 200)
