"""The words that answer (a quote's `highlight`) in bold in every face: the page with
and without JavaScript, the iframe, the widget, `qa ask`, /v1 and MCP's text.

On the seed index each face must bold exactly the slice of the quote the API names;
which words those are is the reader model's business, not these tests'. Hand-built
quotes check what the model cannot be made to do on demand: a highlight over
markup from a hostile article, one that lies outside its quote, none at all.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from starlette.datastructures import URL

from qa.models import Answer, ArticleRef, Highlight, Quote
from qa.render import answer_text, quote_markdown
from qa.web.mcp_server import answer_text as mcp_text
from qa.web.openai_api import chat_text
from qa.web.pages import Turn
from qa.web.templating import make_templates
from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PROJECT,
    LiveServer,
    PageWatch,
    require_chromium,
    static_site,
)

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by require_chromium (a skip locally, a failure in CI)
    expect = sync_playwright = None

QUESTION = "When was K-SPACE established?"
TIMEOUT_MS = 30_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# -- hand-built quotes -------------------------------------------------------------------------
# Offsets count code points, as the server's do: the wave before the markup is one
# character in Python and two UTF-16 units in JavaScript, so a face slicing UTF-16
# would bold the wrong characters.
SCRIPT = "<script>alert(1)</script>"
HOSTILE = f"🌊 The keepers wrote {SCRIPT} and <img src=x onerror=alert(1)> in the logbook."
PLAIN = "The lamp turns every ten seconds on winter nights."
OFFSET = 1000  # where the quotes sit in their (imaginary) article


def hand_quote(text: str, highlight: tuple[int, int] | None) -> Quote:
    """A quote at OFFSET; `highlight` in offsets relative to the quote's text."""
    words = None if highlight is None else [OFFSET + at for at in highlight]
    return Quote(
        text=text,
        score=0.9,
        article=ArticleRef(id="keepers<b>", title="Keepers <i>log</i>"),
        start=OFFSET,
        end=OFFSET + len(text),
        highlight=None if words is None else Highlight(start=words[0], end=words[1]),
    )


def hand_answer() -> Answer:
    at = HOSTILE.index(SCRIPT)
    quotes = [
        hand_quote(HOSTILE, (at, at + len(SCRIPT))),  # bold markup, shown as text
        hand_quote(PLAIN, None),  # no highlight: as before
        hand_quote(PLAIN, (10, len(PLAIN) + 5)),  # ends past the quote: plain text
    ]
    return Answer(
        question="What did the keepers write?",
        answered=True,
        answer="They wrote it [1]",
        quotes=quotes,
        took_ms=1.0,
        standalone_question="What did the keepers write?",
    )


def test_the_split_is_before_words_after_or_none():
    hostile, plain, outside = hand_answer().quotes
    at = HOSTILE.index(SCRIPT)
    after = HOSTILE[at + len(SCRIPT) :]
    assert hostile.highlight_parts() == ("🌊 The keepers wrote ", SCRIPT, after)
    assert "".join(hostile.highlight_parts()) == HOSTILE
    assert hostile.highlight_parts()[1] == hostile.highlighted
    assert plain.highlight_parts() is None
    assert outside.highlight_parts() is None
    empty = hand_quote(PLAIN, (4, 4))
    assert empty.highlight_parts() is None


# -- the server-rendered turn (no JavaScript) ---------------------------------------------------
class _Request:
    """What the turn template asks of a request: the article view's address."""

    def url_for(self, name: str, **params: str) -> URL:
        return URL(f"http://qa.test/articles/{params['article_id']}")


def render_turn(answer: Answer) -> str:
    env: jinja2.Environment = make_templates().env
    page = env.from_string(
        '{% from "_turn.html" import turn_item with context %}{{ turn_item(t) }}'
    )
    return page.render(t=Turn(question=answer.question, answer=answer), request=_Request())


def blockquotes(page: str) -> list[str]:
    return re.findall(r'<blockquote class="quote-text">(.*?)</blockquote>', page, flags=re.S)


