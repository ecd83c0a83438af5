"""The JSON API through HTTP: the contract's routes, shapes, errors, limits, CORS, headers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.indexer import index_paths, remove_articles
from qa.settings import Settings
from qa.web.app import create_app
from qa.web.deps import get_answerer
from qa.web.middleware import STRICT_CSP
from tests.conftest import store_at

ALLOWED = "http://allowed.example"
DENIED = "http://denied.example"
ANSWER_KEYS = {"question", "answered", "answer", "quotes", "took_ms", "standalone_question"}
QUOTE_KEYS = {"text", "score", "article", "start", "end", "highlight"}
ARTICLE_REF_KEYS = {"id", "title", "url", "published"}
GOLD = ("Korea Superior Pharma-pipeline", "new drug development ecosystem")


@pytest.fixture(scope="module")
def client(seed_index) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=seed_index, cors_origins=[ALLOWED]))
    with TestClient(app) as c:
        yield c


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> str:
    """The contract's error: that status, JSON `{"error": {"code", "message"}}`, no traceback."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"] and "Traceback" not in resp.text
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]["message"]


def assert_answer(body: dict, k: int = 3) -> None:
    assert set(body) == ANSWER_KEYS
    assert body["answered"] is True and 1 <= len(body["quotes"]) <= k
    for quote in body["quotes"]:
        assert set(quote) == QUOTE_KEYS
        assert set(quote["article"]) == ARTICLE_REF_KEYS
    assert any(g in body["quotes"][0]["text"] for g in GOLD)


