"""Answers and evaluation reports → readable terminal text (the page renders Answers in Jinja2),
and a quote as Markdown for the text replies of /v1 and MCP."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from qa.models import Answer, Quote, RefreshReport, SourceInfo

if TYPE_CHECKING:  # evaluation imports the answering pipeline; rendering needs only shapes
    from qa.evaluation import ConversationReport, EvalReport


def citation(quote: Quote) -> str:
    a = quote.article
    parts = [a.title]
    if a.published:
        parts.append(a.published)
    if a.url:
        parts.append(a.url)
    parts.append(f"id {a.id}, chars {quote.start}-{quote.end}")
    return " · ".join(parts)


# Stand-ins for the bold on/off codes while a quote is wrapped: one column each, so
# textwrap never cuts a code in two and a line is never wider than asked.
_BOLD_ON, _BOLD_OFF = "\x00", "\x01"


def _quote_line(quote: Quote, bold: bool) -> str:
    """The quote's text on one line; with `bold`, the words that answer between the
    stand-ins (plain if the text holds one itself)."""
    parts = quote.highlight_parts() if bold else None
    if parts is None or any(c in quote.text for c in (_BOLD_ON, _BOLD_OFF)):
        return " ".join(quote.text.split())
    before, words, after = parts
    return " ".join(f"{before}{_BOLD_ON}{words}{_BOLD_OFF}{after}".split())


def quote_markdown(quote: Quote) -> str:
    """The quote's text verbatim, with the words that answer in Markdown bold (`**`),
    for the text replies of /v1 and MCP. Spaces at the edges of the words stay outside
    the `**`, where Markdown needs them to see bold."""
    parts = quote.highlight_parts()
    if parts is None or not parts[1].strip():
        return quote.text
    before, words, after = parts
    core = words.strip()
    lead, trail = words[: len(words) - len(words.lstrip())], words[len(words.rstrip()) :]
    return f"{before}{lead}**{core}**{trail}{after}"


def answer_text(answer: Answer, width: int = 88, bold: bool = False) -> str:
    """The answer and its numbered quotes with citations, wrapped to `width`. With
    `bold` (stdout is a terminal) the words that answer are in ANSI bold."""
    if not answer.answered:
        return answer.answer
    lines = [textwrap.fill(answer.answer, width=width), ""]
    for n, quote in enumerate(answer.quotes, 1):
        lead = f"[{n}] "
        text = textwrap.fill(
            f'"{_quote_line(quote, bold)}"',
            width=width,
            initial_indent=lead,
            subsequent_indent=" " * len(lead),
        )
        lines.append(text.replace(_BOLD_ON, "\033[1m").replace(_BOLD_OFF, "\033[0m"))
        lines.append(
            textwrap.fill(
                f"— {citation(quote)} (score {quote.score:.2f})",
                width=width,
                initial_indent=" " * len(lead),
                subsequent_indent=" " * (len(lead) + 2),
            )
        )
    return "\n".join(lines)


def searched_for(answer: Answer) -> str:
    """How a follow-up was understood ("searched for: …"); empty when it was searched as asked."""
    return f"searched for: {answer.searched_for}" if answer.searched_for else ""


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def eval_report_text(report: EvalReport, k: int, misses: bool = False) -> str:
    lines = [
        f"questions              {report.questions} "
        f"({report.answerable} answerable here, {report.unanswerable} not)",
        f"top quote has answer   {_rate(report.top1_accuracy)}",
        f"top {k} quotes have it   {_rate(report.top3_accuracy)}",
        f"passage recall@5       {_rate(report.passage_recall_at_5)}",
        f"answered (answerable)  {_rate(report.answered_rate)}",
        f"abstained (not)        {_rate(report.abstention_rate)}",
        f"  refused, on topic    {_rate(report.refusal_on_topic)}",
        f"  refused, off topic   {_rate(report.refusal_off_topic)}",
        f"highlight word F1      {_rate(report.highlight_f1)}",
        f"latency ms p50 / p95   {report.latency_ms_p50} / {report.latency_ms_p95}",
    ]
    if misses:
        lines += [f"- {m['question']} | gold {m['gold']} | got {m['top']!r}" for m in report.misses]
    return "\n".join(lines)


_MODES = ("in_context", "standalone", "no_context")


def conversation_report_text(report: ConversationReport, misses: bool = False) -> str:
    """Follow-ups asked three ways, side by side, then per kind of follow-up."""

    def row(label: str, values: list[float | None]) -> str:
        return f"{label:<22}" + "".join(f"{_rate(v):>12}" for v in values)

    figures = [getattr(report, m) for m in _MODES]
    lines = [
        f"conversations {report.conversations}, follow-ups {report.follow_ups} "
        f"({report.answerable} answerable, {report.unanswerable} not)",
        f"{'':<22}{'in context':>12}{'standalone':>12}{'no context':>12}",
        row("top quote has answer", [f.top1_accuracy for f in figures]),
        row("abstained (not)", [f.abstention_rate for f in figures]),
        f"{'latency ms p50':<22}" + "".join(f"{f.latency_ms_p50:>12.1f}" for f in figures),
    ]
    for kind, by in report.by_kind.items():
        lines.append(row(f"  {kind} ({by['turns']})", [by[m] for m in _MODES]))
    if misses:
        lines += [
            f"- {m['question']} | searched {m['searched']!r} | gold {m['gold']} | got {m['top']!r}"
            for m in report.misses
        ]
    return "\n".join(lines)


def refresh_report_text(report: RefreshReport) -> str:
    """One line per refresh: what was fetched and what changed (or why nothing did)."""
    if report.error:
        return f"{report.source}: failed, nothing published: {report.error}"
    i = report.index
    return (
        f"{report.source}: {report.listed} listed; {report.requested} requests "
        f"({report.downloaded} downloaded, {report.not_modified} not modified), "
        f"{report.skipped} skipped; {i.added} added, {i.updated} updated, "
        f"{i.unchanged} unchanged, {i.removed} removed; {len(report.problems)} page errors "
        f"in {report.seconds:.1f} s"
    )


def sources_text(sources: list[SourceInfo]) -> str:
    """`qa sources list`: id, status, period, articles, location, then the last error."""
    lines = []
    for s in sources:
        when = s.last_refresh or "never"
        lines.append(
            f"{s.id}\t{s.status}\tevery {s.every}\t{s.articles} articles\t"
            f"last {when}\tnext {s.next_due}\t{s.name}\t{s.location}"
        )
        if s.error:
            lines.append(f"\terror: {s.error}")
    return "\n".join(lines)
