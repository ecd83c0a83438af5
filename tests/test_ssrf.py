"""SSRF defence of `qa.fetch`: what is refused before any connection, and what a real
(local) server can and cannot make the fetcher do: redirects, size, time, content type.

Nothing here touches the network beyond 127.0.0.1: refused URLs are checked with every
connection path patched to fail the test, and the local server is allowed by injecting
an address check that admits exactly its (address, port).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from qa.errors import FetchFailed, FetchRefused
from qa.fetch import AllowList, Fetcher, is_public_address, literal_address
from qa.settings import Settings

ip = ipaddress.ip_address
PUBLIC = ip("93.184.216.34")


def _network_used(*args, **kwargs):
    raise AssertionError("a refused URL reached the connection layer")


@pytest.fixture
def no_network(monkeypatch) -> None:
    """Any DNS lookup or connection attempt fails the test."""
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", _network_used)
    monkeypatch.setattr(socket, "create_connection", _network_used)
    monkeypatch.setattr(socket, "getaddrinfo", _network_used)
    monkeypatch.setattr(socket.socket, "connect", _network_used)


FAKE_DNS = {
    "internal.example": [ip("10.0.0.5")],
    "metadata.example": [ip("169.254.169.254")],
    "mixed.example": [PUBLIC, ip("127.0.0.1")],  # one bad address is enough to refuse
    "mapped.example": [ip("::ffff:192.168.0.1")],
    "v6-local.example": [ip("fd00::1")],
}


def fake_resolve(host: str, port: int) -> list:
    return FAKE_DNS[host]


REFUSED = [
    # schemes
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/_payload",
    "ftp://example.com/file.txt",
    "data:text/html,<p>hi</p>",
    "javascript:alert(1)",
    "dict://127.0.0.1:11211/stats",
    "//example.com/no-scheme",
    "example.com/no-scheme",
    # loopback in every spelling
    "http://127.0.0.1/",
    "http://127.0.0.1.:8080/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7F.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around 169.254.169.254
    "http://localhost/",
    "http://LOCALHOST./",
    "http://app.localhost:3000/",
    # private, link-local, shared, multicast, reserved
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    # names that resolve to such addresses
    "http://internal.example/",
    "https://metadata.example/latest",
    "http://mixed.example/",
    "http://mapped.example/",
    "http://v6-local.example/",
    # credentials, malformed
    "https://user:pw@example.com/",
    "http://evil.example\\@127.0.0.1/",
    "http://[::1/",
    "http://example.com:99999/",
    "http:///path-only",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_before_any_connection(url, no_network):
    fetcher = Fetcher(resolve=fake_resolve)
    with pytest.raises(FetchRefused) as raised:
        fetcher.fetch(url)
    assert raised.value.status == 422 and raised.value.message


@pytest.mark.parametrize(
    "host,expected",
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0x0A.0.0.1", "10.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
        ("::1", "::1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("0x", "0.0.0.0"),
        ("1e3", None),
    ],
)
def test_every_spelling_of_an_ip_literal_is_read_as_one(host, expected):
    got = literal_address(host)
    assert (str(got) if got is not None else None) == expected


@pytest.mark.parametrize(
    "address,public",
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", False),  # mapped addresses are refused whole
        ("2002:c0a8:0101::1", False),  # 6to4 of 192.168.1.1
        ("2002:0808:0808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo (a documentation client)
        ("64:ff9b::7f00:1", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
    ],
)
def test_only_public_addresses_are_allowed(address, public):
    assert is_public_address(ip(address)) is public


# -- pinning -----------------------------------------------------------------------------------
def test_the_connection_goes_to_the_vetted_address_not_a_second_lookup():
    """DNS rebinding: the name resolves to a public address when checked and would resolve
    to a private one later; the request is sent to the checked address, by IP."""
    answers = [[PUBLIC], [ip("127.0.0.1")]]
    lookups: list[str] = []

    def rebinding_resolve(host: str, port: int) -> list:
        lookups.append(host)
        return answers[len(lookups) - 1]

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/plain"}, content=b"Hello.")

    fetcher = Fetcher(resolve=rebinding_resolve, transport=httpx.MockTransport(handler))
    page = fetcher.fetch("https://rebind.example:8443/a/b?c=d")
    assert lookups == ["rebind.example"]
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34:8443/a/b?c=d"
    assert request.headers["host"] == "rebind.example:8443"
    assert request.extensions["sni_hostname"] == "rebind.example"  # TLS checks the name
    assert page.url == "https://rebind.example:8443/a/b?c=d" and page.body == b"Hello."


def test_a_redirect_is_resolved_and_checked_again():
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list:
        lookups.append(host)
        return [PUBLIC] if host == "public.example" else [ip("10.0.0.7")]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["host"] == "public.example", "the refused hop was requested"
        return httpx.Response(302, headers={"location": "http://rebound.example/x"})

    fetcher = Fetcher(resolve=resolve, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchRefused, match="redirects to a URL that is refused"):
        fetcher.fetch("http://public.example/")
    assert lookups == ["public.example", "rebound.example"]


def test_proxies_from_the_environment_are_ignored(monkeypatch):
    """A proxy would connect on our behalf to whatever name we pass: pinning must not be
    undone by HTTP(S)_PROXY, so the fetch goes straight to the vetted address."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://10.9.9.9:3128")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, headers={"content-type": "text/plain"}, content=b"ok")

    Fetcher(resolve=lambda h, p: [PUBLIC], transport=httpx.MockTransport(handler)).fetch(
        "http://public.example/"
    )
    assert seen == ["http://93.184.216.34/"]


