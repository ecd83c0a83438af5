"""Feeds and sitemaps → the article URLs they list, with what they say about each.

In: a fetched `Page` (RSS, Atom, an XML sitemap, a sitemap index, a news sitemap).
Out: a `Listing`, or None when the page is not a listing (then it is an article).

Sitemaps are parsed by lxml with entities, DTDs and the network off and huge trees
refused; feeds by feedparser, from the bytes already fetched (it never fetches
anything itself, and its XML parser ignores external entities).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import lxml.etree

from qa.errors import SourceUnreadable
from qa.fetch import ALLOWED_TYPES, Page
from qa.readers import parse_published

MAX_ENTRIES = 50_000  # a sitemap's own limit
MAX_CHILD_SITEMAPS = 50  # sitemaps read from one sitemap index


@dataclass(frozen=True)
class Entry:
    """One listed article URL and what the listing says about it."""

    url: str
    title: str | None = None
    published: str | None = None
    author: str | None = None
    lastmod: str | None = None  # a sitemap's <lastmod>: unchanged → no request at all
    source: str | None = None  # a news sitemap's publication name


@dataclass(frozen=True)
class Listing:
    kind: Literal["feed", "sitemap", "sitemapindex"]
    name: str | None = None  # the feed's title
    entries: tuple[Entry, ...] = ()
    sitemaps: tuple[str, ...] = field(default=())  # a sitemap index's children

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Listing:
        entries = tuple(Entry(**e) for e in data.get("entries", ()))
        return cls(data["kind"], data.get("name"), entries, tuple(data.get("sitemaps", ())))


def parse_listing(page: Page) -> Listing | None:
    """The page's listing; None for an article page (HTML, text, Markdown, JSON);
    SourceUnreadable for XML that is neither a feed nor a sitemap."""
    if page.media_type in ALLOWED_TYPES:
        return None
    listing = _sitemap(page) or _feed(page)
    if listing is None:
        raise SourceUnreadable(f"{page.url} is neither an RSS/Atom feed nor a sitemap")
    return listing


# --------------------------------------------------------------------------- sitemaps

_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_comments": True,
    "remove_pis": True,
}


def _local(element: Any) -> str:
    tag = element.tag
    return lxml.etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: Any, *path: str) -> str | None:
    """The stripped text of the first descendant along `path` (local names)."""
    for name in path:
        element = next((c for c in element if _local(c) == name), None)
        if element is None:
            return None
    text = (element.text or "").strip()
    return text or None


def _sitemap(page: Page) -> Listing | None:
    try:
        root = lxml.etree.fromstring(page.body, lxml.etree.XMLParser(**_PARSER_OPTIONS))
    except lxml.etree.XMLSyntaxError:
        return None
    kind = _local(root)
    if kind == "sitemapindex":
        locs = [_child_text(s, "loc") for s in root if _local(s) == "sitemap"]
        children = [urljoin(page.url, loc) for loc in locs if loc][:MAX_CHILD_SITEMAPS]
        return Listing("sitemapindex", sitemaps=tuple(dict.fromkeys(children)))
    if kind != "urlset":
        return None
    entries: dict[str, Entry] = {}
    for item in root:
        if _local(item) != "url" or len(entries) >= MAX_ENTRIES:
            continue
        loc = _child_text(item, "loc")
        if not loc:
            continue
        url = urljoin(page.url, loc)
        published = _child_text(item, "news", "publication_date")
        entries.setdefault(
            url,
            Entry(
                url=url,
                title=_child_text(item, "news", "title"),
                published=parse_published(published) if published else None,
                lastmod=_child_text(item, "lastmod"),
                source=_child_text(item, "news", "publication", "name"),
            ),
        )
    return Listing("sitemap", entries=tuple(entries.values()))


# --------------------------------------------------------------------------- feeds


def _feed_date(entry: Any) -> str | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not isinstance(parsed, time.struct_time):
        return None
    # feedparser normalises to UTC; keep it as an ISO date-time with its offset.
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()


def _feed(page: Page) -> Listing | None:
    import feedparser  # only refreshes need it

    parsed = feedparser.parse(page.body, response_headers={"content-location": page.url})
    if not parsed.get("version") and not parsed.entries:
        return None
    entries: dict[str, Entry] = {}
    for item in parsed.entries[:MAX_ENTRIES]:
        link = (item.get("link") or "").strip()
        if not link:
            continue
        url = urljoin(page.url, link)
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        entries.setdefault(
            url,
            Entry(
                url=url,
                title=" ".join((item.get("title") or "").split()) or None,
                published=_feed_date(item),
                author=(item.get("author") or "").strip() or None,
            ),
        )
    name = " ".join((parsed.feed.get("title") or "").split()) or None
    return Listing("feed", name=name, entries=tuple(entries.values()))
