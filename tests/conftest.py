"""Shared fixtures: the real model, real index directories on disk.

The ONNX encoder is exported once per session (about 12 s) and copied into
each test's index directory, which is what `qa index` would otherwise do
itself on first use. QA_INDEX_DIR points at a temporary folder for every test
so nothing touches the project's own ./index.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.shared import find_shared
from qa.encoder import OnnxEncoder, export_onnx_encoder
from qa.settings import Settings

try:
    SHARED = find_shared()  # ../shared beside the checkout, as in CI
    _NO_SHARED = ""
except FileNotFoundError as exc:
    SHARED, _NO_SHARED = Path("shared-not-found"), str(exc)


def pytest_configure(config):
    if _NO_SHARED:  # one line, before any module tries to read a missing file
        raise pytest.UsageError(_NO_SHARED)


SEED_DIR = SHARED / "corpus" / "seed"
SEED_FILE = SEED_DIR / "kbr-bio2023-korea-pavilion.txt"
SEED_QUESTIONS = SHARED / "eval" / "seed-questions.jsonl"
BBC_DIR = SHARED / "corpus" / "bbc"
PROJECT = Path(__file__).resolve().parents[1]
SAMPLES = PROJECT / "samples" / "articles"


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory) -> Path:
    return export_onnx_encoder(tmp_path_factory.mktemp("encoder") / "encoder")


@pytest.fixture(scope="session")
def encoder(encoder_dir) -> OnnxEncoder:
    return OnnxEncoder(encoder_dir)


@pytest.fixture(autouse=True)
def _isolated_index_env(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "default-index"))
    # Suites fire requests far faster than a person; the limit has tests of its own.
    monkeypatch.setenv("QA_RATE_LIMIT_PER_MINUTE", "0")


@pytest.fixture
def index_dir(tmp_path, encoder_dir) -> Path:
    """An empty index directory that already holds the encoder."""
    path = tmp_path / "index"
    path.mkdir()
    shutil.copytree(encoder_dir, path / "encoder")
    return path


@pytest.fixture
def settings(index_dir) -> Settings:
    return Settings(index_dir=index_dir)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, encoder_dir) -> Path:
    """The seed article indexed once per session (read-only for tests)."""
    from qa.indexer import index_paths
    from qa.store import IndexStore

    path = tmp_path_factory.mktemp("seed") / "index"
    path.mkdir()
    shutil.copytree(encoder_dir, path / "encoder")
    index_paths([SEED_DIR], IndexStore(path))
    return path
