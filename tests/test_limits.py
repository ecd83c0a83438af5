"""Load limits: body caps (questions and uploads), question length and k, the per-client
rate limit (429) and the cap on questions answered at once (503)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.answering import NOT_FOUND
from qa.errors import IndexMissing
from qa.models import Answer
from qa.settings import Settings
from qa.web.app import create_app
from qa.web.deps import get_answerer
from qa.web.limits import TokenBuckets
from tests.conftest import copy_index

from .test_api import assert_error

KEY = "limits-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def raw_request(
    app, method: str, path: str, headers: list[tuple[bytes, bytes]], receive, client_ip: str
) -> int:
    """Drive the app with one raw ASGI request; the status it answers."""
    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": (client_ip, 1234),
        "headers": [(b"host", b"testserver"), *headers],
    }
    asyncio.run(app(scope, receive, send))
    return messages[0]["status"]


async def no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


# -- bodies ------------------------------------------------------------------------------------
@pytest.fixture
def small_caps(seed_index, tmp_path) -> Iterator[TestClient]:
    """Questions capped at 2 KB, uploads at 100 KB, on a copy of the seed index."""
    index = tmp_path / "index"
    copy_index(seed_index, index)
    settings = Settings(index_dir=index, api_key=KEY, max_body_bytes=2048, max_upload_bytes=100_000)
    with TestClient(create_app(settings)) as c:
        yield c


def chunks_of(total: int, size: int = 8192) -> Iterator[bytes]:
    for _ in range(total // size + 1):
        yield b" " * size


def test_a_declared_ten_megabyte_body_is_413_everywhere(small_caps):
    big = b"x" * 10_000_000
    for path, headers in (("/api/ask", {}), ("/api/articles", AUTH)):
        resp = small_caps.post(
            path, content=big, headers={**headers, "content-type": "application/json"}
        )
        assert_error(resp, 413, "payload_too_large")


def test_a_chunked_body_over_the_cap_is_413(small_caps):
    ask = small_caps.post(
        "/api/ask", content=chunks_of(10_000), headers={"content-type": "application/json"}
    )
    assert "2048 bytes" in assert_error(ask, 413, "payload_too_large")
    upload = small_caps.post(
        "/api/articles",
        content=chunks_of(200_000),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert "100000 bytes" in assert_error(upload, 413, "payload_too_large")


def test_uploads_may_be_larger_than_questions(small_caps):
    text = "The tide tables for the estuary were revised this spring. " * 60  # ~3.5 KB
    resp = small_caps.post(
        "/api/articles", files={"file": ("tides.txt", text.encode())}, headers=AUTH
    )
    assert resp.status_code == 201, resp.text
    question = small_caps.post("/api/ask", json={"question": "tides", "padding": text})
    assert_error(question, 413, "payload_too_large")  # the larger cap is the upload route's


def test_the_upload_cap_is_checked_before_the_key(seed_index):
    """An oversized body is refused unread even from a caller without the key."""
    app = create_app(Settings(index_dir=seed_index, api_key=KEY, max_upload_bytes=10_000))
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 4096, "more_body": True}

    headers = [(b"content-length", b"50000"), (b"content-type", b"application/json")]
    status = raw_request(app, "POST", "/api/articles", headers, receive, "10.0.0.1")
    assert (status, reads) == (413, 0)


# -- questions ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(seed_index) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=seed_index, max_question_chars=50))) as c:
        yield c


def test_question_length_is_capped_by_the_setting(client):
    assert client.get("/api/ask", params={"q": "K-SPACE " * 5}).status_code == 200
    message = assert_error(client.get("/api/ask", params={"q": "x" * 51}), 422, "invalid_input")
    assert "limit is 50" in message


@pytest.mark.parametrize("k", [0, -1, 21, 10_000])
def test_k_out_of_bounds_is_422(client, k):
    assert_error(client.get("/api/ask", params={"q": "K-SPACE", "k": k}), 422, "invalid_input")
    assert_error(client.post("/api/ask", json={"question": "K-SPACE", "k": k}), 422)


# -- rate limit --------------------------------------------------------------------------------
def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    buckets = TokenBuckets(per_minute=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)  # one token every 20 s
    assert buckets.take("b") == 0.0  # another client has its own bucket
    now[0] = 20.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_over_the_rate_an_api_client_gets_429_with_retry_after(seed_index):
    with TestClient(create_app(Settings(index_dir=seed_index, rate_limit_per_minute=3))) as c:
        assert [c.get("/api/health").status_code for _ in range(3)] == [200, 200, 200]
        resp = c.get("/api/health")
        assert "a minute" in assert_error(resp, 429, "rate_limited")
        assert 1 <= int(resp.headers["retry-after"]) <= 20
        assert c.get("/articles").status_code == 200  # pages are not rate-limited
        other = raw_request(c.app, "GET", "/api/health", [], no_body, "10.1.2.3")
        assert other == 200  # another client has its own bucket


def test_a_zero_rate_disables_the_limit(seed_index):
    with TestClient(create_app(Settings(index_dir=seed_index, rate_limit_per_minute=0))) as c:
        assert {c.get("/api/health").status_code for _ in range(200)} == {200}


# -- answering slots ---------------------------------------------------------------------------
class SlowAnswerer:
    """Stands in for the Answerer: a real slow query cannot be produced on demand, and the
    slot logic only needs `ask` to take a known time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def ask(
        self, question: str, k: int | None = None, history: object = (), filters: object = None
    ) -> Answer:
        time.sleep(self.seconds)
        return Answer(question=question, answered=False, answer=NOT_FOUND, quotes=[], took_ms=1.0)

    def snapshot(self):
        raise IndexMissing("a stand-in has no index")  # the page's filter lists no source


async def _concurrent_asks(app, n: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await asyncio.gather(
            *(c.get("/api/ask", params={"q": f"question {i}"}) for i in range(n))
        )


def test_when_every_slot_stays_busy_the_next_question_gets_503(seed_index):
    settings = Settings(index_dir=seed_index, max_concurrent=1, queue_timeout=0.2)
    app = create_app(settings)
    app.dependency_overrides[get_answerer] = lambda: SlowAnswerer(1.0)
    responses = asyncio.run(_concurrent_asks(app, 2))
    assert sorted(r.status_code for r in responses) == [200, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert_error(busy, 503, "server_busy")
    assert int(busy.headers["retry-after"]) >= 1


def test_a_short_wait_for_a_slot_is_not_an_error(seed_index):
    settings = Settings(index_dir=seed_index, max_concurrent=1, queue_timeout=2.0)
    app = create_app(settings)
    app.dependency_overrides[get_answerer] = lambda: SlowAnswerer(0.3)
    started = time.monotonic()
    responses = asyncio.run(_concurrent_asks(app, 3))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert time.monotonic() - started >= 0.85  # one at a time: they really queued


def test_the_chat_page_shares_the_slots(seed_index):
    settings = Settings(index_dir=seed_index, max_concurrent=1, queue_timeout=0.1)
    app = create_app(settings)
    app.dependency_overrides[get_answerer] = lambda: SlowAnswerer(1.0)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(
                c.get("/api/ask", params={"q": "first"}), c.get("/", params={"q": "second"})
            )

    api, page = asyncio.run(scenario())
    assert api.status_code == 200
    assert page.status_code == 503 and "busy" in page.text
