"""Filters in every face: `qa ask`/`qa eval`, POST and GET /api/ask, the OpenAI extension
fields, the MCP tool and the chat page without JavaScript, over one real index of the
seed article (Korea Biomedical Review, 2023) and BBC tech articles (2019, one undated)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mcp import Client

from qa.answering import Answerer
from qa.settings import Settings
from qa.web.app import create_app
from qa.web.mcp_server import build_server

from .conftest import BBC_DIR, SEED_FILE
from .test_api import assert_error
from .test_cli import qa
from .test_filters import build_index

KBR = "Korea Biomedical Review"
TECH = "BBC Tech"
K_SPACE = "What is K-SPACE?"


def _articles() -> list[dict]:
    title, _, text = SEED_FILE.read_text(encoding="utf-8").partition("\n")
    out = [
        {
            "id": "kbr",
            "title": title.strip(),
            "text": text.strip(),
            "published": "2023-06-05",
            "source": KBR,
        }
    ]
    for n, path in enumerate(sorted((BBC_DIR / "tech").glob("*.txt"))[:3]):
        title, _, text = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        article = {"id": f"tech-{n}", "title": title.strip(), "text": text.strip()}
        article["source"] = TECH
        if n:  # tech-0 has no date
            article["published"] = f"2019-0{n}-15"
        out.append(article)
    return out


@pytest.fixture(scope="module")
def faces_index(tmp_path_factory, encoder_dir) -> Path:
    return build_index(tmp_path_factory.mktemp("faces"), encoder_dir, _articles())


# min_score 0: a question the filtered articles hardly answer still gets quotes to check.
OPEN = {"min_score": 0.0}


@pytest.fixture(scope="module")
def client(faces_index) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=faces_index, **OPEN))) as c:
        yield c


def ids(answer: dict) -> set[str]:
    return {q["article"]["id"] for q in answer["quotes"]}


# -- HTTP API ---------------------------------------------------------------------------------
def test_post_ask_keeps_to_the_source(client):
    alone = client.post("/api/ask", json={"question": K_SPACE}).json()
    assert alone["quotes"][0]["article"]["id"] == "kbr"
    resp = client.post("/api/ask", json={"question": K_SPACE, "source": TECH, "k": 5})
    assert resp.status_code == 200
    assert resp.json()["quotes"] and ids(resp.json()) <= {"tech-0", "tech-1", "tech-2"}


def test_get_ask_takes_dates_and_repeated_articles(client):
    params = [("q", K_SPACE), ("until", "2020-01-01"), ("k", "5")]
    dated = client.get("/api/ask", params=params).json()
    assert dated["quotes"] and ids(dated) <= {"tech-1", "tech-2"}  # tech-0 has no date
    picked = client.get(
        "/api/ask", params=[("q", K_SPACE), ("article", "tech-0"), ("article", "tech-2")]
    ).json()
    assert picked["quotes"] and ids(picked) <= {"tech-0", "tech-2"}


def test_a_filter_nothing_matches_is_a_well_formed_no(client):
    resp = client.post("/api/ask", json={"question": K_SPACE, "since": "2030-01-01"})
    body = resp.json()
    assert resp.status_code == 200 and body["answered"] is False and body["quotes"] == []
    assert body["answer"].startswith("No indexed article matches the filter")
    assert set(body) == {
        "question",
        "answered",
        "answer",
        "quotes",
        "took_ms",
        "standalone_question",
    }


@pytest.mark.parametrize(
    "body, words",
    [
        ({"since": "2023-02-30"}, "since: must be an ISO date"),
        ({"since": "2024-01-01", "until": "2023-01-01"}, "is after until"),
        ({"article": ""}, "article"),
        ({"article": [""]}, "article"),
        ({"until": 20240101}, "until"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client, body, words):
    message = assert_error(
        client.post("/api/ask", json={"question": K_SPACE, **body}), 422, "invalid_input"
    )
    assert words in message


def test_get_with_a_bad_date_is_422(client):
    resp = client.get("/api/ask", params={"q": K_SPACE, "since": "last week"})
    assert "since: must be an ISO date" in assert_error(resp, 422, "invalid_input")


def test_openapi_describes_the_filters(client):
    doc = client.get("/openapi.json").json()
    body = doc["components"]["schemas"]["AskRequest"]["properties"]
    assert {"since", "until", "source", "article"} <= set(body)
    params = {p["name"] for p in doc["paths"]["/api/ask"]["get"]["parameters"]}
    assert {"since", "until", "source", "article"} <= params
    chat = doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert {"since", "until", "source", "article"} <= set(chat)


# -- OpenAI-compatible ------------------------------------------------------------------------
def test_openai_extension_fields_filter_the_answer(client):
    messages = [{"role": "user", "content": K_SPACE}]
    resp = client.post("/v1/chat/completions", json={"messages": messages, "source": TECH})
    assert resp.status_code == 200
    assert resp.json()["qa"]["quotes"] and ids(resp.json()["qa"]) <= {"tech-0", "tech-1", "tech-2"}
    bad = client.post("/v1/chat/completions", json={"messages": messages, "until": "soon"})
    assert bad.status_code == 400 and "until" in bad.json()["error"]["message"]


# -- MCP --------------------------------------------------------------------------------------
def test_mcp_ask_takes_the_filters(faces_index):
    server = build_server(Answerer(Settings(index_dir=faces_index, **OPEN)))

    async def session() -> tuple:
        async with Client(server, read_timeout_seconds=120) as c:
            ok = await c.call_tool("ask", {"question": K_SPACE, "source": TECH})
            bad = await c.call_tool("ask", {"question": K_SPACE, "since": "2024-99-01"})
            return ok, bad

    ok, bad = asyncio.run(session())
    assert not ok.is_error and ids(ok.structured_content) <= {"tech-0", "tech-1", "tech-2"}
    assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_input"


# -- the chat page, no JavaScript -------------------------------------------------------------
def test_the_page_offers_a_filter_of_the_indexed_sources(client):
    page = client.get("/").text
    assert '<details class="filters">' in page  # closed until a filter is set
    assert '<input id="filter-since" name="since" type="date"' in page
    assert f'<option value="{TECH}">{TECH}</option>' in page
    assert f'<option value="{KBR}">{KBR}</option>' in page


def test_a_form_post_with_a_filter_quotes_only_within_it_and_keeps_it_set(client):
    resp = client.post("/", data={"question": K_SPACE, "source": TECH, "since": ""})
    assert resp.status_code == 200
    links = re.findall(r'class="cite-link" href="[^"]*/articles/([^/?"]+)\?', resp.text)
    assert links and set(links) <= {"tech-0", "tech-1", "tech-2"}
    assert '<details class="filters" open>' in resp.text
    assert f'<option value="{TECH}" selected>' in resp.text


def test_a_bad_date_on_the_page_is_shown_as_an_error(client):
    resp = client.post("/", data={"question": K_SPACE, "until": "2023-02-30"})
    assert resp.status_code == 422 and "until: must be an ISO date" in resp.text


# -- the command line -------------------------------------------------------------------------
@pytest.mark.two_processes
def test_qa_ask_takes_the_filters(faces_index, monkeypatch):
    monkeypatch.setenv("QA_MIN_SCORE", "0")
    run = qa("ask", K_SPACE, "--json", "--source", TECH, index_dir=faces_index)
    assert run.returncode == 0, run.stderr
    assert ids(json.loads(run.stdout)) <= {"tech-0", "tech-1", "tech-2"}
    args = ("ask", K_SPACE, "--json", "--article", "tech-1", "--article", "kbr")
    picked = json.loads(qa(*args, index_dir=faces_index).stdout)
    assert picked["quotes"][0]["article"]["id"] == "kbr" and ids(picked) <= {"tech-1", "kbr"}
    none = qa("ask", K_SPACE, "--since", "2030-01-01", index_dir=faces_index)
    assert none.returncode == 0 and "No indexed article matches the filter" in none.stdout
    bad = qa("ask", K_SPACE, "--since", "2024-13-01", index_dir=faces_index)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "since: must be an ISO date" in bad.stderr


@pytest.mark.two_processes
def test_qa_eval_asks_each_question_with_its_filters(faces_index, tmp_path):
    lines = [
        {"question": K_SPACE, "answers": ["K-SPACE"], "filters": {"source": KBR}},
        {"question": K_SPACE, "answers": ["K-SPACE"], "filters": {"until": "2020-01-01"}},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    run = qa("eval", str(path), "--json", "--misses", index_dir=faces_index)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    # The first finds K-SPACE in the seed; the second may only quote BBC tech of 2019.
    assert report["top1_accuracy"] == 0.5
    assert [m["question"] for m in report["misses"]] == [K_SPACE]
    path.write_text(json.dumps({"question": K_SPACE, "filters": {"since": "soon"}}))
    bad = qa("eval", str(path), index_dir=faces_index)
    assert bad.returncode == 1 and "line 1: filters: since: must be an ISO date" in bad.stderr


def test_qa_chat_keeps_every_answer_to_its_filters(faces_index):
    from qa.models import Filters
    from qa.terminal_chat import ChatSession

    answerer = Answerer(Settings(index_dir=faces_index, **OPEN))
    session = ChatSession(answerer, 3, filters=Filters(source=TECH))
    for line in (K_SPACE, "When was it established?"):
        reply = session.handle(line)
        assert reply is not None and reply.answer is not None and reply.answer.quotes
        assert all(q.article.id.startswith("tech-") for q in reply.answer.quotes)
