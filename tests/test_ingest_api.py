"""Ingest over HTTP: POST/DELETE /api/articles, the API key, and answers that follow the writes."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.fetch import Fetcher
from qa.indexer import article_id
from qa.readers import read_file, read_upload
from qa.settings import Settings
from qa.web.app import create_app
from qa.web.deps import get_fetcher
from tests.conftest import copy_index, store_at

from .test_api import assert_error

FORMATS = Path(__file__).parent / "fixtures" / "formats"
KEY = "qa-test-key-5Zt9vQ2wLm"  # distinctive, so a leak anywhere is easy to find
AUTH = {"Authorization": f"Bearer {KEY}"}

LIGHTHOUSE = {
    "title": "Quillhaven repaints its lighthouse",
    "text": "The Quillhaven lighthouse was repainted teal in March by a crew of nine volunteers. "
    "The work took eleven days and cost the town 4,200 pounds.\n\n"
    "Keeper Maren Osk said the new colour would be easier to see in fog.",
}
LIGHTHOUSE_QUESTION = "What colour was the Quillhaven lighthouse repainted?"


@pytest.fixture
def writable_index(seed_index, tmp_path) -> Path:
    """A private copy of the seed index: these tests write to it."""
    path = tmp_path / "writable-index"
    copy_index(seed_index, path)
    return path


@pytest.fixture
def client(writable_index) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=writable_index, api_key=KEY))
    with TestClient(app) as c:
        yield c


def quoted_ids(c: TestClient, question: str) -> list[str]:
    body = c.post("/api/ask", json={"question": question, "k": 5}).json()
    return [q["article"]["id"] for q in body["quotes"]]


# -- the key ---------------------------------------------------------------------------------
def test_write_routes_answer_403_when_no_key_is_configured(seed_index):
    with TestClient(create_app(Settings(index_dir=seed_index))) as c:
        for resp in (
            c.post("/api/articles", json=LIGHTHOUSE, headers=AUTH),
            c.delete("/api/articles/anything", headers=AUTH),
        ):
            assert "QA_API_KEY" in assert_error(resp, 403, "ingest_disabled")
        assert c.get("/api/articles").status_code == 200  # reading stays open


def test_an_empty_key_setting_keeps_ingest_disabled(seed_index):
    with TestClient(create_app(Settings(index_dir=seed_index, api_key=""))) as c:
        resp = c.post("/api/articles", json=LIGHTHOUSE, headers={"Authorization": "Bearer "})
        assert_error(resp, 403, "ingest_disabled")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"X-API-Key": "wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": f"Bearer {KEY}x"},
        {"X-API-Key": KEY[:-1]},
    ],
    ids=["none", "wrong-bearer", "wrong-header", "basic", "no-scheme", "longer", "prefix"],
)
def test_missing_or_wrong_key_is_401_with_www_authenticate(client, headers):
    for resp in (
        client.post("/api/articles", json=LIGHTHOUSE, headers=headers),
        client.delete("/api/articles/anything", headers=headers),
    ):
        assert_error(resp, 401, "unauthorized")
        assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", [AUTH, {"X-API-Key": KEY}], ids=["bearer", "x-api-key"])
def test_the_key_is_accepted_in_either_header(client, headers):
    resp = client.post("/api/articles", json=LIGHTHOUSE, headers=headers)
    assert resp.status_code == 201, resp.text


def test_a_non_ascii_key_matches_the_utf8_bytes_sent(seed_index):
    key = "clé-ü-5Zt9"
    with TestClient(create_app(Settings(index_dir=seed_index, api_key=key))) as c:
        wrong = c.delete("/api/articles/nothing", headers={"X-API-Key": "cle-u-5Zt9"})
        assert_error(wrong, 401, "unauthorized")
        right = c.delete("/api/articles/nothing", headers={"X-API-Key": key.encode()})
        assert_error(right, 404, "article_not_found")  # authorised; there is no such article


def test_the_key_is_never_logged_or_echoed(client, caplog):
    caplog.set_level(logging.DEBUG)
    responses = [
        client.post("/api/articles", json=LIGHTHOUSE, headers={"X-API-Key": KEY + "-wrong"}),
        client.post("/api/articles", json={"title": "no text"}, headers=AUTH),  # 422
        client.post("/api/articles", content=b"{oops", headers={**AUTH, "content-type": "a/b"}),
        client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH),  # 201
        client.delete("/api/articles/nope", headers=AUTH),  # 404
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [401, 422, 415, 201, 404, 200]
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert KEY not in caplog.text
    for resp in responses:
        assert KEY not in resp.text
        assert all(KEY not in v for v in resp.headers.values())
    assert KEY not in repr(client.app.state.settings)


def test_the_openapi_document_describes_the_write_routes_and_their_auth(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/articles"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"201", "401", "403", "413", "422", "429", "502", "503"} <= set(post["responses"])
    assert {"401", "404"} <= set(spec["paths"]["/api/articles/{article_id}"]["delete"]["responses"])
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}


# -- JSON articles -----------------------------------------------------------------------------
def test_posted_article_is_answerable_and_never_after_it_is_deleted(client):
    resp = client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["report"]["added"] == 1 and body["report"]["chunks"] >= 1
    (new_id,) = body["ids"]

    answer = client.post("/api/ask", json={"question": LIGHTHOUSE_QUESTION}).json()
    assert answer["answered"] and answer["quotes"][0]["article"]["id"] == new_id
    assert "teal" in answer["quotes"][0]["text"]
    assert client.get("/api/health").json()["articles"] == 2

    deleted = client.delete(f"/api/articles/{new_id}", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json() == {"report": deleted.json()["report"], "ids": [new_id]}
    assert deleted.json()["report"]["removed"] == 1
    for question in (LIGHTHOUSE_QUESTION, "Who is the keeper Maren Osk?", "Quillhaven teal"):
        assert new_id not in quoted_ids(client, question)
    assert_error(client.get(f"/api/articles/{new_id}"), 404, "article_not_found")
    assert_error(client.delete(f"/api/articles/{new_id}", headers=AUTH), 404, "article_not_found")
    assert client.get("/api/health").json()["articles"] == 1


def test_json_article_follows_the_json_file_rules(client):
    article = {
        "id": "given-id/with slash",
        "title": "Ferry timetable",
        "content": ["The ferry leaves at noon.", "It returns at six in the evening."],
        "published": "not a date",
        "author": ["A. Writer", "B. Writer"],
        "url": "https://example.org/ferry",
        "extra": "ignored",
    }
    resp = client.post("/api/articles", json=article, headers=AUTH)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["ids"] == ["given-id/with slash"]
    assert any("published" in p for p in body["report"]["problems"])
    stored = client.get("/api/articles/given-id/with slash").json()
    assert stored["text"] == "The ferry leaves at noon.\n\nIt returns at six in the evening."
    assert stored["published"] is None and stored["url"] == "https://example.org/ferry"


def test_reposting_is_unchanged_and_an_edit_with_the_same_title_replaces(client):
    first = client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH).json()
    again = client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH).json()
    assert again["report"]["unchanged"] == 1 and again["ids"] == first["ids"]
    edited = {**LIGHTHOUSE, "text": LIGHTHOUSE["text"].replace("teal", "crimson")}
    replaced = client.post("/api/articles", json=edited, headers=AUTH).json()
    assert replaced["report"]["updated"] == 1 and replaced["ids"] == first["ids"]
    assert "crimson" in client.get(f"/api/articles/{first['ids'][0]}").json()["text"]
    assert client.get("/api/health").json()["articles"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"title": "No text at all"},
        {"title": "Blank", "text": "   \n  "},
        {"title": {"a": 1}, "text": "Objects are not titles."},
        {"text": 42},
        ["a", "list"],
        "just a string",
        {"url": "https://example.org/", "title": "a url and a title but no text"},
    ],
    ids=["no-text", "blank", "title-object", "text-int", "list", "string", "url-title"],
)
def test_articles_without_usable_text_are_422(client, body):
    assert_error(client.post("/api/articles", json=body, headers=AUTH), 422)


def test_malformed_json_is_400_and_other_media_types_415(client):
    bad = client.post(
        "/api/articles", content=b'{"title": ', headers={**AUTH, "content-type": "application/json"}
    )
    assert_error(bad, 400, "invalid_json")
    text = client.post(
        "/api/articles", content=b"hello", headers={**AUTH, "content-type": "text/plain"}
    )
    assert_error(text, 415, "unsupported_media_type")


# -- uploads -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "garden_notes.txt",
        "lighthouse-survey.md",
        "night-market.html",
        "short-notice.htm",
        "museum-news.json",
        "bulletins.jsonl",
    ],
)
def test_uploads_are_read_by_the_same_rules_as_qa_index(client, name):
    data = (FORMATS / name).read_bytes()
    resp = client.post("/api/articles", files={"file": (name, data)}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    expected, problems = read_upload(name, data)
    assert body["ids"] == [article_id(a) for a in expected]
    assert body["report"]["problems"] == problems
    from_disk = {a.text for a in read_file(FORMATS / name)[0]}
    for aid in body["ids"]:
        assert client.get(f"/api/articles/{aid}").json()["text"] in from_disk


def test_upload_name_is_only_a_label(client, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd" / "deeper"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    name = "../../etc/evil notes.txt"
    data = b"Evil notes\n\nThe quarry reopens on Monday after the storm damage was repaired."
    resp = client.post("/api/articles", files={"file": (name, data)}, headers=AUTH)
    assert resp.status_code == 201, resp.text
    (aid,) = resp.json()["ids"]
    assert aid.startswith("upload-evil-notes-")
    assert not list(tmp_path.rglob("evil*")) and not Path("/etc/evil notes.txt").exists()
    assert list((tmp_path / "cwd").rglob("*")) == [cwd]


def test_upload_without_suffix_uses_the_part_content_type(client):
    data = b"# Moss survey\n\nVolunteers counted forty kinds of moss on the old wall."
    resp = client.post(
        "/api/articles", files={"file": ("notes", data, "text/markdown")}, headers=AUTH
    )
    assert resp.status_code == 201, resp.text
    (aid,) = resp.json()["ids"]
    assert client.get(f"/api/articles/{aid}").json()["title"] == "Moss survey"


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unsupported file type .png"),
        ("empty.txt", b"", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("broken.json", b'{"title": ', "invalid JSON"),
        ("noext", b"some text", "no file extension"),
    ],
)
def test_unreadable_uploads_are_422_and_say_why(client, name, data, reason):
    resp = client.post("/api/articles", files={"file": (name, data)}, headers=AUTH)
    assert reason in assert_error(resp, 422, "unreadable_file")


def test_multipart_without_a_file_field_is_422(client):
    resp = client.post("/api/articles", files={"upload": ("a.txt", b"text")}, headers=AUTH)
    assert "'file'" in assert_error(resp, 422, "invalid_input")


# -- URLs ----------------------------------------------------------------------------------------
PAGE = b"""<!doctype html><html><head><title>Canal festival returns</title></head>
<body><article><h1>Canal festival returns</h1>
<p>The canal festival returns on the first weekend of June with forty painted narrowboats.</p>
<p>Organisers expect twelve thousand visitors over the two days.</p></article></body></html>"""


def test_url_is_fetched_through_the_vetted_address_and_ingested(client):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/html"}, content=PAGE)

    public = ipaddress.ip_address("93.184.216.34")
    fetcher = Fetcher(resolve=lambda host, port: [public], transport=httpx.MockTransport(handler))
    client.app.dependency_overrides[get_fetcher] = lambda: fetcher
    try:
        resp = client.post(
            "/api/articles", json={"url": "https://news.example/canal.html"}, headers=AUTH
        )
    finally:
        client.app.dependency_overrides.clear()
    assert resp.status_code == 201, resp.text
    (aid,) = resp.json()["ids"]
    article = client.get(f"/api/articles/{aid}").json()
    assert article["url"] == "https://news.example/canal.html"
    assert article["title"] == "Canal festival returns"
    assert [(r.url.host, r.headers["host"]) for r in seen] == [("93.184.216.34", "news.example")]
    answer = client.get("/api/ask", params={"q": "How many narrowboats are at the festival?"})
    assert answer.json()["quotes"][0]["article"]["id"] == aid


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"],
)
def test_refused_urls_are_422_without_echoing_internals(client, url):
    resp = client.post("/api/articles", json={"url": url}, headers=AUTH)
    message = assert_error(resp, 422)
    assert "refused" in message or "only http:// and https://" in message


# -- the writer lock -----------------------------------------------------------------------------
@pytest.mark.directory_store
def test_a_busy_index_answers_503_with_retry_after(client, writable_index):
    with store_at(writable_index).writer():  # another writer (say, `qa index`) holds the lock
        resp = client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH)
        assert_error(resp, 503, "index_busy")
        assert int(resp.headers["retry-after"]) >= 1
        delete = client.delete("/api/articles/anything", headers=AUTH)
        assert_error(delete, 503, "index_busy")
    assert client.post("/api/articles", json=LIGHTHOUSE, headers=AUTH).status_code == 201
