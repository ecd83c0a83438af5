"""The faces on a Milvus store: `--store URI` on the command line, `Settings.store`
in the app, against Milvus Lite (the real engine, in a file).

The index is written by a `qa index` process and then read by this one, which
is how Milvus Lite is shared: one process at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.answering import Answerer
from qa.evaluation import contains_answer, load_questions
from qa.settings import Settings
from qa.web.app import create_app
from tests.conftest import PROJECT, SEED_DIR, SEED_QUESTIONS

QUESTION = "What is K-SPACE?"
# What the seed set accepts: the platform's expansion or what it is for. Over the
# seed article alone the sentence about what it will do comes first, the one
# saying what it was established for second (both say "new drug development
# ecosystem"); which one depends on the reader, not on the store.
ANSWERS = next(q.answers for q in load_questions(SEED_QUESTIONS) if q.question == QUESTION)


def qa(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_STORE": ""}  # only --store names the store here
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT,
        env=env,
    )


@pytest.fixture(scope="module")
def milvus_seed(tmp_path_factory, encoder_dir) -> tuple[Path, str]:
    """The seed article in a Milvus Lite file, indexed by `qa index --store`; the
    index directory beside it holds only the encoder."""
    root = tmp_path_factory.mktemp("milvus-faces")
    local = root / "local"
    local.mkdir()
    shutil.copytree(encoder_dir, local / "encoder")
    uri = f"milvus://{root}/lite/seed.db"  # the folder is made by the first writer
    done = qa("index", str(SEED_DIR), "--index-dir", str(local), "--store", uri)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout and uri in done.stdout
    assert (root / "lite" / "seed.db").exists()
    assert not (local / "versions").exists()  # nothing went to the directory
    return local, uri


def _top(answer: dict) -> tuple[str, int, int, str]:
    q = answer["quotes"][0]
    return q["article"]["id"], q["start"], q["end"], q["text"]


def test_qa_ask_on_milvus_gives_the_directory_stores_top_quote(milvus_seed, seed_index):
    local, uri = milvus_seed
    done = qa("ask", QUESTION, "--json", "--index-dir", str(local), "--store", uri)
    assert done.returncode == 0, done.stderr
    on_milvus = json.loads(done.stdout)
    in_directory = Answerer(Settings(index_dir=seed_index, store=None)).ask(QUESTION)
    assert on_milvus["answered"] and in_directory.answered
    assert _top(on_milvus) == _top(in_directory.model_dump())
    assert contains_answer(on_milvus["quotes"][0]["text"], ANSWERS)
    listed = qa("articles", "list", "--json", "--index-dir", str(local), "--store", uri)
    assert [a["chunks"] for a in json.loads(listed.stdout)] == [
        a.chunks for a in Answerer(Settings(index_dir=seed_index, store=None)).snapshot().articles()
    ]


def test_the_api_answers_from_the_milvus_store_its_settings_name(milvus_seed):
    local, uri = milvus_seed
    app = create_app(Settings(index_dir=local, store=uri, refresh_sources=False))
    with TestClient(app) as client:
        resp = client.post("/api/ask", json={"question": QUESTION, "k": 2})
        health = client.get("/api/health").json()
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["answered"] and contains_answer(answer["quotes"][0]["text"], ANSWERS)
    assert health["store"] == "milvus" and health["store_uri"] == uri
    assert health["articles"] == 1 and health["chunks"] > 1


@pytest.mark.parametrize(
    ("store", "says"),
    [
        ("milvus://no-such-host.invalid:19530", "cannot open the Milvus store"),
        ("milvus:///tmp/no-such-folder-for-qa/x.db", "no index in the Milvus store"),
        ("milvus://host:port", "has a port that is not a number"),
        ("/var/lib/qa/index.db", "is not a Milvus URI"),
    ],
)
def test_a_store_that_cannot_answer_is_one_line_and_exit_status_1(store, says, tmp_path):
    done = qa("ask", QUESTION, "--index-dir", str(tmp_path), "--store", store)
    assert done.returncode == 1
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not Path("/tmp/no-such-folder-for-qa").exists()  # reading makes no file


def test_qa_store_in_the_environment_is_checked_before_anything_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "qa", "articles", "list", "--index-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "QA_STORE": "milvus://user:pw@host:19530"},
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: QA_STORE: the store URI")
    assert "carries credentials" in done.stderr and "pw" not in done.stderr