# -- a real local server -------------------------------------------------------------------------
PAGE = (
    b"<html><head><title>Local page</title></head><body><p>The local page text.</p></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        port = self.server.server_address[1]
        routes = {
            "/page.html": lambda: self._send(200, {"Content-Type": "text/html"}, PAGE),
            "/to-loopback": lambda: self._send(302, {"Location": "http://127.0.0.1/admin"}),
            "/to-metadata": lambda: self._send(
                302, {"Location": "http://169.254.169.254/latest/meta-data/"}
            ),
            "/to-page": lambda: self._send(301, {"Location": "/page.html"}),
            "/to-self-absolute": lambda: self._send(
                307, {"Location": f"http://127.0.0.1:{port}/page.html"}
            ),
            "/loop": lambda: self._send(302, {"Location": "/loop"}),
            "/image": lambda: self._send(200, {"Content-Type": "image/png"}, b"\x89PNG"),
            "/missing": lambda: self._send(
                404, {"Content-Type": "text/html"}, b"<p>SECRET-INTERNAL-DETAIL</p>"
            ),
            "/latin1": lambda: self._send(
                200,
                {"Content-Type": "text/plain; charset=iso-8859-1"},
                "Café au lait".encode("latin-1"),
            ),
            "/big-declared": self._big_declared,
            "/big-streamed": self._big_streamed,
            "/drip": self._drip,
            "/hang": self._hang,
        }
        routes.get(self.path, lambda: self._send(404, {}))()

    def _big_declared(self) -> None:
        self._send(200, {"Content-Type": "text/plain", "Content-Length": str(50_000_000)})
        self.server.body_bytes_sent = 0  # type: ignore[attr-defined]

    def _big_streamed(self) -> None:
        # No Content-Length: HTTP/1.0 delimits the body by closing; stops when the client goes.
        self._send(200, {"Content-Type": "text/plain"})
        chunk = b"x" * 16_384
        try:
            for _ in range(3_000):  # 48 MB if nobody stopped reading
                self.wfile.write(chunk)
                self.server.body_bytes_sent += len(chunk)  # type: ignore[attr-defined]
        except OSError:
            pass

    def _drip(self) -> None:
        self._send(200, {"Content-Type": "text/plain"})
        try:
            for _ in range(100):  # one byte every 0.2 s: each read is quick, the whole is not
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def _hang(self) -> None:
        time.sleep(5)
        self._send(200, {"Content-Type": "text/plain"}, b"late")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.body_bytes_sent = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def local(server) -> tuple[str, Fetcher]:
    """(base URL, a Fetcher that allows exactly this server's address and port)."""
    server.seen.clear()
    port = server.server_address[1]

    def only_this_server(address, p: int) -> bool:
        return address == ip("127.0.0.1") and p == port

    return f"http://127.0.0.1:{port}", Fetcher(is_allowed=only_this_server, timeout=5)


def test_the_local_server_is_fetched_when_allowed(local, server):
    base, fetcher = local
    page = fetcher.fetch(f"{base}/page.html")
    assert (page.media_type, page.suffix, page.body) == ("text/html", ".html", PAGE)
    assert server.seen == ["/page.html"]


@pytest.mark.parametrize("path", ["/to-loopback", "/to-metadata"])
def test_a_redirect_to_a_refused_address_is_not_followed(local, server, path):
    base, fetcher = local
    with pytest.raises(FetchRefused, match="redirects to a URL that is refused"):
        fetcher.fetch(base + path)
    assert server.seen == [path]  # the first hop only


@pytest.mark.parametrize("path", ["/to-page", "/to-self-absolute"])
def test_an_allowed_redirect_is_followed(local, server, path):
    base, fetcher = local
    page = fetcher.fetch(base + path)
    assert page.body == PAGE and page.url == f"{base}/page.html"
    assert server.seen == [path, "/page.html"]


def test_at_most_five_redirects(local, server):
    base, fetcher = local
    with pytest.raises(FetchRefused, match="more than 5 times"):
        fetcher.fetch(f"{base}/loop")
    assert server.seen == ["/loop"] * 6


def test_a_declared_oversized_body_is_refused_unread(local):
    base, _ = local
    fetcher = Fetcher(is_allowed=lambda a, p: True, max_bytes=100_000, timeout=5)
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="larger than the limit of 100000 bytes"):
        fetcher.fetch(f"{base}/big-declared")
    assert time.monotonic() - started < 2


