"""A real HTTP server on 127.0.0.1 that publishes generated articles as a site would:
an RSS feed, an Atom feed, a sitemap index with a news sitemap, robots.txt and the
article pages, with ETag and Last-Modified so conditional requests can answer 304.

It counts what it served (per path, 200s with a body and 304s) so tests can check
that an unchanged refresh downloads nothing. Pages are short factual texts
generated here; `edit`, `remove` and `add` change the site between refreshes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

TOWNS = (
    "Arlenholm", "Brackwater", "Cindervale", "Dovecote", "Eastmere", "Fallowby", "Glenhaven",
    "Harrowgate", "Ivybridge", "Juniper Cross",
)  # fmt: skip
CROPS = ("barley", "rye", "flax", "hops", "lentils", "oats", "turnips", "clover", "kale", "beans")


@dataclass
class Article:
    slug: str
    title: str
    text: str
    published: str  # ISO date-time
    author: str
    version: int = 1

    @property
    def lastmod(self) -> str:
        return self.published[:10] if self.version == 1 else f"2025-06-{self.version:02d}"

    def html(self) -> bytes:
        body = "".join(f"<p>{escape(p)}</p>" for p in self.text.split("\n\n"))
        return (
            "<!doctype html><html><head>"
            f"<title>{escape(self.title)} | Valley Gazette</title>"
            f'<meta property="og:title" content="{escape(self.title)}">'
            '<meta property="og:site_name" content="Valley Gazette">'
            f'<meta name="author" content="{escape(self.author)}">'
            f'<meta property="article:published_time" content="{self.published}">'
            f'<link rel="canonical" href="/news/{self.slug}">'
            "</head><body><nav>Home | News | About</nav><article>"
            f"<h1>{escape(self.title)}</h1>{body}</article></body></html>"
        ).encode()


def make_article(i: int) -> Article:
    town, crop = TOWNS[i % len(TOWNS)], CROPS[(i // len(TOWNS)) % len(CROPS)]
    tons = 120 + 17 * i
    return Article(
        slug=f"harvest-{i:03d}",
        title=f"{town} harvest report number {i}",
        text=(
            f"Farmers around {town} brought in {tons} tonnes of {crop} this season, "
            f"according to the cooperative's report number {i}. "
            f"The cooperative said the {crop} was stored in the old mill by the river.\n\n"
            f"Report {i} also noted that the {town} market will open on a Thursday, and that "
            f"the growers' meeting elected a treasurer called Member{i} Okonkwo."
        ),
        published=f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T08:30:00+00:00",
        author=f"Reporter {i % 7}",
    )


@dataclass
class Site:
    articles: dict[str, Article] = field(default_factory=dict)
    robots: str = "User-agent: *\nDisallow: /private/\n"
    extra_links: list[str] = field(default_factory=list)  # more feed items, by path
    hits: Counter = field(default_factory=Counter)  # path -> requests
    bodies: Counter = field(default_factory=Counter)  # path -> 200 answers with a body
    not_modified: Counter = field(default_factory=Counter)  # path -> 304 answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_counts(self) -> None:
        with self.lock:
            self.hits.clear()
            self.bodies.clear()
            self.not_modified.clear()

    def edit(self, slug: str, sentence: str) -> None:
        a = self.articles[slug]
        a.text += "\n\n" + sentence
        a.version += 1

    # -- documents ---------------------------------------------------------------------
    def rss(self, base: str) -> bytes:
        items = "".join(
            f"<item><title>{escape(a.title)}</title><link>{base}/news/{a.slug}</link>"
            f"<guid>{base}/news/{a.slug}</guid><author>{escape(a.author)}</author>"
            f"<pubDate>{formatdate(_epoch(a.published), usegmt=True)}</pubDate></item>"
            for a in self.articles.values()
        )
        items += "".join(
            f"<item><title>Extra</title><link>{base}{path}</link></item>"
            for path in self.extra_links
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Valley Gazette</title><link>{base}/</link>"
            f"<description>Harvest news</description>{items}</channel></rss>"
        ).encode()

    def sitemap_index(self, base: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{base}/sitemap-news.xml</loc></sitemap>"
            "</sitemapindex>"
        ).encode()

    def news_sitemap(self, base: str) -> bytes:
        urls = "".join(
            f"<url><loc>{base}/news/{a.slug}</loc><lastmod>{a.lastmod}</lastmod><news:news>"
            "<news:publication><news:name>Valley Gazette News</news:name>"
            "<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{a.published}</news:publication_date>"
            f"<news:title>{escape(a.title)}</news:title></news:news></url>"
            for a in self.articles.values()
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            f"{urls}</urlset>"
        ).encode()

    def document(self, path: str, base: str) -> tuple[int, str, bytes]:
        if path == "/robots.txt":
            return 200, "text/plain", self.robots.encode()
        if path == "/feed.xml":
            return 200, "application/rss+xml", self.rss(base)
        if path == "/sitemap.xml":
            return 200, "application/xml", self.sitemap_index(base)
        if path == "/sitemap-news.xml":
            return 200, "application/xml", self.news_sitemap(base)
        if path.startswith("/news/") and path[6:] in self.articles:
            return 200, "text/html; charset=utf-8", self.articles[path[6:]].html()
        if path.startswith("/private/"):
            return 200, "text/html", b"<html><body><p>Never to be fetched.</p></body></html>"
        return 404, "text/plain", b"not here"


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


class _Handler(BaseHTTPRequestHandler):
    server: SiteServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site
        path = self.path.split("?", 1)[0]
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        with site.lock:
            site.hits[path] += 1
            status, media_type, body = site.document(path, base)
        etag = '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:16] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            with site.lock:
                site.not_modified[path] += 1
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        if status == 200:
            with site.lock:
                site.bodies[path] += 1
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 200:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site = site
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def allow_entry(self) -> str:
        """The QA_FETCH_ALLOW entry that admits exactly this server."""
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def site_with(n: int) -> Site:
    return Site(articles={a.slug: a for a in map(make_article, range(n))})
