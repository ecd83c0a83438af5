"""Fetching one web page to ingest, without letting a caller reach what the server can (SSRF).

In: a URL from an API request. Out: a `Page` (final URL, media type, body bytes), or
`FetchRefused` (422: a URL or page the server will not fetch or ingest) or
`FetchFailed` (502: the network or the remote server failed).

Every hop, the first and each redirect, is vetted before a byte is sent: http or
https only, no credentials, and the host, whether an IP literal in any spelling
(`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]`) or a name
resolved through DNS, must map only to public addresses. The connection then goes
to the vetted IP itself (Host header and TLS SNI carry the name), so a DNS answer
that changes between check and connect (rebinding) is never used. Redirects are
followed by hand, at most five; the body is streamed and cut off at the size cap;
the whole fetch has one deadline.

Private addresses on purpose: an operator may name hosts or address ranges in an
`AllowList` (`QA_FETCH_ALLOW`), e.g. an intranet feed. Only what it names is admitted,
on every hop alike; everything else stays refused. A fetch may also be conditional
(ETag / Last-Modified from an earlier fetch): a 304 comes back as a body-less `Page`.
"""

from __future__ import annotations

import codecs
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from qa import __version__
from qa.errors import FetchFailed, FetchRefused

if TYPE_CHECKING:
    from qa.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressCheck = Callable[[IPAddress, int], bool]
"""(address, port) -> may the server connect there?"""
Resolver = Callable[[str, int], list[IPAddress]]

# The media types that can become articles, and the reader (by file suffix) for each.
ALLOWED_TYPES: dict[str, str] = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/json": ".json",
}
# Feeds and sitemaps, fetched by qa.sources only: never read as articles themselves.
LISTING_TYPES: dict[str, str] = {
    "application/rss+xml": ".xml",
    "application/atom+xml": ".xml",
    "application/rdf+xml": ".xml",
    "application/xml": ".xml",
    "text/xml": ".xml",
}
USER_AGENT = f"qa/{__version__} (article ingest and feed refresh)"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


# --------------------------------------------------------------------------- addresses


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, or deprecated IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public_address(ip: IPAddress, port: int = 0) -> bool:
    """True only for globally routable unicast addresses (any port).

    `is_global` alone is not trusted: each special range is refused explicitly, and an
    IPv6 address is refused when an IPv4 address embedded in it is not public.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False  # zone-scoped addresses are link-local by nature
        if any(not is_public_address(v4) for v4 in _embedded_ipv4(ip)):
            return False
    special = (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
    return ip.is_global and not special


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton's spellings of an IPv4 address ('127.1', '0x7f000001', '0177.0.0.1',
    '2130706433'): C resolvers and browsers read them as addresses, so they are checked
    as addresses, never looked up as names."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        lower = part.lower()
        if lower.startswith("0x"):
            digits, base = lower[2:] or "0", 16
        elif len(lower) > 1 and lower.startswith("0"):
            digits, base = lower[1:], 8
        else:
            digits, base = lower, 10
        try:
            values.append(int(digits, base))
        except ValueError:
            return None
        if not digits.isalnum():
            return None  # int() accepts '+', '_' and spaces; inet_aton does not
    *leading, last = values
    if any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = last
    for position, value in enumerate(leading):
        number += value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host spells literally, in any accepted form; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (all families)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed(f"cannot resolve the host name {host}") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _AllowRule:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # or a host name
    name: str | None
    port: int | None  # None: any port

    def admits(self, address: IPAddress, port: int, name: str | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return address in self.network
        return name is not None and name == self.name


@dataclass(frozen=True)
class AllowList:
    """Private hosts an operator allows on purpose: `10.0.0.0/8`, `192.168.1.20`,
    `feeds.intranet`, each optionally with a port (`127.0.0.1:8080`, `[fd00::1]:443`,
    `feeds.intranet:8443`). A name admits whatever it resolves to, only when the URL
    names that host; a network admits its addresses under any name."""

    rules: tuple[_AllowRule, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Raise ValueError naming the first entry that is neither a host nor a range."""
        return cls(tuple(_allow_rule(entry) for entry in entries))

    def admits(self, address: IPAddress, port: int, name: str | None = None) -> bool:
        return any(rule.admits(address, port, name) for rule in self.rules)

    def names(self, host: str) -> bool:
        """True when a rule names this host (so 'localhost' may be fetched if listed)."""
        return any(rule.name == host for rule in self.rules)


