"""Server-rendered pages (no JavaScript): the chat form, deep links, the article view,
escaping of everything shown, the article list and the embeddable chat."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.settings import Settings
from qa.web.app import create_app
from qa.web.highlight import paragraphs, parse_span
from qa.web.templating import http_url
from tests.browser_support import build_index
from tests.conftest import SEED_DIR, SEED_QUESTIONS

K_SPACE = "What is K-SPACE?"
FOLLOW_UP = "When was it established?"
ESTABLISHED = "Dec. 5, 2022"
GOLD = ("Korea Superior Pharma-pipeline", "new drug development ecosystem")
XSS = "<script>alert(1)</script>"
WEB = Path(__file__).resolve().parents[1] / "web"

HOSTILE = {
    "id": "odd/id?<b>",
    "title": f"Lighthouse keepers {XSS}",
    "url": "javascript:alert(1)",
    "published": "2024-03-01",
    "text": (
        f"The lighthouse keepers wrote {XSS} and <img src=x onerror=alert(1)> in the logbook.\n\n"
        "Their second paragraph says the lamp turns every ten seconds on winter nights.\n\n"
        "A third paragraph closes the story."
    ),
}


@pytest.fixture(scope="module")
def pages_index(tmp_path_factory, encoder_dir) -> Path:
    root = tmp_path_factory.mktemp("pages")
    (root / "hostile.jsonl").write_text(json.dumps(HOSTILE) + "\n")
    return build_index(root / "index", encoder_dir, [SEED_DIR, root / "hostile.jsonl"])


@pytest.fixture(scope="module")
def client(pages_index) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=pages_index))) as c:
        yield c


def citation_links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'class="cite-link" href="([^"]+)"', page)]


def unbold(page: str) -> str:
    """The page without the bold around a quote's answering words (they may split a date)."""
    return re.sub(r'<strong class="answer-words">|</strong>', "", page)


