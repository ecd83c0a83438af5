"""`qa chat` as a user runs it: the installed command over the seed index, fed
from a pipe (how it is scripted) and typed at in a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from qa.models import Answer
from tests.conftest import copy_index

ESTABLISHED = "established on Dec. 5, 2022"  # the seed article's answer to the follow-up


def qa_command() -> str:
    """The `qa` script pip installed beside this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).with_name("qa")
    found = str(beside) if beside.exists() else shutil.which("qa")
    assert found, "the qa entry point is not installed (make install)"
    return found


def chat(index_dir: Path, lines: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [qa_command(), "chat", "--index-dir", str(index_dir), *options],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
    )


def qa(*args: str, index_dir: Path) -> str:
    cmd = [qa_command(), *args, "--index-dir", str(index_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout


def answers(run: subprocess.CompletedProcess) -> list[Answer]:
    return [Answer.model_validate_json(line) for line in run.stdout.splitlines()]


def test_piped_follow_up_is_read_with_the_question_before_it(seed_index):
    run = chat(seed_index, "What is K-SPACE?\nWhen was it established?\n")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no banner, no prompt: nothing but the answers
    assert run.stdout.count("searched for: ") == 1, run.stdout
    first, second = run.stdout.split("searched for: ")
    assert "[1]" in first and "K-SPACE" in first
    assert re.search(r"\[1\] .*?— .*?chars\s+\d+-\d+", first, re.S)  # quote, then its citation
    understood, rest = second.split("\n", 1)
    assert "K-SPACE" in understood.upper()
    assert "[1]" in rest and ESTABLISHED in " ".join(rest.split())


def test_json_gives_one_answer_object_per_line(seed_index):
    run = chat(seed_index, "What is K-SPACE?\n\nWhen was it established?\n", "--json")
    assert run.returncode == 0, run.stderr
    first, second = answers(run)
    assert first.answered and first.standalone_question == first.question == "What is K-SPACE?"
    assert second.question == "When was it established?"
    assert second.standalone_question != second.question
    assert any(ESTABLISHED in quote.text for quote in second.quotes)


def test_k_command_sets_quotes_per_answer_and_refuses_bad_values(seed_index):
    lines = (
        "/k 2\n/k 99\n/k many\nWhat is K-SPACE?\n"
        "/k 1\nHow many business meetings did the Korea Pavilion hold?\n"
    )
    run = chat(seed_index, lines, "--json")
    assert run.returncode == 0, run.stderr
    two, one = answers(run)
    assert len(two.quotes) == 2  # neither 99 nor "many" changed the 2
    assert len(one.quotes) == 1 and "394" in one.quotes[0].text
    refusals = [line for line in run.stderr.splitlines() if "1 to 20" in line]
    assert len(refusals) == 2, run.stderr


def test_new_forgets_the_conversation(seed_index):
    lines = "When was it established?\nWhat is K-SPACE?\n/new\nWhen was it established?\n"
    alone, _, after_new = answers(chat(seed_index, lines, "--json"))
    assert after_new.standalone_question == after_new.question
    assert after_new.quotes == alone.quotes  # answered exactly as with no conversation

    run = chat(seed_index, "What is K-SPACE?\n/new\nWhen was it established?\n")
    assert run.returncode == 0, run.stderr
    assert "searched for" not in run.stdout
    assert "new conversation" in run.stderr


def test_a_bad_question_is_one_line_and_the_chat_goes_on(seed_index):
    lines = "x" * 1001 + "\n/frobnicate\nWhat is K-SPACE?\n"
    run = chat(seed_index, lines)
    assert run.returncode == 0
    assert run.stderr.splitlines() == [
        "error: the question is 1001 characters long; the limit is 1000",
        "unknown command /frobnicate: /help lists the commands",
    ]
    assert "[1]" in run.stdout

    run = chat(seed_index, lines, "--json")
    error, answer = run.stdout.splitlines()  # still one line per question
    assert json.loads(error)["error"]["code"] == "invalid_input"
    assert Answer.model_validate_json(answer).answered


def test_a_long_conversation_keeps_being_answered(seed_index):
    # More turns than the Answerer takes: the chat keeps the latest, never fails.
    questions = ["What is K-SPACE?", "When was it established?"] * 13
    run = chat(seed_index, "\n".join(questions) + "\n", "--json")
    assert run.returncode == 0 and run.stderr == ""
    replies = answers(run)
    assert len(replies) == 26 and all(reply.answered for reply in replies)
    assert any(ESTABLISHED in quote.text for quote in replies[-1].quotes)


def test_quit_stops_reading(seed_index):
    run = chat(seed_index, "/quit\nWhat is K-SPACE?\n")
    assert run.returncode == 0 and run.stdout == ""


def test_missing_index_stops_before_the_first_question(tmp_path):
    run = chat(tmp_path / "nowhere", "What is K-SPACE?\n")
    assert run.returncode != 0
    assert "no index" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert run.stdout == ""


@pytest.mark.directory_store
def test_empty_index_stops_before_the_first_question(seed_index, tmp_path):
    emptied = tmp_path / "index"
    copy_index(seed_index, emptied)
    ids = [a["id"] for a in json.loads(qa("articles", "list", "--json", index_dir=emptied))]
    qa("articles", "rm", *ids, index_dir=emptied)
    run = chat(emptied, "What is K-SPACE?\n")
    assert run.returncode != 0 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"Error: the index at {emptied} has no articles: add some with `qa index PATH`"
    ]


def spawn_chat(index_dir: Path, state: Path, *options: str) -> pexpect.spawn:
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(state),
        TERM="xterm",
        # pexpect is not a terminal emulator: it cannot answer prompt_toolkit's
        # cursor-position query, which a real terminal does.
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    child = pexpect.spawn(
        qa_command(),
        ["chat", "--index-dir", str(index_dir), *options],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 100),
    )
    child.expect(r"qa chat over 1 article .*Ctrl-D to leave", timeout=120)
    child.expect("qa>")
    return child


def leave_with_ctrl_d(child: pexpect.spawn) -> int | None:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_terminal_chat_prompts_answers_and_leaves_on_ctrl_d(seed_index, tmp_path):
    child = spawn_chat(seed_index, tmp_path / "state")
    child.sendline("What is K-SPACE?")
    child.expect(r"\[1\] ")
    child.expect(r"chars\s+\d+-\d+")
    child.expect("qa>")

    child.send("half a question")
    child.sendcontrol("c")  # clears the line; the chat stays
    child.expect("qa>")
    assert "[1]" not in child.before

    child.sendline("/help")
    for command in ("/k N", "/new", "/help", "/quit"):
        child.expect_exact(command)
    child.expect("qa>")
    assert leave_with_ctrl_d(child) == 0

    history = tmp_path / "state" / "qa" / "chat-history"
    assert "What is K-SPACE?" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # it holds what was asked

    # The next chat recalls it with the Up arrow.
    child = spawn_chat(seed_index, tmp_path / "state")
    child.send("\x1b[A\x1b[A")  # Up past /help
    child.send("\r")
    child.expect(r"\[1\] ")
    child.expect("qa>")
    assert leave_with_ctrl_d(child) == 0


def test_no_history_keeps_typed_questions_off_disk(seed_index, tmp_path):
    child = spawn_chat(seed_index, tmp_path / "state", "--no-history")
    child.sendline("What is K-SPACE?")
    child.expect(r"\[1\] ")
    child.expect("qa>")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (tmp_path / "state").exists()