def _allow_rule(entry: str) -> _AllowRule:
    text = entry.strip().lower()
    bad = ValueError(
        f"{entry!r} is not a host, address or range (e.g. 10.0.0.0/8, 127.0.0.1:8080, "
        "feeds.intranet)"
    )
    if not text:
        raise bad
    host, port = text, None
    if text.startswith("["):  # [v6] or [v6]:port
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise bad
            port = int(rest[1:])
    elif text.count(":") == 1:  # v4, name or range with a port (bare v6 has more colons)
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            raise bad
        port = int(digits)
    if port is not None and not 1 <= port <= 65535:
        raise bad
    try:
        return _AllowRule(ipaddress.ip_network(host, strict=False), None, port)
    except ValueError:
        pass
    name = host.rstrip(".")
    labels = name.split(".")
    if not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
        raise bad
    if literal_address(name) is not None:  # '127.1' and the like: spell addresses plainly
        raise bad
    return _AllowRule(None, name, port)


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Validators:
    """What a server said about a page's version, sent back to ask 'has it changed?'."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        found = {"If-None-Match": self.etag, "If-Modified-Since": self.last_modified}
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class Page:
    url: str  # after redirects, as the caller would write it (not the pinned IP)
    media_type: str  # one of the accepted types ("" for a 304)
    charset: str | None
    body: bytes
    status: int = 200  # or 304: not modified since the validators sent (no body)
    validators: Validators = field(default_factory=Validators)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def suffix(self) -> str:
        """The file suffix whose reader parses this page."""
        return ALLOWED_TYPES.get(self.media_type) or LISTING_TYPES.get(self.media_type, "")

    def text_bytes(self) -> bytes:
        """The body re-encoded as UTF-8 when the server declared another charset, so the
        readers' own decoding (UTF-8, UTF-16 with BOM, Windows-1252) reads it right."""
        charset = (self.charset or "").lower()
        bom = self.body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        if not charset or charset in _UTF8_NAMES or bom:
            return self.body
        try:
            return self.body.decode(charset, errors="replace").encode("utf-8")
        except LookupError:  # an unknown charset name: let the readers guess
            return self.body


@dataclass(frozen=True)
class _Hop:
    """One vetted request: the URL pinned to an address, and the names it speaks for."""

    url: str
    pinned: httpx.URL
    host_header: str
    sni: str | None


def _parse_content_type(value: str) -> tuple[str, str | None]:
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