def hidden_history(page: str) -> str:
    match = re.search(r'name="history" value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else ""


def test_form_post_answers_with_quotes_and_deep_links(client):
    answer = client.post("/api/ask", json={"question": K_SPACE}).json()
    page = client.post("/", data={"question": K_SPACE})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    top = answer["quotes"][0]
    assert any(g in top["text"] for g in GOLD)
    assert html.escape(top["text"], quote=False) in unbold(page.text)
    expected = f"/articles/{top['article']['id']}?start={top['start']}&end={top['end']}#quote"
    assert any(link.endswith(expected) for link in citation_links(page.text))
    assert "score" in page.text and f"{top['score']:.2f}" in page.text


def test_get_with_q_renders_the_answer_too(client):
    page = client.get("/", params={"q": K_SPACE})
    assert page.status_code == 200
    assert any(g in unbold(page.text) for g in GOLD)


def test_article_view_marks_exactly_the_quote(client):
    top = client.post("/api/ask", json={"question": K_SPACE}).json()["quotes"][0]
    link = next(h for h in citation_links(client.post("/", data={"question": K_SPACE}).text))
    page = client.get(link.split("#")[0])
    assert page.status_code == 200
    marks = re.findall(r'<mark id="quote">(.*?)</mark>', page.text, flags=re.S)
    assert [html.unescape(m) for m in marks] == [top["text"]]
    assert page.text.count("<mark") == 1
    assert 'href="#quote"' in page.text


@pytest.mark.parametrize(
    "query",
    [
        {"start": "-5", "end": "10"},
        {"start": "50", "end": "10"},
        {"start": "10", "end": "10"},
        {"start": "0", "end": "99999999"},
        {"start": "a", "end": "b"},
        {"start": "1.5", "end": "9"},
        {"start": "10"},
    ],
    ids=["negative", "reversed", "empty", "past-end", "text", "float", "start-only"],
)
def test_bad_offsets_show_the_article_without_highlight(client, query):
    article_id = client.get("/api/articles").json()[0]["id"]
    page = client.get(f"/articles/{article_id}", params=query)
    assert page.status_code == 200
    assert "<mark" not in page.text
    assert "not in this article" in page.text


def test_article_paragraphs_are_preserved(client):
    page = client.get("/articles/" + "odd%2Fid%3F%3Cb%3E")
    assert page.status_code == 200
    body = page.text.split('class="article-text">', 1)[1]
    assert body.count("<p>") == 3


def test_question_with_markup_comes_back_escaped(client):
    page = client.post("/", data={"question": f"{XSS} What is K-SPACE?"})
    assert page.status_code == 200
    assert XSS not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_hostile_article_is_rendered_as_text(client):
    page = client.post(
        "/", data={"question": "What did the lighthouse keepers write in the logbook?"}
    )
    assert page.status_code == 200
    assert XSS not in page.text and "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert 'href="javascript:' not in page.text.lower()
    link = next(h for h in citation_links(page.text) if "odd%2Fid%3F%3Cb%3E" in h)
    article = client.get(link.split("#")[0])
    assert article.status_code == 200
    assert XSS not in article.text and 'href="javascript:' not in article.text.lower()
    assert "Lighthouse keepers &lt;script&gt;" in article.text


def test_article_list_links_every_article(client):
    articles = client.get("/api/articles").json()
    page = client.get("/articles")
    assert page.status_code == 200
    for a in articles:
        assert html.escape(a["title"], quote=False) in page.text
    assert "/articles/odd%2Fid%3F%3Cb%3E" in page.text
    assert XSS not in page.text and "javascript:" not in page.text


def test_unknown_article_is_a_friendly_404_page(client):
    page = client.get("/articles/<script>nope</script>")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<script>nope" not in page.text and "&lt;script&gt;nope" in page.text
    assert "article_not_found" in page.text


def test_unknown_page_is_a_friendly_404_page(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "<h1>Not Found</h1>" in page.text


def test_empty_question_shows_the_error_in_the_conversation(client):
    page = client.post("/", data={"question": "   "})
    assert page.status_code == 422
    assert 'class="error"' in page.text and "question is empty" in page.text


def test_previous_turns_are_kept_and_cannot_be_forged(client):
    first = client.post("/", data={"question": K_SPACE})
    history = hidden_history(first.text)
    assert history
    second = client.post("/", data={"question": "How many meetings?", "history": history})
    assert second.text.count('class="turn"') == 2 and "What is K-SPACE?" in second.text
    forged = history[:-4] + ("AAAA" if not history.endswith("AAAA") else "BBBB")
    third = client.post("/", data={"question": "How many meetings?", "history": forged})
    assert third.text.count('class="turn"') == 1


def turn_items(page: str) -> list[str]:
    """The markup of each conversation turn, in order."""
    return page.split('<li class="turn"')[1:]


def test_a_no_js_follow_up_is_answered_from_the_conversation(client):
    first = client.post("/", data={"question": K_SPACE})
    second = client.post("/", data={"question": FOLLOW_UP, "history": hidden_history(first.text)})
    assert second.status_code == 200
    earlier, latest = turn_items(second.text)
    assert "Searched for" not in earlier
    searched = re.search(r'class="searched-text">([^<]*)<', latest)
    assert searched, "the follow-up does not say what was searched"
    assert html.unescape(searched.group(1)) != FOLLOW_UP
    assert ESTABLISHED in unbold(latest).split('class="quotes"', 1)[1]
    # The sealed history now carries both turns, for the question after this one.
    third = client.post("/", data={"question": FOLLOW_UP, "history": hidden_history(second.text)})
    assert len(turn_items(third.text)) == 3


def test_a_tampered_conversation_starts_over(client):
    history = hidden_history(client.post("/", data={"question": K_SPACE}).text)
    payload, mac = history.rsplit(".", 1)
    tampered = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    page = client.post("/", data={"question": FOLLOW_UP, "history": tampered})
    assert page.status_code == 200
    assert len(turn_items(page.text)) == 1
    assert "Searched for" not in page.text


def test_server_rendered_turns_carry_what_chat_js_sends_back(client):
    api = client.post("/api/ask", json={"question": K_SPACE}).json()
    page = client.post("/", data={"question": K_SPACE}).text
    (raw,) = re.findall(r'data-turn="([^"]*)"', page)
    assert json.loads(html.unescape(raw)) == {"question": K_SPACE, "quotes": api["quotes"]}


def test_hostile_text_in_a_carried_turn_stays_inside_its_attribute(client):
    question = f'{XSS} "><b>What did the lighthouse keepers write in the logbook?'
    page = client.post("/", data={"question": question}).text
    (li,) = re.findall(r'<li class="turn"[^>]*>', page)
    assert XSS not in li and '"><b>' not in li and "<img" not in li
    (raw,) = re.findall(r'data-turn="([^"]*)"', li)
    turn = json.loads(html.unescape(raw))
    assert turn["question"] == question
    assert any("<img src=x onerror=alert(1)>" in q["text"] for q in turn["quotes"])


def test_new_conversation_control_appears_with_turns_and_starts_over(client):
    button = re.compile(r"<button[^>]*new-conversation[^>]*>New conversation</button>")
    empty = client.get("/").text
    assert " hidden" in button.search(empty).group(0)
    page = client.post("/", data={"question": K_SPACE}).text
    control = button.search(page).group(0)
    assert " hidden" not in control and 'form="restart"' in control
    # Without JavaScript it submits an empty GET form: the bare chat, no history.
    restart = re.search(r'<form id="restart" method="get" action="([^"]+)"></form>', page)
    assert restart and restart.group(1).endswith("/")
    assert 'name="history"' not in client.get(restart.group(1)).text
    embed = client.post("/embed", data={"question": K_SPACE}).text
    restart = re.search(r'<form id="restart" method="get" action="([^"]+)"></form>', embed)
    assert restart and restart.group(1).endswith("/embed")


def test_sealed_history_keeps_twenty_turns_in_a_modest_token(client):
    lines = SEED_QUESTIONS.read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    history = ""
    for i in range(22):  # different answers each turn: the token compresses less
        question = questions[i % len(questions)]
        page = client.post("/", data={"question": question, "history": history}).text
        history = hidden_history(page)
    # The twenty earlier turns the question was asked with, and its own.
    assert len(turn_items(page)) == 21
    assert len(history) < 16_000, len(history)
    print(f"sealed history of 20 turns: {len(history)} characters")


def test_embed_page_opens_citations_in_a_new_tab(client):
    page = client.post("/embed", data={"question": K_SPACE})
    assert page.status_code == 200
    assert 'target="_blank" rel="noopener"' in page.text
    assert 'class="site-header"' not in page.text
    assert "frame-ancestors *" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/", "/articles", "/embed", "/no-such-page"])
def test_pages_have_no_inline_script_or_style(client, path):
    text = client.get(path).text
    assert not re.search(r"<script(?![^>]*\ssrc=)", text), "inline <script>"
    assert not re.search(r"\sstyle=", text) and "<style" not in text
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"
    assert "/static/style.css" in text


def test_static_assets_are_served(client):
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/chat.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]


@pytest.mark.parametrize("path", ["static/chat.js", "static/quote-parts.js", "widget/qa-widget.js"])
def test_scripts_never_parse_html(path):
    source = (WEB / path).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, f"{path} uses {sink}"


# -- helpers ---------------------------------------------------------------------------------
def test_highlight_spanning_two_paragraphs_is_one_mark_with_the_exact_text():
    text = "Zero.\n\nFirst para here.\n\nSecond para there.\n\nThird."
    span = (text.index("para here"), text.index(" there"))
    paras = paragraphs(text, span)
    assert [len(p) for p in paras] == [1, 3, 1]
    (mark,) = [s for p in paras for s in p if s.marked]
    assert mark.text == text[span[0] : span[1]]
    assert mark.pieces == ["para here.", "\n\nSecond para"]


def test_article_view_of_a_quote_across_paragraphs(client):
    article = client.get("/api/articles/odd%2Fid%3F%3Cb%3E").json()
    start = article["text"].index("in the logbook")
    end = article["text"].index(" every ten seconds")
    page = client.get("/articles/odd%2Fid%3F%3Cb%3E", params={"start": start, "end": end})
    (mark,) = re.findall(r'<mark id="quote">(.*?)</mark>', page.text, flags=re.S)
    text = html.unescape(re.sub(r'<span class="para-break"></span>', "", mark))
    assert text == article["text"][start:end]
    assert page.text.split('class="article-text">', 1)[1].count("<p>") == 2


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [("0", "5", (0, 5)), ("5", "5", None), (None, "3", None), ("2", "11", None)],
)
def test_parse_span(start, end, expected):
    assert parse_span(start, end, 10) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.org/a", True),
        ("http://example.org", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//example.org", False),
        ("https:///nohost", False),
        (None, False),
    ],
)
def test_only_http_urls_become_links(url, shown):
    assert (http_url(url) is not None) is shown
