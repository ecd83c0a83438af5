"""Answer → readable terminal text (the page renders the same object in Jinja2)."""

from __future__ import annotations

import textwrap

from qa.models import Answer, Quote


def citation(quote: Quote) -> str:
    a = quote.article
    parts = [a.title]
    if a.published:
        parts.append(a.published)
    if a.url:
        parts.append(a.url)
    parts.append(f"id {a.id}, chars {quote.start}-{quote.end}")
    return " · ".join(parts)


def answer_text(answer: Answer, width: int = 88) -> str:
    if not answer.answered:
        return answer.answer
    lines = [textwrap.fill(answer.answer, width=width), ""]
    for n, quote in enumerate(answer.quotes, 1):
        lead = f"[{n}] "
        lines.append(
            textwrap.fill(
                f'"{" ".join(quote.text.split())}"',
                width=width,
                initial_indent=lead,
                subsequent_indent=" " * len(lead),
            )
        )
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
    standalone = answer.standalone_question
    if not standalone or standalone == answer.question:
        return ""
    return f"searched for: {standalone}"
