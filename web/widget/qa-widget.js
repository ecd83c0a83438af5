/*
 * qa widget: an "ask the articles" chat box for any web page.
 *
 *   <script src="http://HOST:PORT/widget.js" data-qa-title="Ask the archive" async></script>
 *
 * Options (attributes of the script tag):
 *   data-qa-title   heading and button text (default "Ask the archive")
 *   data-qa-target  CSS selector of a container: the box is placed inline there,
 *                   instead of a floating button that opens a panel
 *   data-qa-k       quotes per answer, 1-20 (default: the server's)
 *
 * The API base is where this script was loaded from. Answers come from
 * BASE/api/ask, cross-origin: the server must list this page's origin in
 * QA_CORS_ORIGINS. Everything lives in a shadow root, so the page's CSS and the
 * widget's cannot affect each other; all text is inserted with textContent.
 * The turns shown are sent back as `history`, so a follow-up question keeps its
 * context; "New conversation" forgets them.
 *
 * The server serves this file inside one closure with ../static/quote-parts.js
 * (qa.web.app.widget_script), which defines `qaQuoteParts`; alone it does not run.
 */
(function () {
  "use strict";

  // Shared with the other face: static/quote-parts.js.
  var parts = qaQuoteParts;
  var el = parts.el, quoteWords = parts.quoteWords, httpUrl = parts.httpUrl;
  var searchedFor = parts.searchedFor;

  var script = document.currentScript;
  if (!script || !script.src) return;
  var base = new URL("./", script.src);
  var apiUrl = new URL("api/ask", base).href;
  var title = script.getAttribute("data-qa-title") || "Ask the archive";
  var targetSelector = script.getAttribute("data-qa-target");
  var k = parseInt(script.getAttribute("data-qa-k") || "", 10);
  var MAX_HISTORY = 20; // what /api/ask takes

  var CSS = [
    ":host { all: initial; display: block; }",
    ":host(.floating) { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; }",
    // The host element can still be styled by the page (and pass on inherited properties
    // such as letter-spacing), so the wrapper resets everything itself.
    ".qa { all: initial; display: block; color: #1d2430; text-align: left;",
    "  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif; }",
    ".qa *, .qa *::before, .qa *::after { box-sizing: border-box; }",
    "[hidden] { display: none !important; }",
    ".launcher { font: inherit; font-weight: 600; border: 0; border-radius: 999px;",
    "  padding: 10px 18px; background: #1f5fbf; color: #fff; cursor: pointer;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.2); }",
    ".launcher:hover { background: #174c9a; }",
    ".panel { display: flex; flex-direction: column; background: #fff;",
    "  border: 1px solid #d9dee7; border-radius: 12px; overflow: hidden; }",
    ":host(.floating) .panel { width: min(380px, calc(100vw - 32px));",
    "  height: min(520px, calc(100vh - 96px)); margin-bottom: 10px;",
    "  box-shadow: 0 10px 30px rgba(0,0,0,.2); }",
    ":host(.inline) .panel { min-height: 320px; max-height: 640px; }",
    ".head { display: flex; align-items: center; justify-content: space-between;",
    "  gap: 8px; padding: 10px 14px; background: #f4f6fa; border-bottom: 1px solid #d9dee7; }",
    ".head h2 { margin: 0; font-size: 16px; font-weight: 700; }",
    ".tools { display: flex; align-items: center; gap: 4px; }",
    ".restart { font: inherit; font-size: 13px; font-weight: 600; color: #1f5fbf;",
    "  background: #fff; border: 1px solid #d9dee7; border-radius: 999px; padding: 2px 10px;",
    "  cursor: pointer; }",
    ".restart:hover { border-color: #1f5fbf; }",
    ".close { font: inherit; font-size: 20px; line-height: 1; border: 0; background: none;",
    "  color: #5a6475; cursor: pointer; padding: 2px 6px; border-radius: 6px; }",
    ".log { list-style: none; margin: 0; padding: 12px 14px; overflow-y: auto; flex: 1;",
    "  display: flex; flex-direction: column; gap: 12px; }",
    ".empty { color: #5a6475; margin: 0; }",
    ".question { margin: 0 0 6px; font-weight: 600; overflow-wrap: anywhere; }",
    ".searched-for { margin: -4px 0 6px; font-size: 13px; color: #5a6475;",
    "  overflow-wrap: anywhere; }",
    ".searched-text { font-style: italic; }",
    ".who { display: block; font-size: 11px; text-transform: uppercase; letter-spacing: .04em;",
    "  color: #5a6475; }",
    ".quotes { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column;",
    "  gap: 8px; }",
    ".quote-text { margin: 0; padding-left: 10px; border-left: 3px solid #8fb3ea;",
    "  overflow-wrap: anywhere; }",
    ".quote-no { font-weight: 700; color: #1f5fbf; }",
    ".answer-words { font-weight: 700; background: #fff3c4; border-radius: 3px;",
    "  padding: 0 .1em; box-decoration-break: clone; -webkit-box-decoration-break: clone; }",
    ".citation { margin: 3px 0 0 13px; font-size: 13px; color: #5a6475; display: flex;",
    "  flex-wrap: wrap; gap: 2px 10px; }",
    ".citation a { color: #1f5fbf; font-weight: 600; overflow-wrap: anywhere; }",
    ".not-found, .error, .pending { margin: 0; padding: 8px 10px; border-radius: 8px; }",
    ".not-found, .pending { background: #f4f6fa; color: #3d4657; }",
    ".error { background: #fdeeee; color: #a61b1b; overflow-wrap: anywhere; }",
    "form { padding: 10px 14px 12px; border-top: 1px solid #d9dee7; background: #fff; }",
    "label { display: block; font-size: 13px; font-weight: 600; margin-bottom: 4px; }",
    ".row { display: flex; gap: 6px; }",
    "input { flex: 1; min-width: 0; font: inherit; padding: 8px 10px; color: #1d2430;",
    "  background: #fff; border: 1px solid #9aa5b8; border-radius: 8px; margin: 0; }",
    ".ask { font: inherit; font-weight: 600; padding: 8px 14px; border: 0; border-radius: 8px;",
    "  background: #1f5fbf; color: #fff; cursor: pointer; }",
    ".ask[disabled] { opacity: .6; cursor: progress; }",
    ".note { margin: 6px 0 0; font-size: 12px; color: #5a6475; }",
    ":focus-visible { outline: 3px solid #f5a000; outline-offset: 2px; }",
  ].join("\n");

  function articleHref(quote) {
    var path = "articles/" + encodeURIComponent(quote.article.id) + "?start=" +
      encodeURIComponent(quote.start) + "&end=" + encodeURIComponent(quote.end) + "#quote";
    return new URL(path, base).href;
  }

  function link(className, text, href) {
    var a = el("a", className, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function renderAnswer(box, answer) {
    if (!answer.answered || !answer.quotes || !answer.quotes.length) {
      box.append(el("p", "not-found", "Not found in the articles. " + answer.answer));
      return;
    }
    var ol = el("ol", "quotes");
    answer.quotes.forEach(function (quote, i) {
      var li = el("li", "quote");
      var text = el("blockquote", "quote-text");
      text.append(el("span", "quote-no", "[" + (i + 1) + "]"), " ");
      text.append(...quoteWords(quote));
      var cite = el("p", "citation");
      cite.append(link("cite-link", quote.article.title, articleHref(quote)));
      if (quote.article.published) cite.append(el("span", "published", quote.article.published));
      var source = httpUrl(quote.article.url);
      if (source) cite.append(link("source-url", source.hostname, source.href));
      cite.append(el("span", "score", "score " + (Number(quote.score) || 0).toFixed(2)));
      li.append(text, cite);
      ol.append(li);
    });
    box.append(ol);
  }

  async function ask(question, history) {
    var body = { question: question, history: history };
    if (k >= 1 && k <= 20) body.k = k;
    var response;
    try {
      response = await fetch(apiUrl, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new Error("Could not reach the archive (is this site allowed in its CORS origins?).");
    }
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.error && data.error.message) ||
        "The archive answered with status " + response.status + ".");
    }
    if (!data) throw new Error("The archive sent an answer that could not be read.");
    return data;
  }

  function build(inline) {
    var host = document.createElement("qa-widget");
    host.className = inline ? "inline" : "floating";
    var root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet &&
        "replaceSync" in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS); // not an inline <style>: passes a strict host-page CSP
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(el("style", null, CSS));
    }

    var wrap = el("div", "qa");
    var panel = el("section", "panel");
    panel.setAttribute("aria-label", title);
    var head = el("div", "head");
    var tools = el("div", "tools");
    var restart = el("button", "restart", "New conversation");
    restart.type = "button";
    restart.hidden = true;
    tools.append(restart);
    head.append(el("h2", null, title), tools);
    var log = el("ol", "log");
    log.setAttribute("aria-live", "polite");
    var emptyText = "Ask a question: the answer is quoted from the articles.";
    log.append(el("p", "empty", emptyText));
    var form = el("form");
    var label = el("label", null, "Your question");
    var input = el("input");
    input.type = "text";
    input.name = "question";
    input.required = true;
    input.autocomplete = "off";
    input.id = "qa-question";
    label.htmlFor = "qa-question";
    var button = el("button", "ask", "Ask");
    button.type = "submit";
    var row = el("div", "row");
    row.append(input, button);
    form.append(label, row, el("p", "note", "Answers are sentences quoted word for word."));
    panel.append(head, log, form);

    var launcher = null;
    if (!inline) {
      launcher = el("button", "launcher", title);
      launcher.type = "button";
      launcher.setAttribute("aria-expanded", "false");
      var close = el("button", "close", "×");
      close.type = "button";
      close.setAttribute("aria-label", "Close");
      tools.append(close);
      panel.hidden = true;
      var toggle = function (open) {
        panel.hidden = !open;
        launcher.setAttribute("aria-expanded", String(open));
        (open ? input : launcher).focus();
      };
      launcher.addEventListener("click", function () { toggle(panel.hidden); });
      close.addEventListener("click", function () { toggle(false); });
      panel.addEventListener("keydown", function (event) {
        if (event.key === "Escape") toggle(false);
      });
    }
    wrap.append(panel);
    if (launcher) wrap.append(launcher);
    root.append(wrap);

    var busy = false;
    // Earlier turns, oldest first: {question, quotes} with the quotes as the API sent them.
    var history = [];
    var generation = 0; // bumped by "New conversation": a late answer must not rejoin it
    restart.addEventListener("click", function () {
      generation += 1;
      history = [];
      log.replaceChildren(el("p", "empty", emptyText));
      restart.hidden = true;
      input.value = "";
      input.focus();
    });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var question = input.value.trim();
      if (!question || busy) return;
      busy = true;
      var empty = log.querySelector(".empty");
      if (empty) empty.remove();
      var turn = el("li", "turn");
      var q = el("p", "question");
      q.append(el("span", "who", "You asked"), el("span", null, question));
      var box = el("div", "answer");
      var pending = el("p", "pending", "Searching the articles…");
      box.append(pending);
      box.setAttribute("aria-busy", "true");
      turn.append(q, box);
      log.append(turn);
      restart.hidden = false;
      button.disabled = true;
      input.value = "";
      var asked = generation;
      try {
        var answer = await ask(question, history);
        var searched = searchedFor(answer);
        if (searched) turn.insertBefore(searched, box);
        renderAnswer(box, answer);
        if (asked === generation) {
          history.push({ question: answer.question, quotes: answer.quotes || [] });
          if (history.length > MAX_HISTORY) history = history.slice(-MAX_HISTORY);
        }
      } catch (error) {
        box.append(el("p", "error", error.message));
        input.value = question;
      } finally {
        pending.remove();
        box.removeAttribute("aria-busy");
        button.disabled = false;
        busy = false;
        input.focus();
        turn.scrollIntoView({ block: "nearest" });
      }
    });
    return host;
  }

  function mount() {
    var container = targetSelector ? document.querySelector(targetSelector) : null;
    if (container) container.append(build(true));
    else document.body.append(build(false));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
