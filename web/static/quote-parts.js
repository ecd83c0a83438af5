// The pieces of a rendered answer that the chat page (chat.js) and the embeddable
// widget (widget/qa-widget.js) share, so a quote's bold words, a source link and the
// "Searched for" line are made one way in both. The page loads this file before
// chat.js; the server wraps it with the widget in one closure (qa/web/app.py), so the
// widget stays a single script and adds no global to the sites that embed it.
// Everything from the network is inserted as text (textContent), never parsed as HTML.
var qaQuoteParts = (function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The quote's text with the words that answer (its `highlight`) in bold, as text nodes.
  // Offsets count code points, as the server's do; plain text when the highlight is
  // missing or does not lie inside the quote.
  function quoteWords(quote) {
    var chars = Array.from(String(quote.text));
    var h = quote.highlight;
    var a = h ? h.start - quote.start : NaN;
    var b = h ? h.end - quote.start : NaN;
    if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a < b && b <= chars.length)) {
      return [chars.join("")];
    }
    return [chars.slice(0, a).join(""), el("strong", "answer-words", chars.slice(a, b).join("")),
      chars.slice(b).join("")];
  }

  // An article's source URL when it is http(s); never a javascript: or data: link.
  function httpUrl(value) {
    if (!value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url : null;
    } catch (e) {
      return null;
    }
  }

  // "Searched for: ..." when a follow-up was rewritten to stand alone, else null.
  function searchedFor(answer) {
    var searched = answer.standalone_question;
    if (!searched || searched === answer.question) return null;
    var p = el("p", "searched-for", "Searched for: ");
    p.append(el("span", "searched-text", searched));
    return p;
  }

  return { el: el, quoteWords: quoteWords, httpUrl: httpUrl, searchedFor: searchedFor };
})();
