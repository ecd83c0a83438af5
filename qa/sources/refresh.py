"""One refresh of one source: its articles into the index as one new version, or nothing.

In: a `Source` (or a bare URL for `qa index URL`), the settings, the index store.
Out: a `RefreshReport`; the index gains one version when something changed, and the
registry the source's new state (only after that version is published).

A web source is read as: the location, fetched conditionally; a feed or sitemap
lists article URLs (a sitemap index lists sitemaps, read in turn), anything else is
itself the one article. Listed pages are fetched politely (`crawler`), new URLs
first, at most `crawl_max_pages`; a sitemap entry whose <lastmod> has not moved is
not requested at all, and an unchanged page answers 304. Each page becomes an
article as `qa index page.html` would read it, with the listing's title, date and
author where it gives them, the source's name, and its canonical URL (which keys
its id, so a page read again updates its article instead of adding one).

A folder source is walked like `qa index FOLDER`; files whose size and mtime did not
change are not read again.

Errors on single pages are collected and the run goes on; a source that cannot be
read at all (its listing or folder) publishes nothing. Articles whose URL (or file)
has gone stay indexed unless `prune` removes them, and only when the whole listing
was read.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

from qa.errors import FetchFailed, IndexBusy, QAError, SourceUnreadable, UnreadableFile
from qa.fetch import ALLOWED_TYPES, LISTING_TYPES, Fetcher, Page, Validators
from qa.indexer import FileBatch, article_id, index_batches
from qa.models import IndexReport, RefreshReport, SourceArticle
from qa.readers import iter_article_files, read_file, read_upload
from qa.settings import Settings
from qa.sources.crawler import Crawler
from qa.sources.listing import Entry, Listing, parse_listing
from qa.sources.registry import Source, SourceRegistry
from qa.stores import open_store
from qa.stores.base import Store

LOCK_NAME = "SOURCES.LOCK"
_ROOT_TYPES = {**LISTING_TYPES, **ALLOWED_TYPES}
_GONE = frozenset({404, 410})


@dataclass
class Collected:
    """What reading a source gave: articles to index, ids to remove, the new state."""

    batches: list[FileBatch] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    listed: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def refresh_lock(index_dir: Path) -> Iterator[None]:
    """One refresh at a time per index (CLI and server alike)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusy(f"a refresh of the sources of {index_dir} is already running") from None
        yield


def refresh_sources(
    sources: list[Source],
    settings: Settings,
    *,
    prune: bool = False,
    stop: threading.Event | None = None,
    fetcher: Fetcher | None = None,
) -> list[RefreshReport]:
    """Refresh each source in turn, recording each outcome; one version per source."""
    store = open_store(settings)  # the registry stays in the index directory
    registry = SourceRegistry(settings.index_dir)
    fetcher = fetcher or Fetcher.from_settings(settings)
    reports = []
    with refresh_lock(settings.index_dir), contextlib.closing(store):
        for source in sources:
            report, state = refresh_one(source, store, settings, fetcher, prune=prune, stop=stop)
            registry.record(source, report, state)
            reports.append(report)
            if stop is not None and stop.is_set():
                break
    return reports


def refresh_one(
    source: Source,
    store: Store,
    settings: Settings,
    fetcher: Fetcher,
    *,
    prune: bool = False,
    stop: threading.Event | None = None,
) -> tuple[RefreshReport, dict[str, Any] | None]:
    """(report, new state); the state is None when nothing was published."""
    started = time.perf_counter()
    crawler = None
    try:
        if source.kind == "folder":
            collected = collect_folder(source, prune=prune)
        else:
            crawler = Crawler(
                fetcher,
                delay=settings.crawl_delay,
                robots_state=dict(source.state.get("robots", {})),
                stop=stop,
            )
            collected = collect_web(source, crawler, settings, prune=prune)
        if stop is not None and stop.is_set():
            raise SourceUnreadable("the refresh was stopped before it finished")
        index = IndexReport()
        if collected.batches or collected.remove:  # else no lock, no copy, no version
            index = index_batches(
                collected.batches, store, export_onnx=settings.export_onnx, remove=collected.remove
            )
    except QAError as exc:
        return _report(source, started, crawler, error=exc.message), None
    problems = collected.problems + index.problems
    report = _report(source, started, crawler, collected=collected, index=index)
    return report.model_copy(update={"problems": problems}), collected.state


