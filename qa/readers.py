"""Readers: turn article files (.txt, .md, .html, .json, .jsonl, .jsonl.gz) into `SourceArticle`s.

The `text` a reader produces is what quote offsets index into, so every format
goes through one `normalize_text` that is deterministic and idempotent: reading
the same file twice always gives the same characters.

Errors: a file that cannot be used at all raises `UnreadableFile("<path>:
<reason>")`; a file holding several articles (JSON list, JSON lines) keeps its
good records and reports the bad ones as problems instead of failing whole.

A single document is at most 20 MB; a JSON-lines export (`.jsonl`, or gzipped
`.jsonl.gz`) may be any size: `stream_file` reads it line by line, one
article at a time, so indexing a bulk export never holds it in memory.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from qa.errors import UnreadableFile
from qa.models import SourceArticle

MAX_FILE_BYTES = 20 * 1024 * 1024
"""Larger single documents and uploads are rejected: no article is that long, and reading
one would stall indexing. JSON-lines files are streamed instead, each line held to it."""

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".txt",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".json",
    ".jsonl",
    ".jsonl.gz",
)
STREAMED_SUFFIXES = (".jsonl", ".jsonl.gz")  # one article per line: read line by line

# Project documentation that commonly sits beside a corpus (the BBC set ships a
# README.TXT): skipped when a directory is expanded, still read when named explicitly.
_NON_ARTICLE_STEMS = frozenset(
    {
        "readme",
        "license",
        "licence",
        "copying",
        "changelog",
        "notice",
        "authors",
        "contributing",
    }
)

_TITLE_MAX = 200  # a .txt first line longer than this is a paragraph, not a headline
_DERIVED_TITLE_MAX = 80

# --------------------------------------------------------------------------- files


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def file_suffix(path: Path) -> str:
    """The format's suffix, lower-cased: `.jsonl.gz` counts as one."""
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def _is_supported(path: Path) -> bool:
    return file_suffix(path) in SUPPORTED_SUFFIXES


def _walk(directory: Path) -> Iterator[Path]:
    """Depth-first, entries sorted by name, so the order equals sorting the paths."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        # Yield the directory itself so `read_file` reports why it cannot be listed.
        yield directory
        return
    for entry in entries:
        if _is_hidden(entry.name):
            continue
        path = Path(entry.path)
        try:
            # Symlinked directories are not followed: they can loop.
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(path)
        elif _is_supported(path) and path.name.lower().split(".")[0] not in _NON_ARTICLE_STEMS:
            yield path


def iter_article_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Expand files and directories (recursively) into the files to read, deterministically.

    Directories contribute their supported, non-hidden files in sorted order. A path
    named explicitly is always yielded, even when missing or of an unsupported type,
    so that `read_file` raises `UnreadableFile` for it and the caller can report it
    instead of it vanishing silently. Each file is yielded once.
    """
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        candidates = _walk(path) if path.is_dir() else iter((path,))
        for candidate in candidates:
            key = os.path.abspath(candidate)
            if key not in seen:
                seen.add(key)
                yield candidate


# --------------------------------------------------------------------------- text