def test_the_turn_template_bolds_the_words_as_escaped_text():
    hostile, plain, outside = blockquotes(render_turn(hand_answer()))
    at = HOSTILE.index(SCRIPT)
    assert hostile == (
        '<span class="quote-no">[1]</span> '
        + html.escape(HOSTILE[:at])
        + '<strong class="answer-words">&lt;script&gt;alert(1)&lt;/script&gt;</strong>'
        + html.escape(HOSTILE[at + len(SCRIPT) :])
    )
    assert "<script>" not in hostile and "<img" not in hostile
    # Without a highlight, or with one outside the quote, the quote is as it always was.
    assert plain == f'<span class="quote-no">[2]</span> {html.escape(PLAIN)}'
    assert outside == f'<span class="quote-no">[3]</span> {html.escape(PLAIN)}'


# -- terminal, /v1 and MCP text -----------------------------------------------------------------
def test_terminal_bold_only_when_asked_and_only_the_words():
    answer = hand_answer()
    plain = answer_text(answer, width=40)
    bold = answer_text(answer, width=40, bold=True)
    assert "\x1b" not in plain
    assert ANSI.sub("", bold) == plain  # same words, same wrapping
    segments = re.findall(r"\x1b\[1m(.*?)\x1b\[0m", bold, flags=re.S)
    assert ["".join(s.split()) for s in segments] == ["".join(SCRIPT.split())]
    # A quote without a highlight prints as before, bold or not.
    no_highlight = answer.model_copy(update={"quotes": answer.quotes[1:2]})
    assert answer_text(no_highlight, bold=True) == answer_text(no_highlight)
    assert f'[1] "{PLAIN}"' in answer_text(no_highlight)


def test_markdown_bold_in_the_v1_and_mcp_replies():
    answer = hand_answer()
    hostile, plain, outside = answer.quotes
    at = HOSTILE.index(SCRIPT)
    bolded = f"{HOSTILE[:at]}**{SCRIPT}**{HOSTILE[at + len(SCRIPT) :]}"
    assert quote_markdown(hostile) == bolded
    assert quote_markdown(plain) == PLAIN and quote_markdown(outside) == PLAIN
    for text in (chat_text(answer, lambda q: "http://qa.test/"), mcp_text(answer)):
        assert f"[1] “{bolded}”" in text
        assert f"[2] “{PLAIN}”" in text and f"[3] “{PLAIN}”" in text
    # Markdown sees bold only when the ** touch the words: edge spaces go outside.
    spaced = hand_quote(PLAIN, (3, 10))  # " lamp t"
    assert quote_markdown(spaced) == "The **lamp t**urns every ten seconds on winter nights."


@pytest.mark.two_processes
def test_qa_ask_piped_is_plain_and_at_a_terminal_bolds_the_words(seed_index):
    from qa.answering import Answerer
    from qa.settings import Settings

    answer = Answerer(Settings(index_dir=seed_index)).ask(QUESTION)
    top = answer.quotes[0]
    assert answer.answered and top.highlight is not None and top.highlighted
    cmd = [sys.executable, "-m", "qa.cli", "ask", QUESTION, "--index-dir", str(seed_index)]
    piped = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout
    assert piped.stdout == answer_text(answer) + "\n"

    at_terminal = run_in_a_terminal(cmd)
    assert ANSI.sub("", at_terminal) == piped.stdout
    segments = re.findall(r"\x1b\[1m(.*?)\x1b\[0m", at_terminal, flags=re.S)
    assert len(segments) == sum(1 for q in answer.quotes if q.highlight_parts())
    assert "".join(segments[0].split()) == "".join(top.highlighted.split())


def run_in_a_terminal(cmd: list[str]) -> str:
    """`cmd`'s stdout when it is a terminal (a pseudo-terminal), newlines as \\n."""
    master, slave = os.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, cwd=PROJECT)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


# -- the pages and the widget in Chromium ------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    require_chromium(playwright_installed=sync_playwright is not None)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("highlight-site")


@pytest.fixture(scope="module")
def site(site_dir) -> Iterator[str]:
    with static_site(site_dir) as origin:
        yield origin


