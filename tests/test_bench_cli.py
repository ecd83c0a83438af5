"""Benchmark entry points answer bad input with one usage line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_answer_speed.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_answer_speed_refuses_a_folder_without_an_index(tmp_path):
    done = _run("--index-dir", str(tmp_path))
    assert done.returncode == 2 and "no index at" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.directory_store
def test_answer_speed_names_an_unreadable_question_file(seed_index, tmp_path):
    broken = tmp_path / "questions.jsonl"
    broken.write_text("{not json\n")
    for questions in (broken, tmp_path / "missing.json"):
        done = _run(str(questions), "--index-dir", str(seed_index))
        assert done.returncode == 2 and "cannot read the questions" in done.stderr
        assert "Traceback" not in done.stderr


def test_conversation_bench_refuses_a_folder_without_an_index(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_conversation.py"),
            "--index-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "no index at" in done.stderr
    assert "Traceback" not in done.stderr
