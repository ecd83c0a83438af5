// Upgrades the chat form: answers arrive in place through the JSON API, no reload.
// Without JavaScript the same form posts to the server, which renders the answer.
// Everything from the network is inserted as text (textContent), never parsed as HTML.
// The turns shown are sent back as `history`, so a follow-up question keeps its context;
// "New conversation" forgets them. The filter fields travel with every question.
(function () {
  "use strict";

  // Shared with the other face: static/quote-parts.js.
  var parts = qaQuoteParts;
  var el = parts.el, quoteWords = parts.quoteWords, httpUrl = parts.httpUrl;
  var searchedFor = parts.searchedFor;

  var form = document.querySelector("form.ask");
  var list = document.getElementById("conversation");
  if (!form || !list || !window.fetch) return;
  var input = form.querySelector("input[name=question]");
  var button = form.querySelector(".ask-button");
  var restartForm = document.getElementById("restart");
  var restart = form.querySelector(".new-conversation");
  var apiUrl = form.getAttribute("data-api");
  var articlesUrl = form.getAttribute("data-articles").replace(/\/$/, "");
  var linkTarget = form.getAttribute("data-link-target");
  var busy = false;
  var MAX_HISTORY = 20; // what /api/ask takes
  // Earlier turns, oldest first: {question, quotes} with the quotes as the API sent them.
  var history = [];
  var generation = 0; // bumped by "New conversation": a late answer must not rejoin it

  function remember(turn) {
    history.push(turn);
    if (history.length > MAX_HISTORY) history = history.slice(-MAX_HISTORY);
  }

  // Turns the server rendered (a deep link, or form posts before this script ran).
  list.querySelectorAll(".turn[data-turn]").forEach(function (li) {
    try {
      var turn = JSON.parse(li.getAttribute("data-turn"));
      if (turn && typeof turn.question === "string" && Array.isArray(turn.quotes)) {
        remember({ question: turn.question, quotes: turn.quotes });
      }
    } catch (e) {
      // not a turn we can send back: the conversation goes on without it
    }
  });

  function articleHref(quote) {
    return articlesUrl + "/" + encodeURIComponent(quote.article.id) +
      "?start=" + encodeURIComponent(quote.start) + "&end=" + encodeURIComponent(quote.end) +
      "#quote";
  }

  function newTurn(question) {
    var turn = el("li", "turn");
    var q = el("p", "question");
    q.append(el("span", "who", "You asked"), " ", el("span", "question-text", question));
    turn.append(q, el("div", "answer"));
    return turn;
  }

  function citation(quote) {
    var p = el("p", "citation");
    var link = el("a", "cite-link", quote.article.title);
    link.href = articleHref(quote);
    if (linkTarget) {
      link.target = linkTarget;
      link.rel = "noopener";
    }
    p.append(link);
    if (quote.article.published) p.append(el("span", "published", quote.article.published));
    var source = httpUrl(quote.article.url);
    if (source) {
      var a = el("a", "source-url", source.hostname);
      a.href = source.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      p.append(a);
    }
    var score = el("span", "score", "score ");
    var meter = el("meter");
    meter.min = 0;
    meter.max = 1;
    meter.low = 0.5;
    meter.optimum = 1;
    meter.value = Number(quote.score) || 0;
    score.append(meter, " " + (Number(quote.score) || 0).toFixed(2));
    p.append(score);
    return p;
  }

  function renderAnswer(box, answer) {
    if (!answer.answered || !answer.quotes || !answer.quotes.length) {
      var none = el("p", "not-found");
      none.append(el("strong", null, "Not found in the articles."), " ",
        el("span", null, answer.answer));
      box.append(none);
      return;
    }
    box.append(el("p", "lead", "From the articles, best match first:"));
    var ol = el("ol", "quotes");
    answer.quotes.forEach(function (quote, i) {
      var li = el("li", "quote");
      var text = el("blockquote", "quote-text");
      text.append(el("span", "quote-no", "[" + (i + 1) + "]"), " ");
      text.append(...quoteWords(quote));
      li.append(text, citation(quote));
      ol.append(li);
    });
    box.append(ol);
  }

  function renderError(box, message) {
    var p = el("p", "error");
    p.setAttribute("role", "alert");
    p.append(el("strong", null, "Could not answer."), " ", el("span", "error-text", message));
    box.append(p);
  }

  // The filter fields of the same form, as /api/ask takes them (empty ones are left out).
  function withFilters(body) {
    ["since", "until", "source"].forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && field.value) body[name] = field.value;
    });
    return body;
  }

  async function ask(question) {
    var response;
    try {
      response = await fetch(apiUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(withFilters({ question: question, history: history })),
      });
    } catch (e) {
      throw new Error("The server could not be reached. Check that it is running and try again.");
    }
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      var message = data && data.error && data.error.message;
      throw new Error(message || "The server answered with status " + response.status + ".");
    }
    if (!data) throw new Error("The server sent an answer that could not be read.");
    return data;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || busy) {
      input.focus();
      return;
    }
    busy = true;
    var previous = document.getElementById("latest");
    if (previous) previous.removeAttribute("id");
    var turn = newTurn(question);
    turn.id = "latest";
    var box = turn.querySelector(".answer");
    var pending = el("p", "pending", "Searching the articles…");
    pending.setAttribute("role", "status");
    box.append(pending);
    box.setAttribute("aria-busy", "true");
    form.setAttribute("aria-busy", "true");
    button.disabled = true;
    list.append(turn);
    if (restart) restart.hidden = false;
    input.value = "";
    turn.scrollIntoView({ block: "nearest" });
    var asked = generation;
    try {
      var answer = await ask(question);
      var searched = searchedFor(answer);
      if (searched) turn.insertBefore(searched, box);
      renderAnswer(box, answer);
      if (asked === generation) {
        remember({ question: answer.question, quotes: answer.quotes || [] });
      }
    } catch (error) {
      renderError(box, error.message);
      input.value = question; // keep it, so the user can edit and retry
    } finally {
      pending.remove();
      box.removeAttribute("aria-busy");
      form.removeAttribute("aria-busy");
      button.disabled = false;
      busy = false;
      input.focus();
      turn.scrollIntoView({ block: "nearest" });
    }
  });

  // Start over in place: the no-JavaScript button reloads the bare page instead.
  if (restartForm) {
    restartForm.addEventListener("submit", function (event) {
      event.preventDefault();
      generation += 1;
      history = [];
      list.replaceChildren();
      var sealed = form.querySelector("input[name=history]");
      if (sealed) sealed.remove(); // a form post must not bring the old turns back
      if (restart) restart.hidden = true;
      input.value = "";
      input.focus();
    });
  }
})();