@pytest.fixture(scope="module")
def server(chromium, seed_index, site, site_dir) -> Iterator[LiveServer]:
    live = LiveServer(seed_index, cors_origins=[site]).start()
    (site_dir / "inline.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Widget</title></head>"
        f'<body><div id="ask-box"></div><script src="{live.base}/widget.js" '
        'data-qa-target="#ask-box" async></script></body></html>'
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def api_top(server) -> Quote:
    url = f"{server.base}/api/ask?" + urllib.parse.urlencode({"q": QUESTION})
    with urllib.request.urlopen(url, timeout=120) as resp:
        answer = Answer.model_validate_json(resp.read())
    top = answer.quotes[0]
    assert answer.answered and top.highlight is not None and top.highlighted
    return top


@pytest.fixture
def context(chromium):
    ctx = chromium.new_context()
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


def assert_bold_is_the_highlight(quote, expected: Quote, n: int = 1) -> None:
    """`quote` (a .quote-text) shows `expected` whole, with its highlight alone in bold."""
    expect(quote).to_be_visible()
    strong = quote.locator("strong.answer-words")
    expect(strong).to_have_count(1)
    assert strong.text_content() == expected.highlighted
    assert quote.text_content() == f"[{n}] {expected.text}"
    weight, wash = strong.evaluate(
        "el => [getComputedStyle(el).fontWeight, getComputedStyle(el).backgroundColor]"
    )
    assert int(weight) >= 700 and wash != "rgba(0, 0, 0, 0)", (weight, wash)


def ask(page, box_selector: str, question: str) -> None:
    box = page.locator(box_selector)
    box.fill(question)
    box.press("Enter")


@pytest.mark.two_processes
@pytest.mark.browser
@pytest.mark.parametrize("path", ["/", "/embed"])
def test_no_js_page_bolds_the_api_highlight(server, chromium, api_top, path):
    ctx = chromium.new_context(java_script_enabled=False)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(server.base + path)
        ask(page, "input[name=question]", QUESTION)
        page.wait_for_url(re.compile(r"#latest$"))
        assert_bold_is_the_highlight(page.locator("#latest .quote-text").first, api_top)
    finally:
        ctx.close()


@pytest.mark.two_processes
@pytest.mark.browser
def test_chat_script_bolds_the_api_highlight(server, context, api_top):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(server.base + "/")
    ask(page, "input[name=question]", QUESTION)
    assert_bold_is_the_highlight(page.locator("#latest .quote-text").first, api_top)
    assert page.url.endswith("/")  # answered in place, not by a form post
    watch.assert_clean()


@pytest.mark.two_processes
@pytest.mark.browser
def test_widget_bolds_the_api_highlight(server, site, context, api_top):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(site + "/inline.html")
    ask(page, "qa-widget input[name=question]", QUESTION)
    assert_bold_is_the_highlight(page.locator("qa-widget .quote-text").first, api_top)
    watch.assert_clean()


def serve_hand_answer(page) -> None:
    """/api/ask answers with the hand-built Answer, as JSON the way the API sends it."""
    body = hand_answer().model_dump_json()
    page.route(
        "**/api/ask*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=body),
    )


def assert_hand_answer_shown(page, scope: str) -> None:
    hostile, plain, outside = hand_answer().quotes
    quotes = page.locator(f"{scope} .quote-text")
    expect(quotes).to_have_count(3)
    assert_bold_is_the_highlight(quotes.nth(0), hostile, 1)
    for n, quote in ((2, plain), (3, outside)):
        assert quotes.nth(n - 1).locator("strong").count() == 0
        assert quotes.nth(n - 1).text_content() == f"[{n}] {quote.text}"
    assert page.locator(f"{scope} .quotes script, {scope} .quotes img").count() == 0


@pytest.mark.two_processes
@pytest.mark.browser
def test_chat_script_shows_a_hostile_highlight_as_text(server, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    serve_hand_answer(page)
    page.goto(server.base + "/")
    ask(page, "input[name=question]", "What did the keepers write?")
    assert_hand_answer_shown(page, "#latest")
    page.wait_for_timeout(300)  # give an injected onerror a chance to fire
    watch.assert_clean()


@pytest.mark.two_processes
@pytest.mark.browser
def test_widget_shows_a_hostile_highlight_as_text(server, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    serve_hand_answer(page)
    # A page of the server's own origin, so the stand-in answer needs no CORS.
    host = server.base + "/widget-host.html"
    page.route(
        host,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body='<!doctype html><div id="box"></div>'
            '<script src="/widget.js" data-qa-target="#box"></script>',
        ),
    )
    page.goto(host)
    ask(page, "qa-widget input[name=question]", "What did the keepers write?")
    assert_hand_answer_shown(page, "qa-widget")
    page.wait_for_timeout(300)
    watch.assert_clean()
