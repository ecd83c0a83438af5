"""`qa chat`: a conversation with the index, at a terminal prompt or over a pipe.

In: lines, typed at a prompt (prompt_toolkit: line editing, Up-arrow history) or
read from stdin. Out: for each question, its Answer printed as `qa ask` prints it
(or as one JSON line), asked with the earlier turns as history so that a
follow-up ("When was it established?") is understood. Lines starting with "/"
are commands (`/k N`, `/new`, `/help`, `/quit`).

`ChatSession` holds the conversation and turns a line into a `Reply`; it knows
nothing of terminals, so tests drive it with plain strings. The two loops below
only read lines and print replies. Answers go to stdout; what the chat says
about itself (help, notes, errors) goes to stderr, so a script reading stdout
sees answers only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click

from qa.answering import Answerer
from qa.conversation import MAX_TURNS  # the most earlier turns Answerer.ask takes
from qa.errors import IndexEmpty, QAError
from qa.models import Answer, Filters, PriorTurn
from qa.render import answer_text, searched_for
from qa.settings import Settings

MAX_K = 20
PROMPT = "qa> "


@dataclass(frozen=True)
class Reply:
    """What one line produced: an Answer, a note from the chat, an error, or the end."""

    answer: Answer | None = None
    note: str = ""
    error: QAError | None = None
    done: bool = False


class ChatSession:
    """One conversation over an index: the quotes per answer and the turns so far."""

    def __init__(
        self,
        answerer: Answerer,
        k: int | None = None,
        articles: int = 0,
        filters: Filters | None = None,
    ) -> None:
        self.answerer = answerer
        self.k = answerer.settings.k if k is None else k
        self.articles = articles
        self.filters = filters  # every answer of the session keeps to them
        self.turns: list[PriorTurn] = []

    @classmethod
    def start(
        cls, settings: Settings, k: int | None = None, filters: Filters | None = None
    ) -> ChatSession:
        """Open the index and load the encoder now, so a missing or empty index stops
        the chat before the first question and the first answer comes quickly."""
        answerer = Answerer(settings)
        snapshot = answerer.snapshot()  # raises IndexMissing / IndexCorrupt / ...
        if snapshot.n_chunks == 0:
            raise IndexEmpty(
                f"the index at {answerer.store.location} has no articles: "
                "add some with `qa index PATH`"
            )
        _ = answerer.encoder
        return cls(answerer, k, articles=snapshot.n_articles, filters=filters)

    def handle(self, line: str) -> Reply | None:
        """The reply to one line; None for a blank line (nothing to do)."""
        line = line.strip()
        if not line:
            return None
        if line.startswith("/"):
            return self.command(line)
        return self.ask(line)

    def ask(self, question: str) -> Reply:
        try:
            answer = self.answerer.ask(question, self.k, tuple(self.turns), self.filters)
        except QAError as exc:
            return Reply(error=exc)  # the conversation goes on as it was
        self.turns = [*self.turns, PriorTurn.of(answer)][-MAX_TURNS:]
        return Reply(answer=answer)

    def command(self, line: str) -> Reply:
        name, _, arg = line.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in ("/quit", "/exit", "/q"):
            return Reply(done=True)
        if name == "/new":
            self.turns = []
            return Reply(note="new conversation: earlier questions are forgotten")
        if name in ("/help", "/?"):
            return Reply(note=self.help())
        if name == "/k":
            return self.set_k(arg)
        return Reply(note=f"unknown command {name}: /help lists the commands")

    def set_k(self, arg: str) -> Reply:
        if not arg:
            return Reply(note=f"{self.k} quotes per answer; /k N changes it (1-{MAX_K})")
        try:
            k = int(arg)
        except ValueError:
            k = 0
        if not 1 <= k <= MAX_K:
            return Reply(note=f"/k takes a number from 1 to {MAX_K}; still {self.k}")
        self.k = k
        return Reply(note=f"{k} quote{'s' if k > 1 else ''} per answer")

    def help(self) -> str:
        return "\n".join(
            [
                "Ask about the indexed articles; a follow-up is read with the questions before it.",
                f"  /k N    quotes per answer, 1-{MAX_K} (now {self.k})",
                "  /new    start a new conversation (forget the earlier questions)",
                "  /help   this list",
                "  /quit   leave (also /exit, or Ctrl-D)",
            ]
        )


def show(reply: Reply, *, as_json: bool, width: int, out: TextIO, err: TextIO) -> None:
    """Print a reply: the Answer on `out`, everything else on `err`.

    With `as_json` every question gives exactly one line on `out` (its Answer, or
    the API's error shape), so a script can pair its questions with the lines."""
    if reply.answer is not None:
        if as_json:
            click.echo(reply.answer.model_dump_json(), file=out)
            return
        searched = searched_for(reply.answer)
        if searched:
            click.echo(searched, file=out)
        bold = out.isatty()  # the words that answer, at a terminal only
        click.echo(answer_text(reply.answer, width=width, bold=bold) + "\n", file=out)
    elif reply.error is not None:
        if as_json:
            error = {"code": reply.error.code, "message": reply.error.message}
            click.echo(json.dumps({"error": error}, ensure_ascii=False), file=out)
        else:
            click.echo(f"error: {reply.error.message}", file=err)
    elif reply.note:
        click.echo(reply.note, file=err)


def run_chat(session: ChatSession, *, as_json: bool, history_file: Path | None) -> None:
    """The prompt when a person is at a terminal, else a quiet line-by-line loop."""
    out, err = sys.stdout, sys.stderr
    if sys.stdin.isatty() and out.isatty():
        chat_in_terminal(session, as_json=as_json, history_file=history_file, out=out, err=err)
    else:
        chat_over_lines(session, sys.stdin, as_json=as_json, out=out, err=err)


def chat_over_lines(
    session: ChatSession, lines: Iterable[str], *, as_json: bool, out: TextIO, err: TextIO
) -> None:
    """Answer each line in turn until the lines end or one says /quit: no prompt,
    no banner, so `printf 'Q1\\nQ2\\n' | qa chat` prints two answers."""
    for line in lines:
        reply = session.handle(line)
        if reply is None:
            continue
        if reply.done:
            return
        show(reply, as_json=as_json, width=88, out=out, err=err)
        out.flush()


def default_history_file() -> Path:
    """Where typed questions are kept between chats: the user's state folder
    ($XDG_STATE_HOME, else ~/.local/state), never the index, which may be shared."""
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "qa" / "chat-history"


def chat_in_terminal(
    session: ChatSession, *, as_json: bool, history_file: Path | None, out: TextIO, err: TextIO
) -> None:
    """The interactive chat: a prompt with line editing and history until Ctrl-D or
    /quit. Ctrl-C clears the line being typed, or stops the answer being worked on."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory

    history: History = InMemoryHistory()
    if history_file is not None:
        try:
            history = FileHistory(_private_file(history_file))
        except OSError as exc:
            click.echo(f"questions are not kept after this chat: {exc}", file=err)
    prompt: PromptSession[str] = PromptSession(history=history)
    click.echo(
        f"qa chat over {session.articles} article{'s' if session.articles != 1 else ''}"
        " — /help for commands, Ctrl-D to leave",
        file=err,
    )
    while True:
        try:
            line = prompt.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        try:
            reply = session.handle(line)
        except KeyboardInterrupt:
            click.echo("(stopped)", file=err)
            continue
        if reply is None:
            continue
        if reply.done:
            return
        width = max(40, min(88, shutil.get_terminal_size().columns - 1))
        show(reply, as_json=as_json, width=width, out=out, err=err)


def _private_file(path: Path) -> str:
    """`path` created readable by its owner only: it holds every question typed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
    return str(path)