def test_a_streamed_body_is_cut_off_at_the_cap(local, server):
    base, _ = local
    fetcher = Fetcher(is_allowed=lambda a, p: True, max_bytes=100_000, timeout=5)
    with pytest.raises(FetchRefused, match="larger than the limit"):
        fetcher.fetch(f"{base}/big-streamed")
    time.sleep(0.3)  # let the server notice the closed connection
    assert server.body_bytes_sent < 10_000_000  # far from the 48 MB it would have sent


@pytest.mark.parametrize("path", ["/drip", "/hang"])
def test_the_whole_fetch_has_one_deadline(local, path):
    base, _ = local
    fetcher = Fetcher(is_allowed=lambda a, p: True, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="within 1 seconds"):
        fetcher.fetch(base + path)
    assert time.monotonic() - started < 2.5


def test_other_content_types_are_refused(local):
    base, fetcher = local
    with pytest.raises(FetchRefused, match="image/png"):
        fetcher.fetch(f"{base}/image")


def test_an_error_status_fails_without_echoing_the_page(local):
    base, fetcher = local
    with pytest.raises(FetchFailed) as raised:
        fetcher.fetch(f"{base}/missing")
    assert raised.value.status == 502 and "404" in raised.value.message
    assert "SECRET" not in raised.value.message


def test_a_declared_charset_is_honoured(local):
    base, fetcher = local
    page = fetcher.fetch(f"{base}/latin1")
    assert page.text_bytes().decode("utf-8") == "Café au lait"


def test_a_closed_port_is_a_fetch_failure(local):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    fetcher = Fetcher(is_allowed=lambda a, p: True, timeout=2)
    with pytest.raises(FetchFailed, match="cannot connect"):
        fetcher.fetch(f"http://127.0.0.1:{port}/")


# -- the operator's allow-list (QA_FETCH_ALLOW) ---------------------------------------------------
# Unlike `local` above, these go through the real default check (`is_public_address`)
# plus an AllowList, exactly as `Fetcher.from_settings` builds it.

# Entries that name other things than the URLs of REFUSED: nothing there may pass.
UNRELATED_ALLOW = ["127.0.0.1:9", "10.9.0.0/16", "feeds.intranet", "[fd00::2]:8443"]


@pytest.mark.parametrize("url", REFUSED)
def test_an_allow_list_for_other_hosts_refuses_all_it_did(url, no_network):
    fetcher = Fetcher(resolve=fake_resolve, allow=AllowList.parse(UNRELATED_ALLOW))
    with pytest.raises(FetchRefused):
        fetcher.fetch(url)


def test_a_named_address_and_port_is_admitted(server):
    port = server.server_address[1]
    server.seen.clear()
    fetcher = Fetcher.from_settings(Settings(fetch_allow=[f"127.0.0.1:{port}"]))
    assert fetcher.fetch(f"http://127.0.0.1:{port}/page.html").body == PAGE
    assert server.seen == ["/page.html"]


def test_the_named_address_on_another_port_is_refused(no_network):
    fetcher = Fetcher(allow=AllowList.parse(["127.0.0.1:8080"]))
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1 is not a public address"):
        fetcher.fetch("http://127.0.0.1:8081/")


@pytest.mark.parametrize(
    "url,admitted",
    [
        ("http://10.0.0.5/feed.xml", True),  # in the named range
        ("http://10.0.0.5:8443/feed.xml", True),
        ("http://10.1.0.5/feed.xml", False),  # private, not named
        ("http://192.168.0.1/", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("http://internal.example/feed.xml", True),  # a name that resolves into the range
        ("http://feeds.intranet/rss", True),  # named host: whatever it resolves to
        ("http://feeds.intranet:8080/rss", False),  # named with another port
        ("http://mapped.example/", False),  # ::ffff:192.168.0.1, not named
        ("http://localhost/", False),
    ],
)
def test_the_allow_list_admits_only_what_it_names(url, admitted, no_network):
    dns = {**FAKE_DNS, "feeds.intranet": [ip("172.16.4.4")]}
    fetcher = Fetcher(
        resolve=lambda host, port: dns[host],
        allow=AllowList.parse(["10.0.0.0/24", "feeds.intranet:80"]),
    )
    if admitted:
        assert fetcher.vet(url).pinned.host in {"10.0.0.5", "172.16.4.4"}
    else:
        with pytest.raises(FetchRefused):
            fetcher.vet(url)


@pytest.mark.parametrize("path", ["/to-loopback", "/to-metadata"])
def test_an_allowed_server_cannot_redirect_to_an_unnamed_private_address(server, path):
    port = server.server_address[1]
    server.seen.clear()
    fetcher = Fetcher(allow=AllowList.parse([f"127.0.0.1:{port}"]))
    with pytest.raises(FetchRefused, match="redirects to a URL that is refused"):
        fetcher.fetch(f"http://127.0.0.1:{port}{path}")
    assert server.seen == [path]


@pytest.mark.parametrize("entry", ["", "127.1", "0x7f000001", "10.0.0.0/33", "host:port", "a b"])
def test_a_malformed_allow_entry_is_refused(entry):
    with pytest.raises(ValueError, match="is not a host, address or range"):
        AllowList.parse([entry])
