"""Readers: what a user sees after `qa index` reads each supported format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.errors import UnreadableFile
from qa.html_text import extract_html
from qa.readers import (
    MAX_FILE_BYTES,
    iter_article_files,
    normalize_text,
    read_articles,
    read_file,
)

from .conftest import SHARED

FORMATS = Path(__file__).parent / "fixtures" / "formats"
CORPUS = SHARED / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")


def only(path: Path):
    articles, problems = read_file(path)
    assert len(articles) == 1, articles
    assert problems == []
    return articles[0]


# --------------------------------------------------------------------------- .txt


def test_txt_headline_becomes_title_and_is_removed_from_text() -> None:
    article = only(FORMATS / "harbour-ferry.txt")
    assert article.title == "Harbour ferry returns after winter repairs"
    assert article.text.startswith("The small passenger ferry")
    assert "Harbour ferry returns" not in article.text
    assert article.text.count("\n\n") == 2  # paragraphs kept
    assert article.origin == str((FORMATS / "harbour-ferry.txt").resolve())


def test_txt_without_standalone_headline_titles_from_file_name() -> None:
    article = only(FORMATS / "garden_notes.txt")
    assert article.title == "Garden notes"
    assert article.text.startswith("The community garden on Alder Street")


@needs_corpus
def test_bbc_article() -> None:
    article = only(CORPUS / "bbc" / "business" / "001.txt")
    assert article.title == "Ad sales boost Time Warner profit"
    assert article.text.startswith("Quarterly profits")


@needs_corpus
def test_bbc_article_in_windows_1252_decodes() -> None:
    article = only(CORPUS / "bbc" / "sport" / "199.txt")
    assert "£15.8m" in article.text


@needs_corpus
def test_seed_article_with_long_first_line_titles_from_file_name() -> None:
    article = only(CORPUS / "seed" / "kbr-bio2023-korea-pavilion.txt")
    assert article.title == "Kbr bio2023 korea pavilion"
    assert article.text.startswith("BOSTON, Mass.")
    assert "K-Space Platform" in article.text


# --------------------------------------------------------------------------- .md


def test_markdown_front_matter_heading_link_and_emphasis() -> None:
    article = only(FORMATS / "lighthouse-survey.md")
    assert article.title == "Lighthouse survey finds cracked lantern glass"
    assert article.id == "lighthouse-2024"
    assert article.url == "https://example.org/news/lighthouse-survey"
    assert article.published == "2024-03-18"
    assert article.author == "Rina Okafor"
    assert article.source == "Coastal Gazette"
    text = article.text
    assert text.startswith("A structural survey of the Greystone Point lighthouse")
    assert "according to the heritage trust." in text
    assert "replace the panes" in text and "*" not in text
    assert "beacon_lamp" in text and "Fun_fact_words" in text  # underscores inside words stay
    assert "What happens next" in text and "#" not in text
    assert "- Scaffolding goes up in May\n- Glass arrives in June" in text
    assert "Photo of the lantern room" in text and "lantern.jpg" not in text
    assert "beacon status: ok" in text and "```" not in text
    assert "Visitors remain welcome." in text and "<span" not in text
    for leftover in ("---", "title:", "https://", "Lighthouse survey finds"):
        assert leftover not in text


def test_markdown_setext_heading_is_title() -> None:
    article = only(FORMATS / "quiet-library.md")
    assert article.title == "Quiet library"
    assert article.text == "The reading room now closes at eight on weekdays."


def test_markdown_inline_html_is_text_not_code(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text(
        "# Note\n\nBefore <script>alert('scriptmarker')</script> after.\n\n<!-- commentmarker -->\n"
        "Escaped \\*stars\\* stay.\n",
        encoding="utf-8",
    )
    text = only(path).text
    assert "scriptmarker" not in text and "commentmarker" not in text
    assert text.startswith("Before") and "after." in text
    assert "Escaped *stars* stay." in text


# --------------------------------------------------------------------------- .html

HIDDEN_MARKERS = (
    "scriptmarkerwalrus",
    "stylemarkerzebra",
    "navmarkerotter",
    "hiddenmarkerpelican",
    "displaymarkerheron",
    "ariamarkerbadger",
    "noscriptmarkerlynx",
)


def test_html_main_text_without_scripts_hidden_or_navigation() -> None:
    article = only(FORMATS / "night-market.html")
    assert article.title == "Night market opens on the riverbank"  # og:title beats <title>
    assert article.url == "https://example.org/riverside/night-market"
    assert article.published == "2024-05-02T18:30:00Z"
    assert article.author == "Tomas Lindqvist"
    assert article.text.startswith("More than sixty food stalls")
    assert "live music on the small stage" in article.text
    assert "late buses for visitors" in article.text
    assert article.text.count("\n\n") >= 2  # paragraphs separated by blank lines
    for marker in HIDDEN_MARKERS:
        assert marker not in article.text, marker


def test_short_html_page_uses_title_tag_and_fallback_text() -> None:
    article = only(FORMATS / "short-notice.htm")
    assert article.title == "Pool closed"
    assert article.text == (
        "The public pool is closed for cleaning on Tuesday.\n\nIt reopens Wednesday at seven."
    )


def test_html_title_falls_back_to_h1_then_file_name() -> None:
    page = "<html><body><h1>Market day</h1><p>Stalls open at nine.</p></body></html>"
    assert extract_html(page, "/x/page.html").title == "Market day"
    bare = extract_html("<p>Stalls open at nine.</p>", "/x/market-day.html")
    assert bare.title == "Market day"
    assert bare.text == "Stalls open at nine."


@pytest.mark.parametrize(
    "page",
    [
        "<html><body><script>only()</script></body></html>",
        "<!-- nothing -->",
        "<div style='visibility: HIDDEN'>gone</div>",
    ],
)
def test_html_without_visible_text_is_unreadable(page: str) -> None:
    with pytest.raises(UnreadableFile, match="no article text found"):
        extract_html(page, "/x/empty.html")


def test_malformed_html_does_not_raise() -> None:
    article = extract_html("<body><p>Unclosed <b>bold <i>words</body", "/x/broken.html")
    assert article.text == "Unclosed bold words"


# --------------------------------------------------------------------------- JSON


def test_json_list_reads_good_items_and_reports_bad_ones() -> None:
    path = FORMATS / "museum-news.json"
    articles, problems = read_file(path)
    origin = str(path.resolve())
    assert [a.origin for a in articles] == [f"{origin}#1", f"{origin}#2"]
    whale, tours = articles
    assert whale.title == "Museum adds a whale skeleton"
    assert whale.id == "101"  # integer ids become strings
    assert (whale.url, whale.published, whale.author, whale.source) == (
        "https://example.org/museum/whale",
        "2024-01-09",
        "Priya Natarajan",
        "City Desk",
    )
    # No title: the first sentence; `body` is accepted for the text.
    assert tours.title == "Evening tours of the museum will start in February"
    assert tours.text.startswith("Evening tours")
    assert tours.published is None  # an invalid date is dropped, the article kept
    assert len(problems) == 3
    assert "item 2" in problems[0] and "last Tuesday" in problems[0]
    assert "item 3" in problems[1] and "no article text" in problems[1]
    assert "item 4" in problems[2] and "expected a JSON object" in problems[2]


def test_jsonl_bad_line_is_reported_with_its_number_and_good_lines_read() -> None:
    path = FORMATS / "bulletins.jsonl"
    articles, problems = read_file(path)
    assert [a.id for a in articles] == ["b1", "b3"]
    assert [a.origin.rsplit("#", 1)[1] for a in articles] == [
        "1",
        "4",
    ]  # file line numbers
    assert articles[0].published == "2024-02-01T08:00:00Z"
    # Markup inside `text` is stored verbatim as text, not parsed.
    assert articles[1].text == "<p>Gritters will treat <b>main roads</b> first.</p>"
    assert len(problems) == 1
    assert "line 3" in problems[0] and "invalid JSON" in problems[0]
    assert read_articles(path) == articles


def test_derived_title_is_cut_at_a_word_boundary(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text('{"text": "' + "word " * 40 + '"}', encoding="utf-8")
    title = only(path).title
    assert title.endswith("…") and len(title) <= 80
    assert title[:-1].split() == ["word"] * len(title[:-1].split())


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.json", '{"title": "x", "text": ', "invalid JSON at line 1"),
        ("number.json", "42", "expected a JSON object or a list"),
        ("notext.json", '{"title": "Only a title"}', "no article text"),
        ("allbad.jsonl", "nope\n{]\n", "line 1: invalid JSON"),
    ],
)
def test_json_without_any_article_is_unreadable(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UnreadableFile, match=reason):
        read_articles(path)


# --------------------------------------------------------------------------- unreadable


def test_empty_and_whitespace_files_are_unreadable() -> None:
    with pytest.raises(UnreadableFile, match=r"empty\.txt: empty file"):
        read_file(FORMATS / "empty.txt")
    with pytest.raises(UnreadableFile, match=r"blank\.md: file contains only whitespace"):
        read_file(FORMATS / "blank.md")


def test_binary_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(UnreadableFile, match="binary file, not text"):
        read_file(path)


def test_missing_unsupported_directory_and_oversized(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="no such file"):
        read_file(tmp_path / "missing.txt")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(UnreadableFile, match=r"unsupported file type \.pdf \(supported: \.txt"):
        read_file(pdf)
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_file(tmp_path)
    big = tmp_path / "big.txt"
    with big.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no 20 MB written
    with pytest.raises(UnreadableFile, match="file too large"):
        read_file(big)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("Title\n\nBody.", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(UnreadableFile, match="permission denied"):
        read_file(path)


def test_encodings(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffCafé news\n\nThe café reopened.".encode())
    assert only(bom).title == "Café news"
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("Wide news\n\nStored as UTF-16.", encoding="utf-16")
    assert only(utf16).text == "Stored as UTF-16."
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Prices\n\nA ticket costs £5 – cheap.".encode("cp1252"))
    assert only(latin).text == "A ticket costs £5 – cheap."


# --------------------------------------------------------------------------- normalisation


def test_text_is_normalised_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "messy.txt"
    raw = "\n\n  \nHeadline  \r\n\r\nfirst\x1b line   \rsecond\x07 line\n\n\n\n\nCafe\u0301 \t\n\n"
    path.write_bytes(raw.encode())
    article = only(path)
    assert article.title == "Headline"
    assert article.text == "first line\nsecond line\n\nCafé"
    assert normalize_text(article.text) == article.text
    # NUL bytes make a file binary, but an escaped NUL in JSON is just removed.
    assert normalize_text("a\x00b\u2028c\td") == "ab\nc\td"
    path = tmp_path / "nul.json"
    path.write_text('{"title": "T", "text": "x\\u0000y"}', encoding="utf-8")
    assert only(path).text == "xy"


# --------------------------------------------------------------------------- files


def test_iter_article_files_is_recursive_sorted_and_skips_hidden(
    tmp_path: Path,
) -> None:
    for name in (
        "b/z.md",
        "b/a.TXT",
        "a.html",
        "c/d/e.jsonl",
        "notes.pdf",
        "README.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    for name in (".hidden.txt", ".git/config.json", "b/.cache/x.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = list(iter_article_files([tmp_path]))
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.html",
        "b/a.TXT",
        "b/z.md",
        "c/d/e.jsonl",
    ]
    assert found == sorted(found)


def test_iter_article_files_keeps_explicit_bad_paths_for_reporting(
    tmp_path: Path,
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF")
    missing = tmp_path / "missing.txt"
    good = FORMATS / "harbour-ferry.txt"
    assert list(iter_article_files([missing, pdf, good, good])) == [missing, pdf, good]


@needs_corpus
def test_iter_article_files_over_bbc_corpus() -> None:
    files = list(iter_article_files([CORPUS / "bbc"]))
    assert len(files) == 2225  # the articles; the corpus README is not one
    assert files == sorted(files)
