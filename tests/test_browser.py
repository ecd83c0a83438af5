"""The chat, the article view, the widget and the iframe in real headless Chromium,
against a live `qa serve`: with and without JavaScript, from another origin, and
with articles that try to inject script."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    LiveServer,
    PageWatch,
    build_index,
    require_chromium,
    static_site,
    write_hostile_corpus,
)
from tests.conftest import SAMPLES

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by require_chromium (a skip locally, a failure in CI)
    expect = sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.two_processes]

K_SPACE = "What is K-SPACE?"
K_SPACE_GOLD = re.compile("Korea Superior Pharma-pipeline|new drug development ecosystem")
# A follow-up that only the first question makes answerable: "it" is K-SPACE.
FOLLOW_UP = "When was it launched?"
ESTABLISHED = "Dec. 5, 2022"
LANTERN = "When is the Quillfeather lantern festival held?"
FERRY = "What departure codes does the Quillfeather ferry timetable list?"
MARKET = "What do the Quillfeather harbour market stall keepers chalk on their price boards?"
TIMEOUT_MS = 30_000

# A hostile host page: none of this may reach inside the widget's shadow root.
HOSTILE_CSS = (
    "<style>* { color: #f0f !important; letter-spacing: 4px; }"
    " button, input, form, ol, li, a, blockquote { display: none !important; }</style>"
)


def page_html(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"{HOSTILE_CSS}</head><body><h1>{title}</h1><p>Some host page text.</p>{body}"
        "</body></html>"
    )


@pytest.fixture(scope="module", autouse=True)
def _needs_a_browser() -> None:
    """Checked first, before the index and the server are built for nothing."""
    require_chromium(playwright_installed=sync_playwright is not None)


@pytest.fixture(scope="module")
def browser_index(tmp_path_factory, encoder_dir) -> Path:
    root = tmp_path_factory.mktemp("browser")
    hostile = write_hostile_corpus(root / "hostile")
    return build_index(root / "index", encoder_dir, [SAMPLES, hostile])


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("site")


@pytest.fixture(scope="module")
def site(site_dir) -> Iterator[str]:
    """Another origin (same host, other port) that embeds the widget and the iframe."""
    with static_site(site_dir) as origin:
        yield origin


@pytest.fixture(scope="module")
def server(browser_index, site, site_dir) -> Iterator[LiveServer]:
    live = LiveServer(browser_index, cors_origins=[site]).start()
    snippet = f'<script src="{live.base}/widget.js" data-qa-title="Ask the archive" async></script>'
    inline = (
        '<div id="ask-box"></div>'
        f'<script src="{live.base}/widget.js" data-qa-title="Ask the archive" '
        'data-qa-target="#ask-box" async></script>'
    )
    frame = (
        f'<iframe src="{live.base}/embed" title="Ask the archive" '
        'style="width:100%;height:480px;border:0"></iframe>'
    )
    (site_dir / "widget.html").write_text(page_html("Floating widget", snippet))
    (site_dir / "inline.html").write_text(page_html("Inline widget", inline))
    (site_dir / "iframe.html").write_text(page_html("Iframe", frame))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context()
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


def api_answer(server: LiveServer, question: str) -> dict:
    url = f"{server.base}/api/ask?" + urllib.parse.urlencode({"q": question})
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.loads(resp.read())


def watch_pending(page) -> None:
    """Record whether a pending (aria-busy) answer ever appears, however briefly."""
    page.evaluate(
        """() => {
            window.__sawPending = false;
            new MutationObserver(() => {
                const busy = document.querySelector('.answer[aria-busy="true"] .pending');
                if (busy && busy.textContent.includes('Searching')) window.__sawPending = true;
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )


def ask_on_chat(page, question: str) -> None:
    box = page.get_by_label("Your question")
    box.click()
    box.type(question)
    box.press("Enter")


def assert_mark_is_quote(page, quote_text: str) -> None:
    mark = page.locator("mark#quote")
    expect(mark).to_have_count(1)
    assert mark.text_content() == quote_text
    expect(mark).to_be_in_viewport()


def test_chat_answers_in_place_and_citation_highlights_the_quote(server, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(server.base + "/")
    page.evaluate("() => { window.__samePage = true; }")
    watch_pending(page)
    ask_on_chat(page, K_SPACE)

    first = page.locator("#conversation .turn .quote").first
    expect(first).to_be_visible()
    assert K_SPACE_GOLD.search(first.locator(".quote-text").text_content())
    assert page.evaluate("() => window.__samePage === true"), "the page reloaded"
    assert page.evaluate("() => window.__sawPending"), "no pending state was shown"
    assert page.evaluate("() => document.activeElement.id") == "question"
    expect(page.locator(".answer[aria-busy]")).to_have_count(0)

    expected = api_answer(server, K_SPACE)["quotes"][0]
    assert expected["text"] in first.locator(".quote-text").text_content()
    first.locator("a.cite-link").click()
    page.wait_for_url(re.compile(r"/articles/.+\?start=\d+&end=\d+#quote$"))
    assert_mark_is_quote(page, expected["text"])
    watch.assert_clean()
    assert watch.console_errors == []


def test_chat_script_sends_the_filter_with_the_question(server, context):
    page = context.new_page()
    page.goto(server.base + "/")
    page.evaluate("() => { window.__samePage = true; }")
    page.locator("details.filters summary").click()
    page.get_by_label("Published since").fill("2030-01-01")
    ask_on_chat(page, K_SPACE)
    expect(page.locator("#conversation .turn .not-found")).to_contain_text(
        "No indexed article matches the filter (published since 2030-01-01)"
    )
    assert page.evaluate("() => window.__samePage === true"), "the page reloaded"
    # Cleared, the same question is answered from the articles again.
    page.get_by_label("Published since").fill("")
    ask_on_chat(page, K_SPACE)
    expect(page.locator("#conversation > .turn").nth(1).locator(".quote").first).to_be_visible()


def test_a_second_question_is_appended_to_the_conversation(server, context):
    page = context.new_page()
    page.goto(server.base + "/")
    ask_on_chat(page, K_SPACE)
    expect(page.locator("#conversation .turn .quote").first).to_be_visible()
    ask_on_chat(page, "What is the boiling point of mercury on Jupiter?")
    expect(page.locator("#conversation > .turn")).to_have_count(2)
    expect(
        page.locator("#conversation > .turn").nth(1).locator(".not-found, .quote").first
    ).to_be_visible()


def test_chat_works_without_javascript(server, browser):
    ctx = browser.new_context(java_script_enabled=False)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        ask_on_chat(page, K_SPACE)
        page.wait_for_url(re.compile(r"/#latest$"))
        quote = page.locator("#latest .quote-text").first
        expect(quote).to_be_visible()
        assert K_SPACE_GOLD.search(quote.text_content())

        # The next question keeps the first turn (sealed in a hidden field).
        ask_on_chat(page, "How many business meetings did the Korea Pavilion hold?")
        page.wait_for_load_state()
        expect(page.locator("#conversation > .turn")).to_have_count(2)

        expected = api_answer(server, K_SPACE)["quotes"][0]
        page.locator("#conversation > .turn").first.locator("a.cite-link").first.click()
        page.wait_for_url(re.compile(r"/articles/.+#quote$"))
        assert_mark_is_quote(page, expected["text"])
    finally:
        ctx.close()


def test_widget_on_another_origin_answers_with_citation_links(server, site, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(site + "/widget.html")
    page.get_by_role("button", name="Ask the archive").click()
    box = page.locator("qa-widget input[name=question]")
    expect(box).to_be_focused()
    box.type(K_SPACE)
    box.press("Enter")

    quote = page.locator("qa-widget .quote-text").first
    expect(quote).to_be_visible()
    assert K_SPACE_GOLD.search(quote.text_content())
    link = page.locator("qa-widget a.cite-link").first
    href = link.get_attribute("href")
    assert href.startswith(server.base + "/articles/") and href.endswith("#quote")
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel")
    # The host page's hostile CSS did not leak in.
    style = quote.evaluate("el => [getComputedStyle(el).color, getComputedStyle(el).letterSpacing]")
    assert style[0] != "rgb(255, 0, 255)" and style[1] == "normal", style
    # The pieces it shares with the chat page came inside its own closure: no global.
    assert page.evaluate("typeof window.qaQuoteParts") == "undefined"

    with context.expect_page() as opened:
        link.click()
    article = opened.value
    article.wait_for_load_state()
    expected = api_answer(server, K_SPACE)["quotes"][0]
    assert_mark_is_quote(article, expected["text"])
    watch.assert_clean()


def test_iframe_embed_on_another_origin_answers(server, site, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto(site + "/iframe.html")
    frame = page.frame_locator("iframe")
    box = frame.get_by_label("Your question")
    box.type(K_SPACE)
    box.press("Enter")
    quote = frame.locator(".quote-text").first
    expect(quote).to_be_visible()
    assert K_SPACE_GOLD.search(quote.text_content())
    link = frame.locator("a.cite-link").first
    assert link.get_attribute("target") == "_blank"
    watch.assert_clean()


def record_asks(page) -> list[dict]:
    """The JSON bodies the page POSTs to /api/ask, in order."""
    bodies: list[dict] = []

    def on_request(request) -> None:
        if request.method == "POST" and request.url.endswith("/api/ask"):
            bodies.append(request.post_data_json)

    page.on("request", on_request)
    return bodies


def assert_follow_up_answered_from_context(turn) -> None:
    """`turn` (the follow-up's) quotes the founding date and says what it searched for."""
    expect(turn.locator(".quote-text").first).to_be_visible()
    searched = turn.locator(".searched-for")
    expect(searched).to_be_visible()
    expect(searched).to_contain_text("Searched for")
    assert searched.locator(".searched-text").text_content() not in ("", FOLLOW_UP)
    assert ESTABLISHED in turn.locator(".quotes").text_content()


def test_chat_follow_up_is_answered_from_the_conversation_until_it_is_cleared(server, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    asks = record_asks(page)
    page.goto(server.base + "/")
    page.evaluate("() => { window.__samePage = true; }")
    restart = page.get_by_role("button", name="New conversation")
    expect(restart).to_be_hidden()

    ask_on_chat(page, K_SPACE)
    turns = page.locator("#conversation > .turn")
    expect(turns.first.locator(".quote").first).to_be_visible()
    expect(restart).to_be_visible()
    ask_on_chat(page, FOLLOW_UP)
    expect(turns).to_have_count(2)
    assert_follow_up_answered_from_context(turns.nth(1))
    expect(turns.first.locator(".searched-for")).to_have_count(0)
    # The second question carried the first turn, with the quotes the API gave it.
    assert asks[0]["history"] == []
    (carried,) = asks[1]["history"]
    assert carried["question"] == K_SPACE
    assert carried["quotes"] == api_answer(server, K_SPACE)["quotes"]

    restart.click()
    expect(turns).to_have_count(0)
    expect(restart).to_be_hidden()
    expect(page.get_by_label("Your question")).to_be_focused()
    assert page.evaluate("() => window.__samePage === true"), "the page reloaded"

    ask_on_chat(page, FOLLOW_UP)
    expect(turns).to_have_count(1)
    expect(turns.first.locator(".quote, .not-found").first).to_be_visible()
    expect(page.locator(".searched-for")).to_have_count(0)
    assert asks[-1]["history"] == []
    watch.assert_clean()
    assert watch.console_errors == []


def test_chat_script_carries_on_a_conversation_the_server_rendered(server, context):
    page = context.new_page()
    asks = record_asks(page)
    page.goto(server.base + "/?" + urllib.parse.urlencode({"q": K_SPACE}))
    expect(page.locator("#latest .quote").first).to_be_visible()
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    ask_on_chat(page, FOLLOW_UP)
    turns = page.locator("#conversation > .turn")
    expect(turns).to_have_count(2)
    assert_follow_up_answered_from_context(turns.nth(1))
    assert [t["question"] for t in asks[0]["history"]] == [K_SPACE]


def test_no_js_follow_up_and_new_conversation(server, browser):
    ctx = browser.new_context(java_script_enabled=False)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_role("button", name="New conversation")).to_be_hidden()
        ask_on_chat(page, K_SPACE)
        page.wait_for_url(re.compile(r"/#latest$"))
        ask_on_chat(page, FOLLOW_UP)
        page.wait_for_load_state()
        turns = page.locator("#conversation > .turn")
        expect(turns).to_have_count(2)
        assert_follow_up_answered_from_context(turns.nth(1))

        page.get_by_role("button", name="New conversation").click()
        page.wait_for_url(re.compile(r"/\??$"))
        expect(turns).to_have_count(0)
        ask_on_chat(page, FOLLOW_UP)
        page.wait_for_load_state()
        expect(turns).to_have_count(1)
        expect(page.locator(".searched-for")).to_have_count(0)
    finally:
        ctx.close()


def test_widget_follow_up_is_answered_from_the_conversation(server, site, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    asks = record_asks(page)
    page.goto(site + "/widget.html")
    page.get_by_role("button", name="Ask the archive").click()
    restart = page.get_by_role("button", name="New conversation")
    expect(restart).to_be_hidden()
    box = page.locator("qa-widget input[name=question]")
    box.type(K_SPACE)
    box.press("Enter")
    turns = page.locator("qa-widget .log > .turn")
    expect(turns.first.locator(".quote-text").first).to_be_visible()
    box.type(FOLLOW_UP)
    box.press("Enter")
    expect(turns).to_have_count(2)
    assert_follow_up_answered_from_context(turns.nth(1))
    assert [t["question"] for t in asks[1]["history"]] == [K_SPACE]

    restart.click()
    expect(turns).to_have_count(0)
    expect(page.locator("qa-widget .empty")).to_be_visible()
    expect(box).to_be_focused()
    box.type(FOLLOW_UP)
    box.press("Enter")
    expect(turns).to_have_count(1)
    expect(turns.first.locator(".quote, .not-found").first).to_be_visible()
    expect(page.locator("qa-widget .searched-for")).to_have_count(0)
    assert asks[-1]["history"] == []
    watch.assert_clean()


def test_iframe_follow_up_is_answered_from_the_conversation(server, site, context):
    page = context.new_page()
    page.goto(site + "/iframe.html")
    frame = page.frame_locator("iframe")
    box = frame.get_by_label("Your question")
    box.type(K_SPACE)
    box.press("Enter")
    turns = frame.locator("#conversation > .turn")
    expect(turns.first.locator(".quote-text").first).to_be_visible()
    box.type(FOLLOW_UP)
    box.press("Enter")
    expect(turns).to_have_count(2)
    assert_follow_up_answered_from_context(turns.nth(1))
    frame.get_by_role("button", name="New conversation").click()
    expect(turns).to_have_count(0)


def test_the_dialog_detector_works(context):
    """Guards the XSS test below: a real alert() is caught by PageWatch."""
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    page.goto("about:blank")
    page.evaluate("() => alert('probe')")
    assert watch.dialogs == ["alert: probe"]


def test_hostile_articles_are_shown_as_text_and_never_run(server, site, context):
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)

    page.goto(server.base + "/")
    for question in (LANTERN, FERRY, MARKET):
        ask_on_chat(page, question)
        expect(page.locator("#conversation > .turn").last.locator(".quote").first).to_be_visible()
    text = page.locator("#conversation").text_content()
    for payload in (
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '"><svg onload=alert(1)>',
    ):
        assert payload in text, payload
    assert page.locator("a[href^='javascript:' i]").count() == 0
    assert page.locator("#conversation script, #conversation img, #conversation svg").count() == 0

    ferry = api_answer(server, FERRY)["quotes"][0]
    assert ferry["article"]["id"].startswith("quill/ferry?")
    page.locator("#conversation > .turn").nth(1).locator("a.cite-link").first.click()
    page.wait_for_url(re.compile(r"/articles/quill%2Fferry"))
    assert_mark_is_quote(page, ferry["text"])
    expect(page.locator("h1")).to_have_text(ferry["article"]["title"])
    assert page.locator("a[href^='javascript:' i]").count() == 0
    assert page.locator("article script, article img, article svg").count() == 0

    page.goto(server.base + "/articles")
    expect(page.locator(".article-list")).to_contain_text("Quillfeather ferry <script>")
    assert page.locator("a[href^='javascript:' i]").count() == 0

    # The same articles through the widget, inline in a page of another origin.
    page.goto(site + "/inline.html")
    box = page.locator("qa-widget input[name=question]")
    box.type(MARKET)
    box.press("Enter")
    quote = page.locator("qa-widget .quote-text").first
    expect(quote).to_be_visible()
    assert '"><svg onload=alert(1)>' in quote.text_content()
    assert page.locator("qa-widget a[href^='javascript:' i]").count() == 0

    page.wait_for_timeout(300)  # give any injected onerror/onload a chance to fire
    watch.assert_clean()


def test_screenshots_of_the_chat(server, browser):
    """Phone and desktop screenshots for a human to check (`make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport, scale in (
        ("chat-k-space.png", {"width": 375, "height": 740}, 2),
        ("chat-desktop.png", {"width": 1280, "height": 800}, 1),
    ):
        ctx = browser.new_context(viewport=viewport, device_scale_factor=scale)
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            page = ctx.new_page()
            page.goto(server.base + "/")
            ask_on_chat(page, K_SPACE)
            expect(page.locator("#conversation .quote").first).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / name))
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= viewport["width"], "the page scrolls sideways"
            if scale == 2:  # the phone: also the article view it links to
                page.locator("a.cite-link").first.click()
                expect(page.locator("mark#quote")).to_be_in_viewport()
                page.screenshot(path=str(SCREENSHOTS / "article-quote.png"))
        finally:
            ctx.close()
    assert (SCREENSHOTS / "chat-k-space.png").stat().st_size > 10_000


def test_screenshot_of_a_follow_up(server, browser):
    """The desktop chat after a follow-up, with what it searched for."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(server.base + "/")
        ask_on_chat(page, K_SPACE)
        expect(page.locator("#conversation .quote").first).to_be_visible()
        ask_on_chat(page, FOLLOW_UP)
        follow_up = page.locator("#conversation > .turn").nth(1)
        assert_follow_up_answered_from_context(follow_up)
        follow_up.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "chat-follow-up.png"))
    finally:
        ctx.close()
    assert (SCREENSHOTS / "chat-follow-up.png").stat().st_size > 10_000


def test_screenshot_of_the_widget(server, site, context):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    page.set_viewport_size({"width": 1024, "height": 720})
    page.goto(site + "/widget.html")
    page.get_by_role("button", name="Ask the archive").click()
    box = page.locator("qa-widget input[name=question]")
    box.type(K_SPACE)
    box.press("Enter")
    expect(page.locator("qa-widget .quote-text").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "widget.png"))
