"""Shared fixtures: the real model, real index directories on disk.

The ONNX encoder is exported once per session (about 12 s) and copied into
each test's index directory, which is what `qa index` would otherwise do
itself on first use. QA_INDEX_DIR points at a temporary folder for every test
so nothing touches the project's own ./index.

`pytest --qa-store=milvus` runs the same tests with each index in a Milvus
Lite file inside its index directory, and `--qa-store=milvus-server` with each
index in collections of one Milvus server the run starts (see
tests/milvus_hook). Tests that look at the directory's own files are marked
`directory_store` and skipped under both; tests marked `two_processes`, whose
server or `qa` command opens an index this process holds, are skipped under
`milvus` only (Milvus Lite lets one process open a file; a server serves all).
Fixtures build indexes through `store_at(DIR)`, which follows the option.
"""

from __future__ import annotations

import os
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


def pytest_addoption(parser):
    parser.addoption(
        "--qa-store",
        choices=("directory", "milvus", "milvus-server"),
        default="directory",
        help="Where the tests' indexes live: index directories (default), a Milvus "
        "Lite file inside each, or collections on a Milvus server started for the run "
        "(tests marked directory_store are then skipped).",
    )


def pytest_configure(config):
    if _NO_SHARED:  # one line, before any module tries to read a missing file
        raise pytest.UsageError(_NO_SHARED)
    mode = config.getoption("--qa-store")
    if mode in ("milvus", "milvus-server"):
        # This process and every one a test starts (they inherit the environment)
        # redirect settings without a store to Milvus: tests/milvus_hook.
        hook = PROJECT / "tests" / "milvus_hook"
        paths = [str(hook), str(PROJECT), os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        os.environ["QA_TEST_STORE"] = mode
        if mode == "milvus-server":
            import tempfile

            from bench.shared import start_milvus_server

            work = Path(tempfile.mkdtemp(prefix="qa-milvus-server-"))
            config._qa_milvus, os.environ["QA_TEST_MILVUS"] = start_milvus_server(work)
        from tests.milvus_hook.redirect import install

        install()


def pytest_unconfigure(config):
    running = getattr(config, "_qa_milvus", None)
    if running is not None:
        from tests.milvus_hook import server

        server.stop(running)


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("--qa-store")
    if mode == "directory":
        return
    skip = pytest.mark.skip(reason=f"looks at the index directory's own files (--qa-store={mode})")
    # A Milvus Lite file is open in one process at a time (qa refuses a second one):
    # a test whose server or qa command shares the index this process holds needs
    # the directory or a Milvus server.
    alone = pytest.mark.skip(reason="two processes on one Milvus Lite file (--qa-store=milvus)")
    for item in items:
        if "directory_store" in item.keywords:
            item.add_marker(skip)
        elif "two_processes" in item.keywords and mode == "milvus":
            item.add_marker(alone)


@pytest.fixture(autouse=True, scope="module")
def _lite_files_released(request):
    """Under --qa-store=milvus, hand every Milvus Lite file back after each module:
    a `qa` process a later test starts can open a file only this one has let go."""
    yield
    if request.config.getoption("--qa-store") == "milvus":
        from qa.stores.milvus import release_lite_files

        release_lite_files()


def store_at(index_dir: Path):
    """The store of an index directory, as `qa --index-dir DIR` opens it (under
    --qa-store=milvus, the Milvus Lite file inside it)."""
    from qa.stores import open_store

    return open_store(Settings(index_dir=index_dir))


def copy_index(source: Path, target: Path) -> Path:
    """A copy of an index directory to write to. Milvus Lite's lock file beside a
    `.db` is left out: opening and closing it here would drop this process's POSIX
    lock on it, and the engine serving the source stops when that lock goes."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*.lock"))
    if os.environ.get("QA_TEST_STORE") == "milvus-server":  # the data is on the server
        from tests.milvus_hook import server

        server.copy_collections(os.environ["QA_TEST_MILVUS"], source, target)
    return target


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

    path = tmp_path_factory.mktemp("seed") / "index"
    path.mkdir()
    shutil.copytree(encoder_dir, path / "encoder")
    store = store_at(path)
    index_paths([SEED_DIR], store)
    store.close()  # a Milvus Lite file is then free for a `qa` process to open
    return path
