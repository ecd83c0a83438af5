"""The `qa` command as a user runs it: a real process, real index on disk."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import SAMPLES, SEED_DIR, copy_index


def qa(*args: str, index_dir=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "qa.cli", *args]
    if index_dir is not None:
        cmd += ["--index-dir", str(index_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, encoder_dir):
    import shutil

    path = tmp_path_factory.mktemp("cli") / "index"
    path.mkdir()
    shutil.copytree(encoder_dir, path / "encoder")
    run = qa("index", str(SEED_DIR), str(SAMPLES), index_dir=path)
    assert run.returncode == 0, run.stderr
    assert "7 added, 0 updated, 0 unchanged, 0 skipped" in run.stdout
    return path


def test_ask_json_prints_exactly_the_answer_object(cli_index):
    run = qa("ask", "What is K-SPACE?", "--json", index_dir=cli_index)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert set(answer) == {
        "question",
        "answered",
        "answer",
        "quotes",
        "took_ms",
        "standalone_question",
    }
    assert answer["standalone_question"] == "What is K-SPACE?"
    assert answer["answered"] is True
    top = answer["quotes"][0]
    assert set(top) == {"text", "score", "article", "start", "end", "highlight"}
    assert set(top["article"]) == {"id", "title", "url", "published"}
    # The words that answer, as article offsets inside the quote.
    assert top["start"] <= top["highlight"]["start"] < top["highlight"]["end"] <= top["end"]
    assert any(
        gold in top["text"]
        for gold in (
            "Korea Superior Pharma-pipeline Accelerating Collaboration Evolution Platform",
            "new drug development ecosystem",
        )
    )


def test_ask_prints_numbered_quotes_with_citations(cli_index):
    run = qa(
        "ask",
        "How many business meetings did the Korea Pavilion hold?",
        "--k",
        "2",
        index_dir=cli_index,
    )
    assert run.returncode == 0, run.stderr
    assert "[1]" in run.stdout and "[2]" in run.stdout and "394" in run.stdout
    assert "chars " in run.stdout


def test_no_answer_is_a_success_with_a_plain_sentence(cli_index):
    run = qa("ask", "What is the boiling point of mercury?", index_dir=cli_index)
    assert run.returncode == 0
    assert "do not appear to answer" in run.stdout


def test_errors_are_one_line_and_non_zero(cli_index, tmp_path):
    for args, index_dir, needle in [
        (("ask", "  "), cli_index, "empty"),
        (("ask", "What is K-SPACE?"), tmp_path / "missing", "no index"),
        (("articles", "show", "nope"), cli_index, "no article"),
        (("index", str(tmp_path / "does-not-exist")), cli_index, "does-not-exist"),
    ]:
        run = qa(*args, index_dir=index_dir)
        assert run.returncode != 0, args
        assert needle in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_articles_list_show_and_rm(cli_index, tmp_path):

    listing = json.loads(qa("articles", "list", "--json", index_dir=cli_index).stdout)
    assert len(listing) == 7
    seed = next(a for a in listing if "kbr" in a["id"])
    shown = qa("articles", "show", seed["id"], index_dir=cli_index)
    assert "K-Space Platform" in shown.stdout

    copy = tmp_path / "copy"
    copy_index(cli_index, copy)
    run = qa("articles", "rm", seed["id"], index_dir=copy)
    assert run.returncode == 0 and f"removed {seed['id']}" in run.stdout
    listing = json.loads(qa("articles", "list", "--json", index_dir=copy).stdout)
    assert len(listing) == 6 and seed["id"] not in {a["id"] for a in listing}


def test_index_dir_comes_from_the_environment(cli_index, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(cli_index))
    run = qa("ask", "Who organised the Alder River clean-up?", "--json")
    assert json.loads(run.stdout)["quotes"][0]["text"].count("Priya Nandakumar")


def _conversation(*turns: tuple[str, list[str], str]) -> str:
    return json.dumps(
        {"turns": [{"question": q, "answers": a, "standalone": s} for q, a, s in turns]}
    )


def test_eval_scores_follow_ups_in_context_standalone_and_alone(cli_index, tmp_path):
    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text(
        _conversation(
            ("What is K-SPACE?", [], "What is K-SPACE?"),
            ("When was it established?", ["Dec. 5, 2022"], "When was K-SPACE established?"),
        )
        + "\n"
        + _conversation(
            ("What is the capacity of the library's solar roof?", [], ""),
            ("How much will it save each year?", ["$14,000 a year"], ""),
        )
        + "\n"
    )
    run = qa("eval", str(conversations), "--json", "--misses", index_dir=cli_index)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["conversations"], report["follow_ups"], report["answerable"]) == (2, 2, 2)
    assert report["in_context"]["top1_accuracy"] == 1.0, report["misses"]
    assert set(report["by_kind"]) == {"?"}  # no kinds given
    text = qa("eval", str(conversations), index_dir=cli_index)
    assert "in context  standalone  no context" in text.stdout


def test_eval_names_a_broken_conversation_line(cli_index, tmp_path):
    broken = tmp_path / "conversations.jsonl"
    broken.write_text(_conversation(("What is K-SPACE?", [], "")) + '\n{"turns": [{}]}\n')
    run = qa("eval", str(broken), index_dir=cli_index)
    assert run.returncode == 1
    assert "line 2: not a conversation object" in run.stderr
    assert "Traceback" not in run.stderr


def test_undecodable_input_is_one_line_not_a_traceback(cli_index, tmp_path):
    # A command line with bytes that are not UTF-8 arrives as lone surrogates.
    ask = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa.cli",
            "ask",
            b"\xff What is K-SPACE?",
            "--index-dir",
            str(cli_index),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 1 and "lone surrogate" in ask.stderr
    binary = tmp_path / "questions.jsonl"
    binary.write_bytes(b'\xff\xfe{"question": "x"}\n')
    run = qa("eval", str(binary), index_dir=cli_index)
    assert run.returncode == 1 and "not UTF-8 text" in run.stderr
    for done in (ask, run):
        assert "Traceback" not in done.stderr and "unexpected" not in done.stderr


def test_a_bad_setting_is_one_line_naming_the_variable(cli_index, monkeypatch):
    monkeypatch.setenv("QA_READER", "maybe")
    run = qa("ask", "What is K-SPACE?", index_dir=cli_index)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert "QA_READER='maybe'" in run.stderr and "boolean" in run.stderr


def test_eval_names_the_line_of_an_empty_question(cli_index, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question": "What is K-SPACE?", "answers": ["K-SPACE"]}\n'
        '{"question": "  ", "answers": []}\n'
    )
    run = qa("eval", str(questions), index_dir=cli_index)
    assert run.returncode != 0
    assert "line 2" in run.stderr and "empty" in run.stderr