def _report(
    source: Source,
    started: float,
    crawler: Crawler | None,
    *,
    error: str | None = None,
    collected: Collected | None = None,
    index: IndexReport | None = None,
) -> RefreshReport:
    counts = crawler.counts if crawler else None
    return RefreshReport(
        source=source.location,
        ok=error is None,
        error=error,
        listed=collected.listed if collected else 0,
        requested=counts.requested if counts else 0,
        downloaded=counts.downloaded if counts else 0,
        not_modified=counts.not_modified if counts else 0,
        skipped=collected.skipped if collected else 0,
        index=index or IndexReport(),
        seconds=round(time.perf_counter() - started, 2),
    )


def collect_url(url: str, settings: Settings, fetcher: Fetcher | None = None) -> Collected:
    """A feed, sitemap or page read once, with no remembered state (`qa index URL`)."""
    source = Source(id=0, location=url, kind="web", name=None, every=0, added=time.time())
    crawler = Crawler(
        fetcher or Fetcher.from_settings(settings), delay=settings.crawl_delay, robots_state={}
    )
    return collect_web(source, crawler, settings, prune=False)


# --------------------------------------------------------------------------- web sources


def _validators(kept: dict[str, Any] | None) -> Validators | None:
    if not kept or not (kept.get("etag") or kept.get("last_modified")):
        return None
    return Validators(kept.get("etag"), kept.get("last_modified"))


def _kept_validators(page: Page) -> dict[str, Any]:
    return {"etag": page.validators.etag, "last_modified": page.validators.last_modified}


def _read_listing(
    url: str, crawler: Crawler, old: dict[str, Any], new: dict[str, Any], *, root: bool
) -> tuple[Listing | None, Page | None]:
    """A listing (fetched, or replayed from state on a 304), or the page itself when the
    root location is an article. Raises when it cannot be read."""
    kept = old.get(url)
    types = _ROOT_TYPES if root else LISTING_TYPES
    page = crawler.get(url, types=types, validators=_validators(kept))
    if page.not_modified and kept is not None:
        new[url] = kept
        listing = kept.get("listing")
        return (Listing.from_json(listing) if listing else None), None
    listing = parse_listing(page)
    if listing is None and not root:
        raise SourceUnreadable(f"{url} is not a sitemap")
    new[url] = {**_kept_validators(page), "listing": listing.to_json() if listing else None}
    return listing, (None if listing else page)


def collect_web(source: Source, crawler: Crawler, settings: Settings, *, prune: bool) -> Collected:
    old_pages: dict[str, dict[str, Any]] = source.state.get("pages", {})
    old_listings: dict[str, dict[str, Any]] = source.state.get("listings", {})
    new_listings: dict[str, dict[str, Any]] = {}
    out = Collected()
    complete = True  # every listing read: only then may pruning trust what is missing

    try:
        listing, root_page = _read_listing(
            source.location, crawler, old_listings, new_listings, root=True
        )
    except QAError as exc:
        raise SourceUnreadable(f"cannot read {source.location}: {exc.message}") from None
    name = source.name
    entries: dict[str, Entry] = {}
    if listing is None:  # the location is one article page
        entries[source.location] = Entry(url=source.location)
    else:
        name = name or listing.name
        for entry in listing.entries:
            entries.setdefault(entry.url, entry)
        for child in listing.sitemaps:
            try:
                sub, _ = _read_listing(child, crawler, old_listings, new_listings, root=False)
            except QAError as exc:
                out.problems.append(f"{child}: {exc.message}")
                complete = False
                continue
            for entry in sub.entries if sub else ():
                entries.setdefault(entry.url, entry)
    out.listed = len(entries)
    if listing is None and root_page is None:  # a one-page source that answered 304
        out.state = {"pages": old_pages, "listings": new_listings, "robots": crawler.robots_state}
        return out

    # New URLs first, so a long listing is taken in over a few runs; then the cap.
    order = sorted(entries, key=lambda u: u in old_pages)
    new_pages: dict[str, dict[str, Any]] = {}
    to_fetch: list[tuple[str, Validators | None]] = []
    for url in order:
        kept = old_pages.get(url)
        entry = entries[url]
        unmoved = bool(entry.lastmod) and entry.lastmod == (kept or {}).get("lastmod")
        if kept and kept.get("article_id") and unmoved:
            new_pages[url] = kept  # the sitemap says it has not changed: no request
            out.skipped += 1
        elif len(to_fetch) >= settings.crawl_max_pages:
            if kept:
                new_pages[url] = kept
            out.skipped += 1
        elif not crawler.allowed(url):
            out.problems.append(f"{url}: disallowed by the site's robots.txt")
            out.skipped += 1
            if kept:
                new_pages[url] = kept
        else:
            to_fetch.append((url, _validators(kept)))

    if root_page is not None:  # already fetched: no second request for it
        results: Iterator[tuple[str, Page | QAError]] = iter([(source.location, root_page)])
    else:
        results = crawler.get_many(to_fetch)
    gone: set[str] = set()
    for url, result in results:
        kept = old_pages.get(url)
        entry = entries[url]
        if isinstance(result, QAError):
            out.problems.append(f"{url}: {result.message}")
            if isinstance(result, FetchFailed) and result.http_status in _GONE:
                gone.add(url)
            elif kept:
                new_pages[url] = kept
            continue
        if result.not_modified and kept:
            new_pages[url] = {**kept, **_kept_validators(result), "lastmod": entry.lastmod}
            continue
        try:
            articles = _articles(result, entry, name, url)
        except UnreadableFile as exc:
            out.problems.append(f"{url}: {exc.message}")
            if kept:
                new_pages[url] = kept
            continue
        out.batches.append((url, articles, []))
        new_pages[url] = {
            **_kept_validators(result),
            "lastmod": entry.lastmod,
            "article_id": article_id(articles[0]),
        }

    # Pages no longer listed (or gone: 404/410) keep their article unless pruned.
    for url, kept in old_pages.items():
        if url in new_pages:
            continue
        if prune and complete and (url not in entries or url in gone):
            if kept.get("article_id"):
                out.remove.append(kept["article_id"])
        else:
            new_pages[url] = kept
    out.state = {"pages": new_pages, "listings": new_listings, "robots": crawler.robots_state}
    return out


