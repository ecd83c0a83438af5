"""HTML pages to articles: metadata from the head, main text via trafilatura.

Invisible content (scripts, styles, templates, navigation, iframes and anything
marked hidden) is removed from the DOM *before* extraction: a reader never saw
it, so it must never be quoted as if the article said it. Trafilatura then picks
the main text; when it finds nothing (short pages) a plain walk over
`<main>`/`<article>`/`<body>` takes its place. Markup is only parsed, never run.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import lxml.etree
import lxml.html

from qa.errors import UnreadableFile
from qa.models import SourceArticle
from qa.readers import normalize_text, parse_published, title_from_filename

log = logging.getLogger(__name__)

_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "nav", "iframe")
_HIDING_STYLE = re.compile(
    r"(?<![\w-])(?:display\s*:\s*none|visibility\s*:\s*hidden)(?![\w-])", re.IGNORECASE
)
# Not article text, and noisy in the fallback walk (trafilatura drops them itself).
# fmt: off
_FALLBACK_DROP = (
    "head", "header", "footer", "aside", "form", "button", "select", "textarea",
    "svg", "canvas", "object", "embed", "audio", "video",
)
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details",
    "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
})
# fmt: on
_LIST_LINE = re.compile(r"^(?:[-*•] |\d+[.)] |\|)")
_WHITESPACE = re.compile(r"\s+")
_BR = "\ue000"  # marks a <br> while whitespace is collapsed


@dataclass
class _Meta:
    title: str | None = None
    url: str | None = None
    published: str | None = None
    author: str | None = None
    source: str | None = None


def extract_html(raw: str, origin: str) -> SourceArticle:
    """Extract one article from an HTML page; raise `UnreadableFile` if it has no text.

    `origin` is the file's path; it names the article and, when the page has no
    title, gives one. Malformed markup never raises: lxml repairs what it can.
    """
    root = _parse(raw)
    if root is None:
        raise UnreadableFile(f"{origin}: no article text found")
    meta = _metadata(root)
    _drop_invisible(root)
    meta.title = meta.title or _first_h1(root)

    text = _trafilatura_text(root) or _fallback_text(root)
    text = normalize_text(text)
    if meta.title:
        # The headline usually opens the body too; the title field already carries it.
        first, sep, rest = text.partition("\n\n")
        if sep and rest.strip() and _same(first, meta.title):
            text = normalize_text(rest)
    if not text:
        raise UnreadableFile(f"{origin}: no article text found")
    return SourceArticle(
        title=meta.title or title_from_filename(Path(origin)),
        text=text,
        origin=origin,
        url=meta.url,
        published=meta.published,
        author=meta.author,
        source=meta.source,
    )


# --------------------------------------------------------------------------- parsing


def _parse(raw: str) -> lxml.html.HtmlElement | None:
    # Parse from UTF-8 bytes: lxml refuses str input that carries an XML encoding
    # declaration, and the caller has already decoded the file.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        return lxml.html.document_fromstring(raw.encode("utf-8", "replace"), parser=parser)
    except (lxml.etree.ParserError, lxml.etree.LxmlError, ValueError):
        return None  # "Document is empty" and the like


def _text_of(element: lxml.html.HtmlElement) -> str:
    return " ".join(normalize_text(element.text_content()).split())


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _metadata(root: lxml.html.HtmlElement) -> _Meta:
    """Title, canonical URL, date, author and site from <head> (first value wins)."""
    metas: dict[str, str] = {}
    for element in root.iter("meta"):
        key = element.get("property") or element.get("name") or element.get("itemprop")
        content = element.get("content")
        if key and content and content.strip():
            metas.setdefault(key.strip().lower(), " ".join(content.split()))

    title_el = next(
        (t for t in root.iter("title") if not any(a.tag == "svg" for a in t.iterancestors())),
        None,
    )
    page_title = _text_of(title_el) if title_el is not None else ""

    canonical = None
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            canonical = link.get("href", "").strip() or None
            break

    published = None
    candidates = [
        metas.get("article:published_time"),
        metas.get("datepublished"),
        *(t.get("datetime") for t in root.iter("time")),
    ]
    for candidate in candidates:
        if candidate and (published := _iso_date(candidate)):
            break

    return _Meta(
        title=metas.get("og:title") or page_title or None,
        url=canonical or metas.get("og:url"),
        published=published,
        author=metas.get("author"),
        source=metas.get("og:site_name"),
    )


def _iso_date(value: str) -> str | None:
    """The full ISO value when valid, else its leading YYYY-MM-DD when that is valid."""
    value = value.strip()
    return parse_published(value) or parse_published(value[:10])


def _first_h1(root: lxml.html.HtmlElement) -> str | None:
    for h1 in root.iter("h1"):
        if text := _text_of(h1):
            return text
    return None


def _is_hidden(element: lxml.html.HtmlElement) -> bool:
    if element.tag in _INVISIBLE_TAGS or element.get("hidden") is not None:
        return True
    if (element.get("aria-hidden") or "").strip().lower() == "true":
        return True
    if element.tag == "dialog" and element.get("open") is None:
        return True  # a closed dialog is not rendered
    style = element.get("style")
    return bool(style and _HIDING_STYLE.search(style))


def _drop_invisible(root: lxml.html.HtmlElement) -> None:
    """Remove what a browser would not show, keeping the text that follows each element."""
    doomed = [el for el in root.iter() if isinstance(el.tag, str) and _is_hidden(el)]
    for element in doomed:
        if element.getparent() is None:  # the root itself is hidden: nothing is visible
            element.clear()
        else:
            element.drop_tree()


# --------------------------------------------------------------------------- trafilatura


@functools.cache
def _trafilatura() -> ModuleType | None:
    """Import trafilatura once; without it (or if it is broken) the plain walk is used."""
    try:
        import trafilatura
    except ImportError as exc:  # e.g. lxml>=5.2 without the separate lxml_html_clean
        log.warning("trafilatura unavailable (%s); using plain HTML text extraction", exc)
        return None
    return trafilatura


def _trafilatura_text(root: lxml.html.HtmlElement) -> str:
    trafilatura = _trafilatura()
    if trafilatura is None:
        return ""
    try:
        text = trafilatura.extract(
            copy.deepcopy(root),  # it edits the tree it is given
            include_comments=False,
            include_tables=True,
            favor_recall=True,
            output_format="txt",
        )
    except Exception as exc:  # a third-party bug must not cost the article: fall back
        log.warning("trafilatura failed (%s); using plain HTML text extraction", exc)
        return ""
    return _paragraphs(text or "")


def _paragraphs(text: str) -> str:
    """Trafilatura's txt puts one block per line: separate them by blank lines.

    Consecutive list items and table rows stay together, one per line.
    """
    out: list[str] = []
    previous = ""
    for line in normalize_text(text).split("\n"):
        if not line.strip():
            continue
        if out and not (_LIST_LINE.match(line) and _LIST_LINE.match(previous)):
            out.append("")
        out.append(line)
        previous = line
    return "\n".join(out)


# --------------------------------------------------------------------------- fallback


def _fallback_text(root: lxml.html.HtmlElement) -> str:
    """Blocks of `<main>`, else the largest `<article>`, else `<body>`, blank-line separated."""
    main = next(root.iter("main"), None)
    if main is None:
        articles = list(root.iter("article"))
        main = max(articles, key=lambda a: len(a.text_content()), default=None)
    if main is not None:
        return _walk_blocks(main)
    body = root.find("body")
    body = body if body is not None else root
    trimmed = copy.deepcopy(body)
    for element in [el for el in trimmed.iter(*_FALLBACK_DROP) if el is not trimmed]:
        if element.getparent() is not None:
            element.drop_tree()
    # Page chrome is dropped unless it is all there is.
    return _walk_blocks(trimmed) or _walk_blocks(body)


def _walk_blocks(top: lxml.html.HtmlElement) -> str:
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = _WHITESPACE.sub(" ", "".join(inline)).replace(_BR, "\n")
        inline.clear()
        text = "\n".join(line.strip() for line in text.split("\n")).strip()
        if text:
            blocks.append(text)

    def walk(element: lxml.html.HtmlElement) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "pre":
            flush()
            blocks.append(element.text_content().strip("\n"))  # code keeps its layout
        elif tag == "br":
            inline.append(_BR)
        elif tag in ("head", "title"):
            pass
        else:
            block = tag in _BLOCK_TAGS
            if block:
                flush()
            if tag == "li":
                inline.append("- ")
            elif tag in ("td", "th") and element.getprevious() is not None:
                inline.append(" | ")
            if tag and element.text:
                inline.append(element.text)
            for child in element:
                walk(child)
            if block:
                flush()
        if element is not top and element.tail:
            inline.append(element.tail)

    walk(top)
    flush()
    return _paragraphs("\n".join(blocks))
