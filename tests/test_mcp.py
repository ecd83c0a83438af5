"""The MCP server, driven by the SDK's own client: `qa mcp` over stdio, and `/mcp` on a
live server over streamable HTTP, on the seed article with the real model."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from qa.models import Answer
from qa.settings import Settings

from .browser_support import ThreadedServer
from .conftest import PROJECT

QUESTION = "What is K-SPACE?"
FOLLOW_UP = "When was it established?"
ESTABLISHED = "Dec. 5, 2022"  # the seed article's answer to the follow-up
TOOLS = {"ask", "list_articles", "get_article"}

pytestmark = pytest.mark.two_processes


def run(session: Callable[[Client], Awaitable[dict[str, Any]]], server: Any) -> dict[str, Any]:
    """Connect the SDK client to `server`, run `session` with it, return what it gathered."""

    async def main() -> dict[str, Any]:
        async with Client(server, read_timeout_seconds=120) as client:
            return await session(client)

    return asyncio.run(main())


async def stdio_session(client: Client) -> dict[str, Any]:
    seen: dict[str, Any] = {"tools": {t.name for t in (await client.list_tools()).tools}}
    first = await client.call_tool("ask", {"question": QUESTION})
    seen["first"] = first
    quote = first.structured_content["quotes"][0]
    article_id = quote["article"]["id"]
    seen["whole"] = await client.call_tool("get_article", {"id": article_id})
    span = {"id": article_id, "start": quote["start"], "end": quote["end"]}
    seen["span"] = await client.call_tool("get_article", span)
    seen["resource"] = await client.read_resource(f"qa://articles/{article_id}")
    seen["list"] = await client.call_tool("list_articles", {})
    history = [{"question": QUESTION, "quotes": first.structured_content["quotes"]}]
    seen["follow_up"] = await client.call_tool("ask", {"question": FOLLOW_UP, "history": history})
    seen["errors"] = {
        "empty": await client.call_tool("ask", {"question": "  "}),
        "too_long": await client.call_tool("ask", {"question": "why " * 1250}),
        "bad_k": await client.call_tool("ask", {"question": QUESTION, "k": 0}),
        "unknown": await client.call_tool("get_article", {"id": "no-such-article"}),
        "bad_span": await client.call_tool("get_article", {**span, "end": 10**7}),
    }
    # After all those errors the same process still answers.
    seen["after"] = await client.call_tool("ask", {"question": QUESTION})
    return seen


@pytest.fixture(scope="module")
def stdio(seed_index) -> dict[str, Any]:
    # `python -m qa` is the `qa` script, run from this checkout.
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa", "mcp", "--index-dir", str(seed_index)],
        cwd=str(PROJECT),
        # The SDK passes only a few variables on by default; the run's own (the
        # Milvus options' QA_TEST_STORE among them) must reach the server too.
        env=dict(os.environ),
    )
    return run(stdio_session, server)


def test_stdio_lists_the_three_tools(stdio):
    assert stdio["tools"] == TOOLS


def test_stdio_ask_quotes_the_article_verbatim(stdio):
    first = stdio["first"]
    assert not first.is_error
    answer = Answer.model_validate(first.structured_content)
    assert answer.answered and answer.question == QUESTION
    article = stdio["whole"].structured_content
    quote = answer.quotes[0]
    assert quote.text == article["text"][quote.start : quote.end]
    assert "k-space" in quote.text.lower()
    # The text rendering numbers the quotes and says where each comes from.
    text = first.content[0].text
    assert f"[1] “{quote.text}”" in text.replace("**", "")  # the answering words in bold
    if quote.highlighted:
        assert f"**{quote.highlighted.strip()}**" in text
    assert f"qa://articles/{quote.article.id}" in text


def test_stdio_get_article_returns_the_span_with_context(stdio):
    quote = stdio["first"].structured_content["quotes"][0]
    span = stdio["span"].structured_content
    whole = stdio["whole"].structured_content
    assert span["text"] == quote["text"]
    assert (span["start"], span["end"]) == (quote["start"], quote["end"])
    assert whole["text"][: span["start"]].endswith(span["before"]) and span["before"]
    assert whole["text"][span["end"] :].startswith(span["after"]) and span["after"]
    assert whole["start"] == 0 and whole["end"] == whole["length"] == len(whole["text"])
    # The resource is the same text.
    assert stdio["resource"].contents[0].text == whole["text"]
    listed = stdio["list"].structured_content["articles"]
    assert [a["id"] for a in listed] == [whole["id"]]


def test_stdio_follow_up_is_understood_from_the_history(stdio):
    follow_up = stdio["follow_up"]
    assert not follow_up.is_error
    answer = Answer.model_validate(follow_up.structured_content)
    assert answer.question == FOLLOW_UP
    assert answer.standalone_question != FOLLOW_UP
    assert ESTABLISHED in answer.quotes[0].text


@pytest.mark.parametrize(
    "case,code,words",
    [
        ("empty", "invalid_input", "empty"),
        ("too_long", "invalid_input", "limit is 1000"),
        ("bad_k", "invalid_input", "k must be between 1 and 20"),
        ("unknown", "article_not_found", "no-such-article"),
        ("bad_span", "invalid_input", "start <= end"),
    ],
)
def test_stdio_errors_are_tool_errors_with_the_api_codes(stdio, case, code, words):
    result = stdio["errors"][case]
    assert result.is_error
    error = result.structured_content["error"]
    assert error["code"] == code and words in error["message"]
    assert result.content[0].text == f"{code}: {error['message']}"


def test_stdio_server_survives_errors(stdio):
    assert not stdio["after"].is_error
    assert stdio["after"].structured_content["answered"]


@pytest.fixture(scope="module")
def live(seed_index) -> Iterator[str]:
    with ThreadedServer(Settings(index_dir=seed_index, rate_limit_per_minute=0)) as server:
        yield server.base


async def http_session(client: Client) -> dict[str, Any]:
    return {
        "tools": {t.name for t in (await client.list_tools()).tools},
        "ask": await client.call_tool("ask", {"question": QUESTION, "k": 2}),
        "unknown": await client.call_tool("get_article", {"id": "no-such-article"}),
    }


def test_http_mcp_answers_with_links_to_the_article_page(live):
    seen = run(http_session, f"{live}/mcp")
    assert seen["tools"] == TOOLS
    answer = Answer.model_validate(seen["ask"].structured_content)
    assert answer.answered and 1 <= len(answer.quotes) <= 2
    quote = answer.quotes[0]
    link = f"{live}/articles/{quote.article.id}?start={quote.start}&end={quote.end}#quote"
    assert link in seen["ask"].content[0].text
    page = httpx.get(link)
    assert page.status_code == 200 and "K-SPACE" in page.text
    assert seen["unknown"].is_error
    assert seen["unknown"].structured_content["error"]["code"] == "article_not_found"


def test_mcp_is_not_in_the_openapi_schema(live):
    paths = httpx.get(f"{live}/openapi.json").json()["paths"]
    assert "/api/ask" in paths and not any(p.startswith("/mcp") for p in paths)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def test_http_mcp_has_the_api_body_cap(live):
    huge = {**INITIALIZE, "padding": "x" * 1_100_000}
    too_large = httpx.post(f"{live}/mcp", json=huge, headers=MCP_HEADERS, timeout=30)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"


def test_http_mcp_has_the_api_rate_limit(seed_index):
    settings = Settings(index_dir=seed_index, rate_limit_per_minute=2)
    with ThreadedServer(settings) as server, httpx.Client(base_url=server.base, timeout=30) as http:
        replies = [http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 429]
    refused = replies[2]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in refused.headers