_LINE_BREAKS = re.compile(r"[\x0b\x0c\x85\u2028\u2029]")
# C0/C1 controls other than \t and \n (already normalised), plus stray byte-order marks.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Clean text into its stored, offset-stable form (idempotent).

    Newlines become "\\n", control characters other than \\n and \\t go, Unicode is
    NFC, trailing whitespace is stripped per line, two or more blank lines collapse
    to one (a paragraph break) and leading/trailing blank lines are removed.
    """
    # The `in`/`isprintable` probes are fast paths: the regexes cost more than the
    # rest of reading a typical article, and most texts need none of them.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.replace("\n", "").replace("\t", "").isprintable():
        text = _LINE_BREAKS.sub("\n", text)
        text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


def _one_line(text: str) -> str:
    """Titles and metadata are single lines with single spaces."""
    return " ".join(normalize_text(text).split())


def title_from_filename(path: Path) -> str:
    """'bbc-ad_sales' -> 'Bbc ad sales': the fallback title when the file has none."""
    words = " ".join(re.sub(r"[-_]+", " ", path.stem).split())
    return words[:1].upper() + words[1:] if words else "Untitled"


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def title_from_text(text: str) -> str:
    """First sentence of the first line, cut to 80 characters at a word boundary."""
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    first = " ".join(first.split())
    end = _SENTENCE_END.search(first)
    if end:
        first = first[: end.start()]
    if len(first) <= _DERIVED_TITLE_MAX:
        return first or "Untitled"
    cut = first[: _DERIVED_TITLE_MAX - 1]
    space = cut.rfind(" ")
    if space > _DERIVED_TITLE_MAX // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def parse_published(value: str) -> str | None:
    """Return the ISO date/datetime string if valid, else None.

    A trailing "Z" is accepted (Python 3.11's `fromisoformat` takes it, older
    ones do not, so it is normalised before validating); the value is kept as given.
    """
    value = value.strip()
    if not value:
        return None
    probe = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        datetime.fromisoformat(probe)
    except ValueError:
        return None
    return value


# --------------------------------------------------------------------------- bytes


def _fail(path: Path, reason: str) -> UnreadableFile:
    return UnreadableFile(f"{path}: {reason}")


_BULK_HINT = " (a bulk export of any size can be given as .jsonl, one article per line)"


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise _fail(path, "is a directory")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            reason = f"file too large ({size / 1e6:.1f} MB; the limit is 20 MB)"
            raise _fail(path, reason + _BULK_HINT)
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory") from None
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:  # grew between stat and read
        raise _fail(path, "file too large (the limit is 20 MB)")
    return data


_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _looks_like_text(text: str) -> bool:
    """Binary data decoded as cp1252 is full of control characters; text is not."""
    if text.isascii() and text.replace("\n", "").replace("\t", "").isprintable():
        return True  # fast path for plain text
    # Random bytes are ~10% C0 controls; allow stray ones (escape codes) up to 5%.
    return len(_BINARY_CONTROLS.findall(text)) * 20 <= len(text)


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252 if that reads as text."""
    if not data:
        raise _fail(path, "empty file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _fail(path, "not valid UTF-16 text") from None
    if b"\x00" in data:
        raise _fail(path, "binary file, not text (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise _fail(path, "not a text file (neither UTF-8 nor Windows-1252)") from None
    if not _looks_like_text(text):
        raise _fail(path, "binary file, not text (too many control characters)")
    return text


# --------------------------------------------------------------------------- formats


def _read_txt(text: str, path: Path, origin: str) -> SourceArticle:
    text = normalize_text(text)
    first, sep, rest = text.partition("\n\n")
    title = first.strip()
    # A headline is one short line standing alone above the body.
    if sep and rest.strip() and "\n" not in first and len(title) <= _TITLE_MAX:
        # `rest` is already normalised: it follows a paragraph break, not a blank line.
        return SourceArticle(title=_one_line(title), text=rest, origin=origin)
    return SourceArticle(title=title_from_filename(path), text=text, origin=origin)


# Markdown ------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_RULE = re.compile(r"^(?=.*\|)(?=.*-)[\s|:-]+$")  # |---|:-:| under a table header
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$")
_BULLET = re.compile(r"^(\s*)[*+-][ \t]+")
_QUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
# Code spans come first in the alternation, so HTML written inside one stays text.
_HTML_BLOCKS = re.compile(
    r"(`+)[^\n]*?\1|<!--.*?-->|<(script|style|template)\b[^>]*>.*?</\2\s*>",
    re.DOTALL | re.IGNORECASE,
)

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_STRONG = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*")
_EM_UNDER = re.compile(r"(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
# Private-use characters protect escaped characters and code spans from the
# emphasis/link rules; they are restored at the end of each line.
_PUA = 0xE000
_SLOT = re.compile("[\ue000-\uefff]")


def _md_inline(line: str) -> str:
    """Strip inline Markdown syntax, keeping the words a reader sees."""
    stash: list[str] = []

    def keep(text: str) -> str:
        stash.append(text)
        return chr(_PUA + len(stash) - 1)

    line = _ESCAPE.sub(lambda m: keep(m.group(1)), line)
    line = _CODE_SPAN.sub(lambda m: keep(m.group(2).strip()), line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(lambda m: keep(m.group(1)), line)
    line = _TAG.sub("", line)
    for _ in range(2):  # nested emphasis such as ***word***
        line = _STRONG.sub(r"\2", line)
        line = _EM_STAR.sub(r"\1", line)
        line = _EM_UNDER.sub(r"\1", line)
    line = _unescape_entities(line)
    return _SLOT.sub(lambda m: stash[ord(m.group()) - _PUA], line) if stash else line


def _unescape_entities(text: str) -> str:
    if "&" not in text:
        return text
    import html

    return html.unescape(text)


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Parse a leading `---` block of simple `key: value` lines; return (fields, rest)."""
    if not lines or lines[0].strip() != "---":
        return {}, lines
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, lines  # no closing line: a thematic break, not front matter
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, colon, value = line.partition(":")
        if colon and key.strip() and not line[:1].isspace():
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            fields[key.strip().lower()] = value
    return fields, lines[end + 1 :]


def _read_markdown(raw: str, path: Path, origin: str, problems: list[str]) -> SourceArticle:
    lines = normalize_text(raw).split("\n")
    meta, lines = _front_matter(lines)
    fm_title = _one_line(meta.get("title", ""))

    out: list[str] = []
    h1: str | None = None  # the first level-1 heading's words ...
    h1_at = -1  # ... and its index in `out`
    fence: str | None = None
    prose: list[str] = []

    def flush_prose() -> None:
        nonlocal h1, h1_at
        # Comments and script/style blocks may span lines: drop them before line rules.
        joined = "\n".join(prose)
        block = (
            _HTML_BLOCKS.sub(lambda m: m[0] if m[1] else "", joined).split("\n") if prose else []
        )
        prose.clear()
        for i, line in enumerate(block):
            previous = out[-1] if i else ""  # the converted line above, within this block
            if m := _ATX.match(line):
                words = _md_inline(m.group(2) or "")
                if m.group(1) == "#" and h1 is None and words:
                    h1, h1_at = words, len(out)
                out.append(words)
            elif _SETEXT.match(line) and previous.strip() and not _BULLET.match(previous):
                if line.strip()[0] == "=" and h1 is None:
                    h1, h1_at = previous, len(out) - 1
                out.append("")  # drop the underline, the heading's words stay
            elif _THEMATIC.match(line) or _TABLE_RULE.match(line) or _LINK_DEF.match(line):
                out.append("")
            else:
                line = _QUOTE.sub("", line)
                line = _BULLET.sub(r"\1- ", line)
                out.append(_md_inline(line))

    for line in lines:
        m = _FENCE.match(line)
        if fence is None and m:
            flush_prose()
            fence = m.group(1)
        elif fence is not None:
            closing = m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closing and not line.strip().strip(fence[0]):
                fence = None
                continue
            out.append(line)  # code is kept verbatim
        else:
            prose.append(line)
    flush_prose()

    title = fm_title or h1 or ""
    if h1 is not None and (not fm_title or h1.casefold() == fm_title.casefold()):
        del out[h1_at]
    text = normalize_text("\n".join(out))
    if not title:
        title = title_from_filename(path)

    published = None
    raw_published = meta.get("published") or meta.get("date")
    if raw_published:
        published = parse_published(raw_published)
        if published is None:
            problems.append(f"{path}: invalid published date {raw_published!r} ignored")
    return SourceArticle(
        title=_one_line(title),
        text=text,
        origin=origin,
        id=meta.get("id") or None,
        url=meta.get("url") or None,
        published=published,
        author=meta.get("author") or None,
        source=meta.get("source") or None,
    )


# JSON ----------------------------------------------------------------------

_TEXT_FIELDS = ("text", "body", "content")


def _json_str(value: Any) -> str | None:
    """Scalars and lists of strings become one string; anything else is rejected."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(v.strip() for v in value if v.strip())
    return None


def _article_from_object(
    obj: Any, origin: str, where: str, problems: list[str]
) -> SourceArticle | None:
    """Build an article from a JSON object; report and skip it if it has no text."""
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
        return None
    text = ""
    for field in _TEXT_FIELDS:
        value = obj.get(field)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n\n".join(value)  # a list of paragraphs
        if isinstance(value, str) and value.strip():
            # Stored as text even when it holds HTML markup: it is shown escaped.
            text = normalize_text(value)
            if text:
                break
    if not text:
        problems.append(
            f"{where}: no article text (expected a non-empty 'text', 'body' or 'content')"
        )
        return None

    def field(name: str) -> str | None:
        value = obj.get(name)
        if value is None:
            return None
        converted = _json_str(value)
        if converted is None:
            problems.append(f"{where}: '{name}' is not a string; ignored")
            return None
        return _one_line(converted) or None

    title = field("title") or title_from_text(text)
    published = field("published")
    if published is not None and parse_published(published) is None:
        problems.append(f"{where}: invalid published date {published!r} ignored")
        published = None
    return SourceArticle(
        title=title,
        text=text,
        origin=origin,
        id=field("id"),
        url=field("url"),
        published=published,
        author=field("author"),
        source=field("source"),
    )


def _jsonl_articles(
    lines: Iterable[str], path: Path, origin: str, problems: list[str]
) -> Iterator[SourceArticle]:
    """One article per non-blank line (numbered from 1); bad lines become problems."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON (column {exc.colno}: {exc.msg})")
            continue
        article = _article_from_object(obj, f"{origin}#{number}", where, problems)
        if article is not None:
            yield article


def _read_jsonl(raw: str, path: Path, origin: str, problems: list[str]) -> list[SourceArticle]:
    # split("\n"), not splitlines(): JSON strings may contain raw U+2028 and friends.
    return list(_jsonl_articles(raw.split("\n"), path, origin, problems))


def _read_json(raw: str, path: Path, origin: str, problems: list[str]) -> list[SourceArticle]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several objects, one per line: JSON lines misnamed .json
            return _read_jsonl(raw, path, origin, problems)
        reason = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise _fail(path, reason) from None
    if isinstance(data, dict) and _is_squad(data):
        return _read_squad(data, origin)
    if isinstance(data, dict):
        article = _article_from_object(data, origin, str(path), problems)
        return [article] if article else []
    if isinstance(data, list):
        articles: list[SourceArticle] = []
        for position, obj in enumerate(data, start=1):
            where = f"{path}: item {position}"
            article = _article_from_object(obj, f"{origin}#{position}", where, problems)
            if article is not None:
                articles.append(article)
        return articles
    raise _fail(path, f"expected a JSON object or a list of objects, got {type(data).__name__}")


def _is_squad(data: dict) -> bool:
    items = data.get("data")
    return isinstance(items, list) and all(
        isinstance(i, dict) and isinstance(i.get("paragraphs"), list) for i in items
    )


def _read_squad(data: dict, origin: str) -> list[SourceArticle]:
    """A SQuAD-format question set: each entry's paragraphs become one article, so
    an evaluation can index exactly the articles its questions are about."""
    articles = []
    for position, item in enumerate(data["data"], start=1):
        paragraphs = [
            normalize_text(str(p.get("context", "")))
            for p in item["paragraphs"]
            if isinstance(p, dict)
        ]
        text = "\n\n".join(p for p in paragraphs if p)
        if not text:
            continue
        title = _one_line(str(item.get("title") or "")).replace("_", " ") or title_from_text(text)
        articles.append(SourceArticle(title=title, text=text, origin=f"{origin}#{position}"))
    return articles


# --------------------------------------------------------------------------- API


def _check_suffix(where: Path, suffix: str) -> None:
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"type {suffix}" if suffix else "type (no file extension)"
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise _fail(where, f"unsupported file {kind} (supported: {supported})")


def _parse(
    raw: str, suffix: str, where: Path, origin: str
) -> tuple[list[SourceArticle], list[str]]:
    """Decoded text → articles by format. `where` names the source in messages and
    derived titles (a path, or an upload's display name); `origin` keys ids."""
    problems: list[str] = []
    if suffix == ".txt":
        articles = [_read_txt(raw, where, origin)]
    elif suffix in (".md", ".markdown"):
        articles = [_read_markdown(raw, where, origin, problems)]
    elif suffix in (".html", ".htm"):
        from qa.html_text import extract_html  # lxml/trafilatura load only when needed

        # Extracted under `where` (its messages and fallback title), then re-keyed.
        articles = [replace(extract_html(raw, str(where)), origin=origin)]
    elif suffix == ".jsonl":
        articles = _read_jsonl(raw, where, origin, problems)
    else:
        articles = _read_json(raw, where, origin, problems)

    articles = [a for a in articles if a.text]
    if not articles:
        reason = problems[0].removeprefix(f"{where}: ") if problems else "no article text found"
        extra = len(problems) - 1
        more = f" (and {extra} more problem{'s' * (extra > 1)})" if extra else ""
        raise _fail(where, f"no readable article: {reason}{more}")
    return articles, problems


def read_file(path: Path | str) -> tuple[list[SourceArticle], list[str]]:
    """Read one file into its articles, plus one-line problems about skipped parts.

    Raises `UnreadableFile("<path>: <reason>")` when the file yields no article at
    all (missing, unsupported type, too large, binary, empty, invalid JSON, no text).
    Problems name records that were skipped (a bad JSON line, with its line number)
    or fields that were dropped (an invalid `published` date); the rest is returned.
    """
    path = Path(path)
    suffix = file_suffix(path)
    if not path.exists() and not path.is_symlink():
        raise _fail(path, "no such file")
    if path.is_dir():
        # `iter_article_files` yields a directory it could not list, to be reported here.
        listable = os.access(path, os.R_OK | os.X_OK)
        raise _fail(
            path, "is a directory" if listable else "cannot list directory: permission denied"
        )
    _check_suffix(path, suffix)

    if _streamed(path, suffix):
        problems: list[str] = []
        return list(stream_file(path, problems)), problems
    raw = _decode(_read_bytes(path), path)
    if not raw.strip():
        raise _fail(path, "file contains only whitespace")
    return _parse(raw, suffix, path, str(path.resolve()))


def _streamed(path: Path, suffix: str) -> bool:
    """Read line by line: every `.jsonl.gz`, and a `.jsonl` over the single-document
    limit (smaller ones are read whole, keeping the whole-file checks)."""
    try:
        return suffix == ".jsonl.gz" or (
            suffix == ".jsonl" and path.is_file() and path.stat().st_size > MAX_FILE_BYTES
        )
    except OSError:
        return False  # read_file reports why


def _text_lines(path: Path, problems: list[str]) -> Iterator[str]:
    """A JSON-lines file's lines, decoded one at a time (gzip when it is `.gz`).
    A line that is neither UTF-8 nor cp1252 text, or longer than one document
    may be, is reported and passed over as a blank line, keeping the numbering."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for number, data in enumerate(fh, start=1):
                if number == 1:
                    data = data.removeprefix(codecs.BOM_UTF8)
                if len(data) > MAX_FILE_BYTES:
                    problems.append(f"{path}: line {number}: record too large (the limit is 20 MB)")
                    yield ""
                    continue
                try:
                    yield data.decode("utf-8")
                except UnicodeDecodeError:
                    text = data.decode("cp1252", errors="replace")
                    if "\ufffd" in text or not _looks_like_text(text):
                        problems.append(f"{path}: line {number}: not text")
                        text = ""
                    yield text
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut file an EOFError
        raise _fail(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def stream_file(path: Path | str, problems: list[str]) -> Iterator[SourceArticle]:
    """`read_file` one article at a time, for files of any size.

    A JSON-lines file (`.jsonl`, `.jsonl.gz`) is read line by line without a size
    limit; every other format is read whole by `read_file` (20 MB at most). Problems
    are appended to `problems` as they are met. Raises `UnreadableFile` as
    `read_file` does, for a JSON-lines file as soon as it proves to hold no article.
    """
    path = Path(path)
    suffix = file_suffix(path)
    if not _streamed(path, suffix):
        # The whole-file path keeps its checks (encodings, binary data, empty files).
        articles, found = read_file(path)
        problems.extend(found)
        yield from articles
        return
    own: list[str] = []
    count = 0
    lines = _text_lines(path, own)
    for article in _jsonl_articles(lines, path, str(path.resolve()), own):
        problems.extend(own)
        own.clear()
        count += 1
        yield article
    if not count:
        reason = own[0].removeprefix(f"{path}: ") if own else "no article text found"
        raise _fail(path, f"no readable article: {reason}")
    problems.extend(own)


def read_articles(path: Path | str) -> list[SourceArticle]:
    """Convenience for `read_file` when the problems are not needed; raises if nothing is valid."""
    return read_file(path)[0]


# --------------------------------------------------------------------------- uploads

_UPLOAD_NAME_CHARS = re.compile(r"[^\w.\- ]+")
_UPLOAD_NAME_MAX = 100


def _upload_name(filename: str) -> str:
    """A client-supplied file name made safe to show: its last path part, word characters,
    dots, dashes and spaces only, no leading dots, at most 100 characters (suffix kept)."""
    base = re.split(r"[/\\]", filename or "")[-1]
    name = " ".join(_UPLOAD_NAME_CHARS.sub("", base).split()).lstrip(".")
    if len(name) > _UPLOAD_NAME_MAX:
        suffix = Path(name).suffix[:12]
        name = name[: _UPLOAD_NAME_MAX - len(suffix)] + suffix
    return name or "upload"


def _gunzip_upload(data: bytes, display: Path) -> bytes:
    """An upload's gzipped bytes, held to the same 20 MB once decompressed."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            plain = fh.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError):
        raise _fail(display, "not a valid gzip file") from None
    if len(plain) > MAX_FILE_BYTES:
        raise _fail(display, "file too large once decompressed (the limit is 20 MB)")
    return plain


def read_upload(
    filename: str, data: bytes, *, origin: str | None = None
) -> tuple[list[SourceArticle], list[str]]:
    """`read_file` for bytes already in memory (an HTTP upload or a fetched page).

    `filename` only chooses the format by its suffix and names the articles in titles
    and messages; it never reaches the file system. `origin` defaults to
    `upload:<sanitised name>` and keys the ids of articles that carry none. Same
    rules, same errors as `read_file`.
    """
    name = _upload_name(filename)
    display = Path(name)  # for messages and derived titles only; never opened
    origin = origin or f"upload:{name}"
    suffix = file_suffix(display)
    _check_suffix(display, suffix)
    if len(data) > MAX_FILE_BYTES:
        raise _fail(display, f"file too large ({len(data) / 1e6:.1f} MB; the limit is 20 MB)")
    if suffix == ".jsonl.gz":
        data = _gunzip_upload(data, display)
        suffix = ".jsonl"
    raw = _decode(data, display)
    if not raw.strip():
        raise _fail(display, "file contains only whitespace")
    return _parse(raw, suffix, display, origin)


def read_object(obj: Any, origin: str, where: str) -> tuple[SourceArticle, list[str]]:
    """One article from a decoded JSON object (an API request body), by the rules of a
    `.json` file's objects. Raises `UnreadableFile("<where>: <reason>")` when it has no text."""
    problems: list[str] = []
    article = _article_from_object(obj, origin, where, problems)
    if article is None:
        raise UnreadableFile(problems[0] if problems else f"{where}: no article text")
    return article, problems
