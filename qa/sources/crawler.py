"""Polite fetching for sources: robots.txt, per-host limits, conditional requests.

In: URLs (with the validators of their last fetch). Out: `Page`s (a 304 is a Page
without a body) or the error of each URL, and counts of what was requested.

Every request goes through the SSRF-safe `qa.fetch.Fetcher`. Per host: robots.txt
is read first (itself conditionally, its text kept in the source's state) and its
rules for "qa" honoured; at most two requests are in flight, and each starts at
least `delay` seconds after the one before (a longer robots.txt Crawl-delay wins,
capped at a minute). `stop` ends a crawl between requests.
"""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from qa.errors import FetchFailed, FetchRefused, QAError, SourceUnreadable
from qa.fetch import ALLOWED_TYPES, Fetcher, Page, Validators

ROBOTS_AGENT = "qa"  # the product token robots.txt rules name
PER_HOST = 2
MAX_CRAWL_DELAY = 60.0
_ROBOTS_TYPES = {"text/plain": ".txt"}


class Stopped(SourceUnreadable):
    """The crawl was asked to stop (the server is shutting down): nothing is published."""


@dataclass
class _Host:
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(PER_HOST))
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_start: float = 0.0
    delay: float = 0.0
    robots: urllib.robotparser.RobotFileParser | None = None


@dataclass
class Counts:
    requested: int = 0
    downloaded: int = 0
    not_modified: int = 0


class Crawler:
    """One refresh's polite fetcher. `robots_state` (per host: validators and text) is
    read and updated in place; the caller stores it with the source's state."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        delay: float,
        robots_state: dict[str, Any],
        stop: threading.Event | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.delay = delay
        self.robots_state = robots_state
        self.stop = stop or threading.Event()
        self.counts = Counts()
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()  # held while a new host's robots.txt is read
        self._counts_lock = threading.Lock()

    # -- public -------------------------------------------------------------------------
    def allowed(self, url: str) -> bool:
        """Does the host's robots.txt let "qa" fetch this URL?"""
        host = self._host(url)
        return host.robots is None or host.robots.can_fetch(ROBOTS_AGENT, url)

    def get(
        self,
        url: str,
        *,
        types: Mapping[str, str] = ALLOWED_TYPES,
        validators: Validators | None = None,
    ) -> Page:
        """One polite, conditional GET; FetchRefused when robots.txt disallows it."""
        if not self.allowed(url):
            raise FetchRefused(f"{url}: disallowed by the site's robots.txt")
        return self._polite_get(self._host(url), url, types, validators)

    def get_many(
        self, requests: list[tuple[str, Validators | None]], workers: int = 4
    ) -> Iterator[tuple[str, Page | QAError]]:
        """`get` for many URLs, in parallel within the per-host limits; results in order."""

        def one(item: tuple[str, Validators | None]) -> Page | QAError:
            try:
                return self.get(item[0], validators=item[1])
            except Stopped:
                raise
            except QAError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-crawl") as pool:
            for (url, _), result in zip(requests, pool.map(one, requests), strict=True):
                yield url, result

    # -- hosts and robots.txt ---------------------------------------------------------------
    def _host(self, url: str) -> _Host:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        with self._hosts_lock:
            host = self._hosts.get(key)
            if host is None:
                host = self._hosts[key] = _Host(delay=self.delay)
                self._read_robots(key, host)
            return host

    def _read_robots(self, key: str, host: _Host) -> None:
        """Parse the host's robots.txt. Missing (4xx) or not text: no rules. Unreachable
        or a server error: the whole host is off limits for this refresh (RFC 9309)."""
        kept = self.robots_state.get(key, {})
        validators = Validators(kept.get("etag"), kept.get("last_modified")) if kept else None
        text = ""
        try:
            page = self._polite_get(host, key + "/robots.txt", _ROBOTS_TYPES, validators)
            if page.not_modified:
                text = kept.get("text", "")
            else:
                text = page.text_bytes().decode("utf-8", errors="replace")
                self.robots_state[key] = {
                    "etag": page.validators.etag,
                    "last_modified": page.validators.last_modified,
                    "text": text,
                }
        except Stopped:
            raise
        except FetchFailed as exc:
            if exc.http_status is None or exc.http_status >= 500:
                text = "User-agent: *\nDisallow: /\n"
            self.robots_state.pop(key, None)
        except FetchRefused:  # served as HTML, say, or a refused address (pages say so too)
            self.robots_state.pop(key, None)
        robots = urllib.robotparser.RobotFileParser()
        robots.parse(text.splitlines())
        host.robots = robots
        wanted = robots.crawl_delay(ROBOTS_AGENT)
        if wanted:
            host.delay = max(self.delay, min(float(wanted), MAX_CRAWL_DELAY))

    # -- the request ------------------------------------------------------------------------
    def _polite_get(
        self,
        host: _Host,
        url: str,
        types: Mapping[str, str],
        validators: Validators | None,
    ) -> Page:
        with host.slots:
            with host.lock:
                now = time.monotonic()
                start = max(now, host.next_start)
                host.next_start = start + host.delay
            if self.stop.wait(start - now) if start > now else self.stop.is_set():
                raise Stopped("the refresh was stopped before it finished")
            with self._counts_lock:
                self.counts.requested += 1
            page = self.fetcher.fetch(url, types=types, validators=validators)
            with self._counts_lock:
                if page.not_modified:
                    self.counts.not_modified += 1
                else:
                    self.counts.downloaded += 1
            return page