class Fetcher:
    """Fetches pages under the SSRF rules above.

    `is_allowed` and `resolve` are injectable so tests can allow one local server
    (and fake DNS answers) without weakening the default; `transport` lets them
    observe requests without a network. `allow` is the operator's allow-list.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 5_000_000,
        timeout: float = 10.0,
        max_redirects: int = MAX_REDIRECTS,
        is_allowed: AddressCheck = is_public_address,
        resolve: Resolver = resolve_host,
        transport: httpx.BaseTransport | None = None,
        allow: AllowList | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.is_allowed = is_allowed
        self.resolve = resolve
        self.transport = transport
        self.allow = allow or AllowList()

    @classmethod
    def from_settings(cls, settings: Settings) -> Fetcher:
        return cls(
            max_bytes=settings.fetch_max_bytes,
            timeout=settings.fetch_timeout,
            allow=AllowList.parse(settings.fetch_allow),
        )

    def fetch(
        self,
        url: str,
        *,
        types: Mapping[str, str] = ALLOWED_TYPES,
        validators: Validators | None = None,
    ) -> Page:
        """GET `url`, accepting only the media `types`; with `validators`, a conditional
        GET whose answer may be a 304 Page (no body)."""
        deadline = time.monotonic() + self.timeout
        extra = validators.headers() if validators else {}
        for hop in range(self.max_redirects + 1):
            vetted = self.vet(url, redirected=hop > 0)
            result = self._get(vetted, deadline, types, extra)
            if isinstance(result, Page):
                return result
            try:
                url = urljoin(url, result)
            except ValueError:  # e.g. an unclosed IPv6 bracket
                raise FetchRefused("the page redirects to an invalid URL") from None
        raise FetchRefused(f"the page redirects more than {self.max_redirects} times")

    def vet(self, url: str, *, redirected: bool = False) -> _Hop:
        """Check a URL and pin it to one of its (all public) addresses; raise FetchRefused."""
        what = "the page redirects to a URL that" if redirected else "the URL"
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise FetchRefused(f"{what} is not valid") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            shown = f"{scheme}:" if scheme else "a URL without a scheme"
            raise FetchRefused(f"{what} is refused: only http and https are fetched, not {shown}")
        if parts.username is not None or parts.password is not None:
            raise FetchRefused(f"{what} is refused: it carries credentials")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise FetchRefused(f"{what} has no host")
        if port == 0:
            raise FetchRefused(f"{what} is not valid: port 0")
        port = port or _DEFAULT_PORTS[scheme]

        address = literal_address(host)
        if address is not None:
            addresses = [address]
            name = None
        elif (host == "localhost" or host.endswith(".localhost")) and not self.allow.names(host):
            raise FetchRefused(f"{what} is refused: {host} is not a public host")
        else:
            try:
                name = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise FetchRefused(f"{what} has an invalid host name") from None
            addresses = self.resolve(name, port)
        if not addresses:
            raise FetchFailed(f"cannot resolve the host name {host}")
        if not all(self.is_allowed(a, port) or self.allow.admits(a, port, name) for a in addresses):
            which = "is not" if name is None else "resolves to something other than"
            raise FetchRefused(f"{what} is refused: {host} {which} a public address")

        pinned_host = addresses[0]
        netloc = f"[{pinned_host}]" if pinned_host.version == 6 else str(pinned_host)
        netloc += f":{port}" if parts.port is not None else ""
        try:  # httpx percent-encodes what needs it in the path and query
            pinned = httpx.URL(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")))
        except httpx.InvalidURL:
            raise FetchRefused(f"{what} is not valid") from None
        shown_host = name or (f"[{address}]" if address and address.version == 6 else str(address))
        host_header = shown_host if port == _DEFAULT_PORTS[scheme] else f"{shown_host}:{port}"
        return _Hop(url=url, pinned=pinned, host_header=host_header, sni=name)

    def _get(
        self, hop: _Hop, deadline: float, types: Mapping[str, str], extra: Mapping[str, str]
    ) -> Page | str:
        """GET one hop: the Page, or the Location of a redirect."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"the page did not arrive within {self.timeout:g} seconds")
        headers = {
            **extra,
            "Host": hop.host_header,
            "User-Agent": USER_AGENT,
            "Accept": ", ".join(types),
            "Accept-Encoding": "identity",  # no decompression bombs to defuse
        }
        extensions = {"sni_hostname": hop.sni} if hop.sni and hop.pinned.scheme == "https" else {}
        try:
            # A client per hop: no pooled connection is ever reused for another name.
            with (
                httpx.Client(
                    transport=self.transport,
                    timeout=remaining,
                    trust_env=False,  # a proxy from the environment would undo the pinning
                    follow_redirects=False,
                ) as client,
                client.stream("GET", hop.pinned, headers=headers, extensions=extensions) as resp,
            ):
                return self._read(hop, resp, deadline, types)
        except httpx.TimeoutException:
            raise FetchFailed(f"the page did not arrive within {self.timeout:g} seconds") from None
        except httpx.ConnectError:
            raise FetchFailed("cannot connect to the page's server") from None
        except httpx.HTTPError:
            raise FetchFailed("the page's server sent a broken response") from None

    def _read(
        self, hop: _Hop, resp: httpx.Response, deadline: float, types: Mapping[str, str]
    ) -> Page | str:
        if resp.status_code in _REDIRECTS:
            location = resp.headers.get("location", "").strip()
            if not location:
                raise FetchFailed(f"the page answered HTTP {resp.status_code} without a Location")
            return location
        validators = Validators(
            etag=resp.headers.get("etag") or None,
            last_modified=resp.headers.get("last-modified") or None,
        )
        if resp.status_code == 304:
            return Page(hop.url, "", None, b"", status=304, validators=validators)
        if resp.status_code != 200:
            raise FetchFailed(
                f"the page answered HTTP {resp.status_code}, not 200", http_status=resp.status_code
            )
        media_type, charset = _parse_content_type(resp.headers.get("content-type", ""))
        if media_type not in types:
            kinds = ", ".join(types)
            shown = media_type or "of no declared type"
            raise FetchRefused(f"the page is {shown}; only {kinds} can be ingested")
        too_large = f"the page is larger than the limit of {self.max_bytes} bytes"
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchRefused(too_large)
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchRefused(too_large)
            if time.monotonic() > deadline:
                raise FetchFailed(f"the page did not arrive within {self.timeout:g} seconds")
        return Page(
            url=hop.url,
            media_type=media_type,
            charset=charset,
            body=bytes(body),
            validators=validators,
        )
