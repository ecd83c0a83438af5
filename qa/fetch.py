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
"""

from __future__ import annotations

import codecs
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from qa import __version__
from qa.errors import FetchFailed, FetchRefused

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


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Page:
    url: str  # after redirects, as the caller would write it (not the pinned IP)
    media_type: str  # one of ALLOWED_TYPES
    charset: str | None
    body: bytes

    @property
    def suffix(self) -> str:
        """The file suffix whose reader parses this page."""
        return ALLOWED_TYPES[self.media_type]

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
    observe requests without a network.
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
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.is_allowed = is_allowed
        self.resolve = resolve
        self.transport = transport

    def fetch(self, url: str) -> Page:
        deadline = time.monotonic() + self.timeout
        for hop in range(self.max_redirects + 1):
            vetted = self.vet(url, redirected=hop > 0)
            result = self._get(vetted, deadline)
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
        elif host == "localhost" or host.endswith(".localhost"):
            raise FetchRefused(f"{what} is refused: {host} is not a public host")
        else:
            try:
                name = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise FetchRefused(f"{what} has an invalid host name") from None
            addresses = self.resolve(name, port)
        if not addresses:
            raise FetchFailed(f"cannot resolve the host name {host}")
        if not all(self.is_allowed(a, port) for a in addresses):
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

    def _get(self, hop: _Hop, deadline: float) -> Page | str:
        """GET one hop: the Page, or the Location of a redirect."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"the page did not arrive within {self.timeout:g} seconds")
        headers = {
            "Host": hop.host_header,
            "User-Agent": f"qa/{__version__} (article ingest)",
            "Accept": ", ".join(ALLOWED_TYPES),
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
                return self._read(hop, resp, deadline)
        except httpx.TimeoutException:
            raise FetchFailed(f"the page did not arrive within {self.timeout:g} seconds") from None
        except httpx.ConnectError:
            raise FetchFailed("cannot connect to the page's server") from None
        except httpx.HTTPError:
            raise FetchFailed("the page's server sent a broken response") from None

    def _read(self, hop: _Hop, resp: httpx.Response, deadline: float) -> Page | str:
        if resp.status_code in _REDIRECTS:
            location = resp.headers.get("location", "").strip()
            if not location:
                raise FetchFailed(f"the page answered HTTP {resp.status_code} without a Location")
            return location
        if resp.status_code != 200:
            raise FetchFailed(f"the page answered HTTP {resp.status_code}, not 200")
        media_type, charset = _parse_content_type(resp.headers.get("content-type", ""))
        if media_type not in ALLOWED_TYPES:
            kinds = ", ".join(ALLOWED_TYPES)
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
        return Page(url=hop.url, media_type=media_type, charset=charset, body=bytes(body))
