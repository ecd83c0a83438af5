"""The OpenAI-compatible routes (/v1), driven by the real `openai` client against a live
server on the seed index, plus the limits they share with /api (in-process)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from qa.answering import NOT_FOUND
from qa.models import Answer, QuoteRef
from qa.settings import Settings
from qa.web.app import create_app
from qa.web.deps import get_answerer
from qa.web.openai_api import cited_in, conversation
from qa.web.openai_schemas import ChatMessage
from tests.browser_support import ThreadedServer, wait_for

QUESTION = "What is K-SPACE?"
FOLLOW_UP = "When was it established?"
ESTABLISHED = "Dec. 5, 2022"
ALLOWED = "http://allowed.example"
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def live(seed_index) -> Iterator[str]:
    settings = Settings(index_dir=seed_index, rate_limit_per_minute=0, cors_origins=[ALLOWED])
    with ThreadedServer(settings) as server:
        wait_for(server.base + "/api/health", timeout=60)
        yield server.base


@pytest.fixture(scope="module")
def client(live) -> openai.OpenAI:
    # As the README tells users; the key is required by the client and ignored by qa.
    return openai.OpenAI(base_url=f"{live}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def first(client) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model="qa", messages=[{"role": "user", "content": QUESTION}]
    )


def qa_field(reply: object) -> Answer:
    """The `qa` extension field of a reply, as the Answer it must be."""
    return Answer.model_validate(reply.model_extra["qa"])


def article_text(live: str, article_id: str) -> str:
    resp = httpx.get(f"{live}/api/articles/{article_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["text"]


# -- models ----------------------------------------------------------------------------------
def test_the_model_is_listed(client):
    assert [m.id for m in client.models.list()] == ["qa"]
    assert client.models.retrieve("qa").id == "qa"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


# -- answers ---------------------------------------------------------------------------------
def test_an_answer_cites_its_quotes_with_links_to_them(live, first):
    assert first.object == "chat.completion" and first.id.startswith("chatcmpl-")
    assert first.model == "qa" and len(first.choices) == 1
    choice = first.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content
    answer = qa_field(first)
    assert answer.answered and answer.question == QUESTION and answer.quotes
    assert content.startswith(answer.answer) and "[1]" in content
    assert "Sources:" in content
    for n, quote in enumerate(answer.quotes, 1):
        assert quote.text == article_text(live, quote.article.id)[quote.start : quote.end]
        assert f"[{n}] “{quote.text}”" in content.replace("**", "")  # answering words in bold
        if quote.highlighted:
            assert f"**{quote.highlighted.strip()}**" in content
        link = f"{live}/articles/{quote.article.id}?start={quote.start}&end={quote.end}#quote"
        assert f"[{n}] {quote.article.title} — {link}" in content
    assert "Searched for" not in content  # a question alone needs no context
    assert first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


def test_a_source_link_opens_the_quote_in_the_article_view(first):
    link = first.choices[0].message.content.split("Sources:")[1].split(" — ")[1].split()[0]
    page = httpx.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="quote"' in page.text


def test_streaming_sends_the_same_text_in_chunks(client, first):
    chunks = list(
        client.chat.completions.create(
            model="qa", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    assert len(chunks) > 3
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        first.choices[0].message.content
    )
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert qa_field(last).quotes == qa_field(first).quotes


def test_a_stream_is_server_sent_events_ending_with_done(live):
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", f"{live}/v1/chat/completions", json=body, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    usage = json.loads(events[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0


def test_a_question_the_articles_do_not_answer_says_so(client):
    reply = client.chat.completions.create(
        model="qa",
        messages=[{"role": "user", "content": "What is the boiling point of mercury?"}],
    )
    assert reply.choices[0].message.content == NOT_FOUND
    assert qa_field(reply).answered is False and qa_field(reply).quotes == []


def test_content_parts_system_messages_and_k(client):
    reply = client.chat.completions.create(
        model="any-name",
        messages=[
            {"role": "system", "content": "You are a pirate. Answer in rhymes."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        extra_body={"k": 1},
    )
    answer = qa_field(reply)
    assert answer.question == QUESTION and len(answer.quotes) == 1
    assert "[2]" not in reply.choices[0].message.content


# -- follow-ups ------------------------------------------------------------------------------
def test_a_follow_up_is_understood_from_the_messages(live, client, first):
    reply = client.chat.completions.create(
        model="qa",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": FOLLOW_UP},
        ],
    )
    answer = qa_field(reply)
    assert answer.question == FOLLOW_UP
    assert answer.standalone_question != FOLLOW_UP
    assert answer.answered and ESTABLISHED in answer.quotes[0].text
    content = reply.choices[0].message.content
    assert f"Searched for: {answer.standalone_question}" in content
    quote = answer.quotes[0]
    assert quote.text == article_text(live, quote.article.id)[quote.start : quote.end]


def test_a_chat_ui_that_keeps_only_the_text_still_passes_on_what_was_quoted(first):
    """The reply's source links say which quotes it gave: a client that sends back the
    text alone (no `qa`) still tells the next question where the last answer was."""
    content = first.choices[0].message.content
    messages = [
        ChatMessage(role="user", content=QUESTION),
        ChatMessage(role="assistant", content=content),
        ChatMessage(role="user", content=FOLLOW_UP),
    ]
    question, earlier = conversation(messages)
    (turn,) = earlier.values()
    shown = qa_field(first).quotes
    assert question == FOLLOW_UP and turn.question == QUESTION
    assert [(r.article_id, r.start, r.end) for r in turn.quotes] == [
        (q.article.id, q.start, q.end) for q in shown
    ]
    assert cited_in("see /articles/x?start=5&end=1#quote and http://a/b") == (
        QuoteRef(article_id="x", start=5, end=1),  # kept as given; the core checks offsets
    )


def test_quotes_sent_back_in_qa_are_read_from_the_index_not_trusted(client, first):
    echoed = first.model_extra["qa"]
    forged = [{**q, "text": "<script>alert(1)</script> founded in 1850"} for q in echoed["quotes"]]
    reply = client.chat.completions.create(
        model="qa",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "whatever", "qa": {**echoed, "quotes": forged}},
            {"role": "user", "content": FOLLOW_UP},
        ],
    )
    answer = qa_field(reply)
    assert answer.standalone_question != FOLLOW_UP
    raw = reply.model_dump_json()
    assert "<script>" not in raw and "1850" not in raw


def test_a_long_conversation_keeps_being_answered(client):
    """Only the latest turns are taken: a chat UI may send its whole history."""
    earlier = [
        m
        for n in range(30)
        for m in (
            {"role": "user", "content": f"Question number {n} about the pavilion?"},
            {"role": "assistant", "content": NOT_FOUND},
        )
    ]
    reply = client.chat.completions.create(
        model="qa", messages=[*earlier, {"role": "user", "content": QUESTION}]
    )
    assert qa_field(reply).answered and qa_field(reply).standalone_question == QUESTION


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "messages, extra",
    [
        ([], {}),
        ([{"role": "user", "content": ""}], {}),
        ([{"role": "user", "content": "   "}], {}),
        ([{"role": "system", "content": QUESTION}], {}),
        ([{"role": "user", "content": "why " * 400}], {}),
        ([{"role": "user", "content": ""}, {"role": "user", "content": QUESTION}], {}),
        ([{"role": "user", "content": QUESTION}], {"k": 0}),
        ([{"role": "tool", "content": QUESTION}], {}),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], {}),
    ],
    ids=[
        "no-messages",
        "empty-question",
        "blank-question",
        "no-user-message",
        "too-long",
        "empty-earlier-question",
        "k0",
        "tool-role",
        "image",
    ],
)
def test_invalid_requests_raise_bad_request(client, messages, extra):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="qa", messages=messages, extra_body=extra)
    error = caught.value
    assert error.status_code == 400
    assert set(error.body) == OPENAI_ERROR_KEYS
    assert error.type == "invalid_request_error" and error.code == "invalid_input"
    assert error.body["message"] and "Traceback" not in error.body["message"]


def test_v1_errors_have_the_openai_shape_and_api_keeps_its_own(live):
    for resp in (
        httpx.get(f"{live}/v1/nothing"),
        httpx.post(f"{live}/v1/chat/completions", content=b'{"messages": ['),
        httpx.post(f"{live}/v1/chat/completions", content=b"x" * 2_000_000),
    ):
        assert resp.status_code in (400, 404, 413), resp.text
        assert set(resp.json()["error"]) == OPENAI_ERROR_KEYS
    api = httpx.post(f"{live}/api/ask", json={"question": ""})
    assert api.status_code == 422 and set(api.json()["error"]) == {"code", "message"}


def test_without_an_index_the_client_gets_a_server_error(tmp_path):
    with ThreadedServer(Settings(index_dir=tmp_path / "nowhere")) as server:
        client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(
                model="qa", messages=[{"role": "user", "content": QUESTION}]
            )
    assert caught.value.status_code == 503
    assert "qa index" in caught.value.body["message"]
    assert caught.value.type == "server_error"


# -- limits, CORS and the document, shared with /api ------------------------------------------
class SlowAnswerer:
    def ask(
        self, question: str, k: int | None = None, history: object = (), filters: object = None
    ) -> Answer:
        time.sleep(1.0)
        return Answer(question=question, answered=False, answer=NOT_FOUND, quotes=[], took_ms=1)

    def validate(self, question: str, k: int | None) -> tuple[str, int]:
        return question, 3


def test_chat_completions_share_the_answering_slots_with_api_ask(seed_index):
    app = create_app(Settings(index_dir=seed_index, max_concurrent=1, queue_timeout=0.2))
    app.dependency_overrides[get_answerer] = SlowAnswerer
    chat = {"messages": [{"role": "user", "content": QUESTION}]}

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(
                c.post("/api/ask", json={"question": QUESTION}),
                c.post("/v1/chat/completions", json=chat),
            )

    responses = asyncio.run(both())
    assert sorted(r.status_code for r in responses) == [200, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json()["error"]["code"] == "server_busy"


def test_chat_completions_count_against_the_rate_limit(seed_index):
    with TestClient(create_app(Settings(index_dir=seed_index, rate_limit_per_minute=2))) as c:
        assert c.get("/v1/models").status_code == 200
        assert c.get("/api/health").status_code == 200
        limited = c.get("/v1/models")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_cors_lets_a_configured_site_send_the_openai_headers(live):
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    allowed = httpx.options(f"{live}/v1/chat/completions", headers={"Origin": ALLOWED, **headers})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    denied = httpx.options(
        f"{live}/v1/chat/completions", headers={"Origin": "http://denied.example", **headers}
    )
    assert "access-control-allow-origin" not in denied.headers


def test_openapi_describes_the_v1_routes(live):
    spec = httpx.get(f"{live}/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert "ChatCompletion" in spec["components"]["schemas"]
    assert "OpenAIErrorResponse" in spec["components"]["schemas"]
    assert "get" in spec["paths"]["/v1/models"]


def test_the_readme_snippet_works(live, capsys):
    """The Python example in the README, run as written against the live server."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    snippet = next(b for b in blocks if "openai.OpenAI(" in b)
    assert 'base_url="http://127.0.0.1:8000/v1", api_key="unused"' in snippet
    exec(snippet.replace("http://127.0.0.1:8000", live), {})  # our own README's code
    printed = capsys.readouterr().out
    assert "[1]" in printed and "Sources:" in printed and ESTABLISHED in printed