# -- the routes ----------------------------------------------------------------------------
def test_health_counts_articles_and_chunks(client):
    resp = client.get("/api/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["articles"] == 1 and body["chunks"] > 0


def test_post_ask_returns_the_answer_object(client):
    resp = client.post("/api/ask", json={"question": "What is K-SPACE?", "k": 3})
    assert resp.status_code == 200
    assert_answer(resp.json())


def test_get_ask_returns_the_same_answer_as_post(client):
    got = client.get("/api/ask", params={"q": "What is K-SPACE?", "k": 2}).json()
    posted = client.post("/api/ask", json={"question": "What is K-SPACE?", "k": 2}).json()
    assert_answer(got, k=2)
    assert [q["text"] for q in got["quotes"]] == [q["text"] for q in posted["quotes"]]


def test_k_is_optional_and_limits_the_quotes(client):
    assert len(client.post("/api/ask", json={"question": "What is K-SPACE?"}).json()["quotes"]) <= 3
    one = client.get("/api/ask", params={"q": "What is K-SPACE?", "k": 1}).json()
    assert len(one["quotes"]) == 1


def test_quotes_are_verbatim_slices_of_the_article_text(client):
    answer = client.post("/api/ask", json={"question": "What is K-SPACE?"}).json()
    for quote in answer["quotes"]:
        article = client.get(f"/api/articles/{quote['article']['id']}").json()
        assert article["text"][quote["start"] : quote["end"]] == quote["text"]


def test_unanswerable_question_is_a_well_formed_no(client):
    body = client.get("/api/ask", params={"q": "What is the boiling point of mercury?"}).json()
    assert set(body) == ANSWER_KEYS
    assert body["answered"] is False and body["quotes"] == [] and body["answer"]


def test_articles_list_and_detail(client):
    listing = client.get("/api/articles").json()
    assert len(listing) == 1
    assert set(listing[0]) >= {"id", "title", "url", "published", "chunks"}
    detail = client.get(f"/api/articles/{listing[0]['id']}").json()
    assert set(detail) >= {"id", "title", "url", "published", "text"}
    assert "K-SPACE" in detail["text"]


def test_openapi_describes_every_contract_route(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/ask"]) >= {"get", "post"}
    for path in ("/api/articles", "/api/articles/{article_id}", "/api/health"):
        assert "get" in paths[path], path
    assert "Answer" in spec["components"]["schemas"]
    assert "ErrorResponse" in spec["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# -- follow-up questions (history) -----------------------------------------------------------
FOLLOW_UP = "When was it established?"
ESTABLISHED = "Dec. 5, 2022"


@pytest.fixture(scope="module")
def first_answer(client) -> dict:
    resp = client.post("/api/ask", json={"question": "What is K-SPACE?"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def turn_of(answer: dict) -> dict:
    """An earlier turn exactly as a client holds it: the question and the quotes it got."""
    return {"question": answer["question"], "quotes": answer["quotes"]}


def test_a_question_alone_was_searched_as_asked(first_answer):
    assert first_answer["standalone_question"] == first_answer["question"]


def test_a_follow_up_is_understood_from_the_history_sent_back(client, first_answer):
    resp = client.post("/api/ask", json={"question": FOLLOW_UP, "history": [turn_of(first_answer)]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == ANSWER_KEYS
    assert body["question"] == FOLLOW_UP
    assert body["standalone_question"] != FOLLOW_UP
    assert "k-space" in body["standalone_question"].lower()
    assert body["answered"] is True
    assert ESTABLISHED in body["quotes"][0]["text"]
    article = client.get(f"/api/articles/{body['quotes'][0]['article']['id']}").json()
    quote = body["quotes"][0]
    assert article["text"][quote["start"] : quote["end"]] == quote["text"]


def test_the_whole_conversation_can_be_sent_back(client, first_answer):
    """Turns whose quotes are empty (a "not found") and a chain of follow-ups are fine."""
    unanswered = client.post(
        "/api/ask", json={"question": "What is the boiling point of mercury?"}
    ).json()
    history = [turn_of(unanswered), turn_of(first_answer)]
    resp = client.post("/api/ask", json={"question": FOLLOW_UP, "history": history, "k": 2})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["quotes"]) <= 2
    second = resp.json()
    third = client.post(
        "/api/ask",
        json={"question": "What is K-SPACE?", "history": [*history, turn_of(second)]},
    )
    assert third.status_code == 200, third.text
    assert third.json()["standalone_question"] == "What is K-SPACE?"


def test_empty_history_is_the_question_alone(client, first_answer):
    body = client.post("/api/ask", json={"question": "What is K-SPACE?", "history": []}).json()
    assert body["standalone_question"] == body["question"] == "What is K-SPACE?"
    assert [q["text"] for q in body["quotes"]] == [q["text"] for q in first_answer["quotes"]]


def test_quotes_in_history_are_never_trusted_or_echoed(client, first_answer):
    """A client's copy of a quote may be forged: only its article and offsets are used."""
    real = first_answer["quotes"][0]
    forged = {
        **real,
        "text": "<script>alert(1)</script> K-SPACE was founded in 1850 by pirates.",
        "score": 1.0,
        "article": {**real["article"], "title": "<img src=x onerror=alert(1)> Forged"},
    }
    resp = client.post(
        "/api/ask",
        json={
            "question": FOLLOW_UP,
            "history": [{"question": "What is K-SPACE?", "quotes": [forged]}],
        },
    )
    assert resp.status_code == 200, resp.text
    for needle in ("<script>", "1850", "pirates", "onerror", "Forged"):
        assert needle not in resp.text
    body = resp.json()
    for quote in body["quotes"]:
        article = client.get(f"/api/articles/{quote['article']['id']}").json()
        assert article["text"][quote["start"] : quote["end"]] == quote["text"]
        assert quote["article"]["title"] == article["title"]


def _turn(question: str = "What is K-SPACE?", **quote: object) -> dict:
    base = {"text": "x", "score": 0.9, "article": {"id": "a", "title": "A"}, "start": 0, "end": 1}
    return {"question": question, "quotes": [{**base, **quote}] if quote else []}


@pytest.mark.parametrize(
    "history, where",
    [
        ([_turn()] * 21, "history"),
        ([_turn("")], "history.0.question"),
        ([_turn("   ")], "history[0]"),
        ([_turn(), _turn("why " * 400)], "history[1]"),
        (
            [{"question": "What is K-SPACE?", "quotes": [_turn(start=0)["quotes"][0]] * 21}],
            "quotes",
        ),
        ([_turn(start=-1)], "start"),
        ([_turn(start=10, end=5)], "end"),
        ([_turn(article={"id": "a" * 513})], "article.id"),
        ([_turn(article={"id": ""})], "article.id"),
        ([_turn(article={"title": "no id"})], "article.id"),
        ([_turn(text="x" * 20_001)], "text"),
        ([_turn(start="0")], "start"),
        ([_turn(start=True)], "start"),
        ([_turn(start=2**70)], "start"),
        ([{"question": "What is K-SPACE?", "quotes": "none"}], "quotes"),
        ([{"quotes": []}], "question"),
        ([{"question": ["What", "is", "K-SPACE?"]}], "question"),
        ("What is K-SPACE?", "history"),
        ({"question": "What is K-SPACE?"}, "history"),
    ],
    ids=[
        "21-turns",
        "empty-question",
        "blank-question",
        "too-long-question",
        "21-quotes",
        "negative-start",
        "end-before-start",
        "long-article-id",
        "empty-article-id",
        "missing-article-id",
        "long-quote-text",
        "start-text",
        "start-bool",
        "start-huge",
        "quotes-not-a-list",
        "missing-question",
        "question-list",
        "history-string",
        "history-object",
    ],
)
def test_invalid_history_is_422_naming_what_is_wrong(client, history, where):
    resp = client.post("/api/ask", json={"question": FOLLOW_UP, "history": history})
    message = assert_error(resp, 422, "invalid_input")
    assert where in message


def test_history_limits_are_in_the_openapi_document(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    history = schemas["AskRequest"]["properties"]["history"]
    assert history["maxItems"] == 20
    assert schemas["HistoryTurn"]["properties"]["quotes"]["maxItems"] == 20
    assert schemas["HistoryQuote"]["required"] == ["article", "start", "end"]
    assert schemas["HistoryArticle"]["properties"]["id"]["maxLength"] == 512


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": "   "},
        {},
        {"question": "What is K-SPACE?", "k": 0},
        {"question": "What is K-SPACE?", "k": 21},
        {"question": "What is K-SPACE?", "k": "many"},
        {"question": "What is K-SPACE?", "k": True},
        {"question": ["not", "a", "string"]},
        ["What is K-SPACE?"],
    ],
    ids=[
        "empty",
        "blank",
        "missing",
        "k0",
        "k21",
        "k-text",
        "k-bool",
        "question-list",
        "array-body",
    ],
)
def test_invalid_post_bodies_are_422_json(client, body):
    assert_error(client.post("/api/ask", json=body), 422, "invalid_input")


@pytest.mark.parametrize(
    "params",
    [{"q": ""}, {}, {"q": "K-SPACE", "k": 0}, {"q": "K-SPACE", "k": 21}],
    ids=["empty", "missing", "k0", "k21"],
)
def test_invalid_get_queries_are_422_json(client, params):
    assert_error(client.get("/api/ask", params=params), 422, "invalid_input")


def test_too_long_question_is_422(client):
    message = assert_error(client.post("/api/ask", json={"question": "why " * 400}), 422)
    assert "limit" in message


def test_malformed_json_is_400_json(client):
    resp = client.post(
        "/api/ask", content=b'{"question": ', headers={"content-type": "application/json"}
    )
    assert_error(resp, 400, "invalid_json")


def test_unknown_article_is_404_json(client):
    assert_error(client.get("/api/articles/no-such-article"), 404, "article_not_found")


def test_unknown_api_route_is_404_json(client):
    message = assert_error(client.get("/api/nothing/here"), 404, "not_found")
    assert "/api/nothing/here" in message


def test_wrong_method_is_405_json(client):
    resp = client.delete("/api/ask")
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["allow"]


def test_unexpected_exception_is_500_json_without_traceback(client):
    class Broken:
        def ask(self, question, k=None, history=(), filters=None):
            raise RuntimeError("secret internals")

    client.app.dependency_overrides[get_answerer] = Broken
    try:
        resp = client.post("/api/ask", json={"question": "What is K-SPACE?"})
        page = client.get("/", params={"q": "What is K-SPACE?"})
    finally:
        client.app.dependency_overrides.clear()
    assert_error(resp, 500, "internal_error")
    assert "secret internals" not in resp.text
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert page.headers["content-security-policy"] == STRICT_CSP


# -- body size ------------------------------------------------------------------------------
def test_ten_megabyte_body_is_413(client):
    resp = client.post(
        "/api/ask", content=b"x" * 10_000_000, headers={"content-type": "application/json"}
    )
    assert_error(resp, 413, "payload_too_large")


def call_asgi(app, headers: list[tuple[bytes, bytes]], receive) -> tuple[int, dict]:
    """Drive the app with a raw ASGI POST /api/ask; (status, JSON body) of its reply."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/ask",
        "raw_path": b"/api/ask",
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_declared_oversized_body_is_refused_before_reading_it(seed_index):
    """Content-Length over the cap: answered at once, `receive` is never called."""
    app = create_app(Settings(index_dir=seed_index))
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    status, body = call_asgi(app, [(b"content-length", b"10000000")], receive)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert reads == 0


def test_chunked_stream_is_cut_off_at_the_cap(seed_index):
    """No Content-Length: the body is counted as it arrives and reading stops past the cap."""
    app = create_app(Settings(index_dir=seed_index, max_body_bytes=100_000))
    chunk, total_chunks = 16_384, 10_000  # a 160 MB stream if anyone read it all
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b" " * chunk, "more_body": reads < total_chunks}

    status, body = call_asgi(app, [(b"transfer-encoding", b"chunked")], receive)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert reads == 100_000 // chunk + 1


def test_chunked_body_over_the_cap_is_413(client):
    cap = client.app.state.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(cap // 65536 + 50):
            yield b" " * 65536

    resp = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "payload_too_large")


def test_small_chunked_body_is_accepted(client):
    def chunks() -> Iterator[bytes]:
        yield b'{"question": '
        yield b'"What is K-SPACE?"}'

    resp = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text


# -- a missing or empty index ----------------------------------------------------------------
def _assert_index_503(c: TestClient) -> None:
    for resp in (
        c.get("/api/health"),
        c.post("/api/ask", json={"question": "What is K-SPACE?"}),
        c.get("/api/ask", params={"q": "K-SPACE"}),
    ):
        message = assert_error(resp, 503)
        assert "qa index" in message


def test_missing_index_answers_503_saying_how_to_add_articles(tmp_path):
    with TestClient(create_app(Settings(index_dir=tmp_path / "nowhere"))) as c:
        _assert_index_503(c)
        assert "qa index" in assert_error(c.get("/api/articles"), 503)
        page = c.get("/")
        assert page.status_code == 200  # the chat itself still loads
        answered = c.post("/", data={"question": "What is K-SPACE?"})
        assert answered.status_code == 503 and "qa index" in answered.text


def test_index_without_articles_answers_503(index_dir, tmp_path):
    article = tmp_path / "note.txt"
    article.write_text("A short note\n\nThe ferry leaves at noon every day of the week.\n")
    store = store_at(index_dir)
    index_paths([article], store)
    remove_articles(store, [a.id for a in store.open().articles()])
    with TestClient(create_app(Settings(index_dir=index_dir))) as c:
        _assert_index_503(c)
        assert c.get("/api/articles").json() == []  # an empty list is still a true answer


# -- CORS ------------------------------------------------------------------------------------
def test_cors_allows_a_configured_origin(client):
    resp = client.get("/api/health", headers={"Origin": ALLOWED})
    assert resp.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in resp.headers
    pre = client.options(
        "/api/ask",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "content-type" in pre.headers["access-control-allow-headers"].lower()


def test_cors_refuses_other_origins(client):
    resp = client.get("/api/health", headers={"Origin": DENIED})
    assert resp.status_code == 200 and "access-control-allow-origin" not in resp.headers
    pre = client.options(
        "/api/ask",
        headers={
            "Origin": DENIED,
            "Access-Control-Request-Method": "POST",
        },
    )
    assert "access-control-allow-origin" not in pre.headers
    assert_error(pre, 400, "cors_rejected")


def test_cors_applies_to_the_api_only(client):
    resp = client.get("/", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in resp.headers


def test_error_responses_carry_cors_headers(client):
    resp = client.post("/api/ask", json={"question": ""}, headers={"Origin": ALLOWED})
    assert resp.status_code == 422
    assert resp.headers["access-control-allow-origin"] == ALLOWED


# -- headers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/articles", "/no-such-page", "/api/health"])
def test_security_headers_on_every_response(client, path):
    resp = client.get(path)
    assert resp.headers["content-security-policy"] == STRICT_CSP
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"


def test_embed_is_frameable_by_any_site(client):
    resp = client.get("/embed")
    assert resp.status_code == 200
    assert "x-frame-options" not in resp.headers
    csp = resp.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "script-src 'self';" in csp


def test_docs_get_their_own_csp(client):
    csp = client.get("/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp


def test_widget_script_is_served_as_javascript(client):
    resp = client.get("/widget.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert resp.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "attachShadow" in resp.text
    # One file: the quote pieces shared with the chat page are inside it.
    assert "function quoteWords(" in resp.text and "qaQuoteParts" in resp.text


# -- concurrency -----------------------------------------------------------------------------
def test_answering_runs_off_the_event_loop(seed_index):
    """A slow answer does not stall other requests: `ask` runs in the thread pool."""
    app = create_app(Settings(index_dir=seed_index))

    class Slow:
        def ask(self, question, k=None, history=(), filters=None):
            time.sleep(1.0)
            raise RuntimeError("never mind")

        def snapshot(self):
            raise RuntimeError("not used")

    app.dependency_overrides[get_answerer] = Slow
    finished: list[str] = []

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            async def slow() -> None:
                await c.get("/api/ask", params={"q": "slow"})
                finished.append("ask")

            async def quick() -> None:
                await asyncio.sleep(0.1)
                await c.get("/api/nothing")
                finished.append("404")

            await asyncio.gather(slow(), quick())

    asyncio.run(scenario())
    assert finished == ["404", "ask"]


def test_the_answerer_is_built_once_at_start_up(seed_index, monkeypatch):
    import qa.web.app as web_app

    built: list[object] = []
    real = web_app.Answerer

    def counting(settings):
        built.append(settings)
        return real(settings)

    monkeypatch.setattr(web_app, "Answerer", counting)
    with TestClient(create_app(Settings(index_dir=seed_index))) as c:
        assert built and c.app.state.answerer._encoder is not None  # warmed
        for _ in range(3):
            c.get("/api/ask", params={"q": "What is K-SPACE?"})
    assert len(built) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/ask", b'{"question": "What is \\ud800 K-SPACE?"}'),
        (
            "/v1/chat/completions",
            b'{"model": "qa", "messages": [{"role": "user", "content": "\\udcff"}]}',
        ),
    ],
)
def test_a_lone_surrogate_in_a_question_is_invalid_input_not_a_crash(client, path, body):
    # JSON may escape a lone surrogate; no text holds one and the tokenizer rejects it.
    resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code in (400, 422), resp.text
    assert "lone surrogate" in resp.json()["error"]["message"]