def _canonical(page_url: str, declared: str | None) -> str:
    """The page's canonical URL when it declares one on its own host, else where it was
    fetched (a canonical link pointing elsewhere would merge unrelated articles)."""
    if not declared:
        return page_url
    try:
        candidate = urljoin(page_url, declared.strip())
        same_host = urlsplit(candidate).hostname == urlsplit(page_url).hostname
    except ValueError:
        return page_url
    ok = same_host and urlsplit(candidate).scheme in ("http", "https")
    return candidate.split("#", 1)[0] if ok else page_url


def _articles(page: Page, entry: Entry, source_name: str | None, url: str) -> list[SourceArticle]:
    stem = PurePosixPath(urlsplit(page.url).path).stem or "page"
    articles, _problems = read_upload(stem + page.suffix, page.text_bytes(), origin=page.url)
    if page.suffix == ".json":  # a JSON page carries its own articles and fields
        return [replace(a, source=a.source or source_name) for a in articles]
    host = urlsplit(url).hostname
    out = []
    for a in articles[:1]:  # one page, one article
        canonical = _canonical(page.url, a.url)
        out.append(
            replace(
                a,
                origin=canonical,
                url=canonical,
                title=entry.title or a.title,
                published=a.published or entry.published,
                author=a.author or entry.author,
                source=source_name or entry.source or a.source or host,
            )
        )
    return out


# --------------------------------------------------------------------------- folders


def _signature(path: Path) -> dict[str, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"mtime_ns": st.st_mtime_ns, "size": st.st_size}


def collect_folder(source: Source, *, prune: bool) -> Collected:
    folder = Path(source.location)
    if not folder.is_dir():
        raise SourceUnreadable(f"{folder} is not a readable folder")
    old: dict[str, dict[str, Any]] = source.state.get("files", {})
    new: dict[str, dict[str, Any]] = {}
    out = Collected()
    for path in iter_article_files([folder]):
        key = str(path)
        out.listed += 1
        signature = _signature(path)
        kept = old.get(key)
        if kept and signature and all(kept.get(k) == v for k, v in signature.items()):
            new[key] = kept  # same size, same mtime: not read again
            continue
        try:
            articles, problems = read_file(path)
        except UnreadableFile as exc:
            out.problems.append(exc.message)
            if kept:
                new[key] = kept
            continue
        if source.name:
            articles = [replace(a, source=a.source or source.name) for a in articles]
        out.batches.append((path, articles, problems))
        ids = [article_id(a) for a in articles]
        if prune and kept:  # an edited file that no longer holds some of its articles
            out.remove.extend(i for i in kept.get("ids", []) if i not in ids)
        new[key] = {**(signature or {}), "ids": ids}
    for key, kept in old.items():
        if key in new:
            continue
        if prune:
            out.remove.extend(kept.get("ids", []))
        else:
            new[key] = kept
    out.state = {"files": new}
    return out
