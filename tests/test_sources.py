"""Feeds, sitemaps and folders as sources: indexed, refreshed, kept in sync, pruned.

A real HTTP server on 127.0.0.1 (tests/feed_server.py) publishes the articles; the
fetcher reaches it only because the test names its address and port in the
allow-list (QA_FETCH_ALLOW), as an operator would for an intranet feed. The real
model embeds, the real index is on disk, and the server counts every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from qa.cli import main
from qa.errors import InvalidInput
from qa.settings import Settings
from qa.sources.durations import format_duration, parse_duration
from qa.sources.refresh import refresh_sources
from qa.sources.registry import SourceRegistry
from qa.web.app import create_app
from tests.conftest import store_at

from .feed_server import SiteServer, site_with


@pytest.fixture
def site(request) -> Iterator[SiteServer]:
    """The site, with 8 articles (50 for a test marked `articles(50)`): embedding is
    what takes the time, so only the headline test indexes the 50."""
    marker = request.node.get_closest_marker("articles")
    with SiteServer(site_with(marker.args[0] if marker else 8)) as server:
        yield server


@pytest.fixture
def env(site, index_dir, monkeypatch) -> Path:
    """QA_* as an operator would set them for this intranet site (no delay: tests)."""
    monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("QA_FETCH_ALLOW", json.dumps([site.allow_entry]))
    monkeypatch.setenv("QA_CRAWL_DELAY", "0")
    return index_dir


def qa(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def articles_by_url(index_dir: Path) -> dict[str, object]:
    snap = store_at(index_dir).open()
    return {a.url: snap.article(a.id) for a in snap.articles()}


def current(index_dir: Path) -> str:
    return (index_dir / "CURRENT").read_text()


@pytest.mark.directory_store
@pytest.mark.articles(50)
def test_a_feed_of_50_articles_is_indexed_then_kept_in_sync(site, env):
    feed = site.base + "/feed.xml"
    assert qa("sources", "add", feed, "--every", "30m")[0] == 0
    code, out, err = qa("refresh")
    assert code == 0, err
    assert "50 listed" in out and "50 added" in out and "0 page errors" in out

    by_url = articles_by_url(env)
    assert len(by_url) == 50
    first = by_url[site.base + "/news/harvest-007"]  # the page's canonical URL
    assert first.title == "Harrowgate harvest report number 7"
    assert first.published == "2024-08-08T08:30:00+00:00"
    assert (first.source, first.author) == ("Valley Gazette", "Reporter 0")
    assert "brought in 239 tonnes of barley" in first.text
    assert "Home | News" not in first.text  # the navigation is not article text

    # A second refresh downloads nothing (every answer is a 304) and publishes nothing.
    site.site.reset_counts()
    version = current(env)
    code, out, _ = qa("refresh")
    assert code == 0
    assert sum(site.site.bodies.values()) == 0
    assert sum(site.site.not_modified.values()) == 52  # robots.txt, the feed, 50 pages
    assert "0 added, 0 updated, 0 unchanged, 0 removed" in out
    assert current(env) == version

    # An edited article is updated in place (same id); only its page is downloaded.
    site.site.edit("harvest-007", "A late frost in Harrowgate spoiled the last cart of barley.")
    site.site.reset_counts()
    code, out, _ = qa("refresh")
    assert "0 added, 1 updated" in out
    assert dict(site.site.bodies) == {"/news/harvest-007": 1}
    edited = articles_by_url(env)[site.base + "/news/harvest-007"]
    assert edited.id == first.id and "late frost in Harrowgate" in edited.text

    # A removed article stays, unless the refresh prunes.
    del site.site.articles["harvest-012"]
    code, out, _ = qa("refresh")
    assert "49 listed" in out and "0 removed" in out
    assert site.base + "/news/harvest-012" in articles_by_url(env)
    code, out, _ = qa("refresh", "--prune")
    assert "1 removed" in out
    remaining = articles_by_url(env)
    assert site.base + "/news/harvest-012" not in remaining and len(remaining) == 49

    code, out, _ = qa("sources", "list", "--json")
    [info] = json.loads(out)
    assert (info["status"], info["every"], info["articles"], info["error"]) == (
        "ok",
        "30m",
        49,
        None,
    )


def test_a_sitemap_index_with_a_news_sitemap_is_indexed_and_lastmod_spares_requests(site, env):
    code, out, err = qa("index", site.base + "/sitemap.xml")
    assert code == 0, err
    assert "8 added" in out
    article = articles_by_url(env)[site.base + "/news/harvest-003"]
    assert article.title == "Dovecote harvest report number 3"
    assert article.published == "2024-04-04T08:30:00+00:00"
    assert article.source == "Valley Gazette News"  # the news sitemap's publication name

    # As a source: the first refresh revalidates every page (304: nothing new); after
    # it, a page whose <lastmod> did not move is not even requested.
    assert qa("sources", "add", site.base + "/sitemap.xml", "--name", "Gazette")[0] == 0
    qa("refresh")
    site.site.reset_counts()
    code, out, _ = qa("refresh")
    assert not any(p.startswith("/news/") for p in site.site.hits)
    assert sum(site.site.bodies.values()) == 0
    site.site.edit("harvest-003", "The Dovecote mill was repainted green.")
    site.site.reset_counts()
    code, out, _ = qa("refresh")
    assert "1 updated" in out
    assert [p for p in site.site.hits if p.startswith("/news/")] == ["/news/harvest-003"]
    assert articles_by_url(env)[site.base + "/news/harvest-003"].source == "Gazette"


def test_robots_txt_is_honoured(site, env):
    site.site.extra_links = ["/private/salaries"]
    code, _out, err = qa("index", site.base + "/feed.xml")
    assert code == 0
    assert "disallowed by the site's robots.txt" in err
    assert site.site.hits["/private/salaries"] == 0
    assert site.site.hits["/robots.txt"] == 1


@pytest.mark.directory_store
def test_a_source_that_cannot_be_read_publishes_nothing_and_says_so(site, env):
    qa("index", site.base + "/feed.xml")
    version = current(env)
    assert qa("sources", "add", site.base + "/gone.xml")[0] == 0
    code, out, _ = qa("refresh")
    assert code == 1
    assert "failed, nothing published" in out and "HTTP 404" in out
    assert current(env) == version

    code, out, _ = qa("sources")
    assert "failed" in out and "error: cannot read" in out
    settings = Settings(index_dir=env, refresh_sources=False)
    with TestClient(create_app(settings)) as client:
        health = client.get("/api/health").json()
    [status] = health["sources"]
    assert status["status"] == "failed" and "HTTP 404" in status["error"]
    assert "location" not in status  # an intranet address is not shown to the world


def test_page_errors_are_counted_and_the_rest_is_indexed(site, env):
    site.site.extra_links = ["/news/no-such-page"]
    qa("sources", "add", site.base + "/feed.xml")
    [report] = refresh_sources(SourceRegistry(env).all(), Settings())
    assert report.ok and report.index.added == 8
    assert report.problems == [
        f"{site.base}/news/no-such-page: the page answered HTTP 404, not 200"
    ]
    [source] = SourceRegistry(env).all()
    assert source.status == "partial" and "1 page(s) failed" in source.error


def test_the_page_cap_takes_a_long_feed_in_over_several_runs(site, env, monkeypatch):
    monkeypatch.setenv("QA_CRAWL_MAX_PAGES", "5")
    qa("sources", "add", site.base + "/feed.xml")
    out = qa("refresh")[1]
    assert "5 added" in out and "3 skipped" in out
    out = qa("refresh")[1]
    assert "3 added" in out  # the new URLs first
    assert len(articles_by_url(env)) == 8


@pytest.mark.directory_store
def test_a_folder_source_is_read_again_when_its_files_change(tmp_path, index_dir, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "otters.txt").write_text(
        "Otters of the Vell\n\nThe otters of the river Vell returned in 2019 after forty years."
    )
    (folder / "kites.txt").write_text(
        "Red kites\n\nRed kites nest in the beech woods above Ambleford since 2011."
    )
    assert qa("sources", "add", str(folder), "--every", "2h", "--name", "Nature notes")[0] == 0
    assert "2 added" in qa("refresh")[1]
    version = current(index_dir)
    assert "0 added, 0 updated" in qa("refresh")[1] and current(index_dir) == version

    (folder / "otters.txt").write_text(
        "Otters of the Vell\n\nThe otters of the river Vell returned in 2019; twelve were counted."
    )
    (folder / "kites.txt").unlink()
    assert "1 updated, 0 unchanged, 0 removed" in qa("refresh")[1]
    titles = {a.title: a for a in store_at(index_dir).open().articles()}
    assert set(titles) == {"Otters of the Vell", "Red kites"}  # removed file: kept
    assert "1 removed" in qa("refresh", "--prune")[1]
    snap = store_at(index_dir).open()
    [otters] = snap.articles()
    detail = snap.article(otters.id)
    assert "twelve were counted" in detail.text and detail.source == "Nature notes"


def test_sources_rm_keeps_articles_unless_pruned(site, env):
    qa("sources", "add", site.base + "/feed.xml")
    qa("refresh")
    assert qa("sources", "rm", "1")[0] == 0
    assert len(articles_by_url(env)) == 8
    qa("sources", "add", site.base + "/feed.xml")
    qa("refresh")
    _code, out, _ = qa("sources", "rm", site.base + "/feed.xml", "--prune")
    assert "8 articles removed" in out
    assert qa("sources")[2].strip() == "0 sources"


@pytest.mark.parametrize(
    "args,message",
    [
        (["sources", "add", "http://example.org/feed", "--every", "5x"], "invalid duration '5x'"),
        (["sources", "add", "http://example.org/feed", "--every", "10s"], "too short"),
        (["sources", "add", "http://10.1.2.3/feed"], "not a public address"),
        (["sources", "add", "./no-such-folder"], "not a folder"),
        (["sources", "rm", "7"], "no source '7'"),
        (["refresh"], "no sources"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(args, message, index_dir, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
    code, _out, err = qa(*args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert SourceRegistry(index_dir).all() == []


@pytest.mark.parametrize(
    "value,message",
    [
        ('["10.0.0.0/8", "0x7f.1"]', "'0x7f.1' is not a host, address or range"),
        ("10.0.0.0/8", "QA_FETCH_ALLOW must be a JSON list"),
    ],
)
def test_a_bad_allow_list_is_one_clear_line(value, message, index_dir, monkeypatch):
    monkeypatch.setenv("QA_FETCH_ALLOW", value)
    code, _, err = qa("sources", "--index-dir", str(index_dir))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_durations():
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration(" 2H ") == 7200
    assert parse_duration("1d") == 86400
    assert format_duration(5400) == "1h30m"
    for bad in ("", "m", "30", "1.5h", "-1h", "3 fortnights"):
        with pytest.raises(InvalidInput, match="invalid duration"):
            parse_duration(bad)
