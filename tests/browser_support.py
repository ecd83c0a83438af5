"""Helpers for the browser tests: a live `qa serve`, a second-origin web site,
Chromium via Playwright, and a corpus of articles that try to inject script; and
`ThreadedServer`, the app under uvicorn in a thread, for the HTTP client tests."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import store_at

if TYPE_CHECKING:
    from qa.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROJECT = Path(__file__).resolve().parents[1]
# Screenshots go to a scratch folder unless asked for (`make screenshots` refreshes
# the committed ones in bench/screenshots/): a test run leaves the tree clean.
SCREENSHOTS = Path(os.environ.get("QA_SCREENSHOTS") or Path(tempfile.gettempdir()) / "qa-shots")

# Every way an article could try to run script if it were rendered as HTML.
PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "'-alert(1)-'",
)


def require_chromium(playwright_installed: bool = True) -> None:
    """Skip when Playwright or Debian's Chromium is missing locally; in CI, fail instead."""
    if not playwright_installed:
        reason = "the playwright package is missing: pip install -e '.[dev]'"
    elif not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
    else:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI, but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float, crashed: Callable[[], str | None] = lambda: None) -> None:
    """Poll `url` until it answers 200; `crashed()` says why the server died, if it did."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if (death := crashed()) is not None:
            raise RuntimeError(death)
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:  # e.g. a 503 that says what is wrong
            last = f"{exc.code}: {exc.read().decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout} s ({last})")


class ThreadedServer:
    """uvicorn serving `create_app(settings)` in a thread, on a free port of 127.0.0.1."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn  # only the HTTP client tests need these

        from qa.web.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class LiveServer:
    """`python -m qa.cli serve` as a user runs it, on a free port of 127.0.0.1.

    Its output goes to a log file beside the index (a pipe nobody reads could fill
    up and stall the server), shown when it fails to start.
    """

    index_dir: Path
    cors_origins: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.index_dir.parent / f"serve-{self.port}.log"

    def _death(self) -> str | None:
        if self.proc is None or self.proc.poll() is None:
            return None
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"qa serve exited with {self.proc.returncode}:\n{log}"

    def start(self, timeout: float = 120) -> LiveServer:
        env = {**os.environ, "QA_CORS_ORIGINS": json.dumps(self.cors_origins)}
        env.pop("QA_INDEX_DIR", None)
        cmd = [
            sys.executable,
            "-m",
            "qa.cli",
            "serve",
            "--port",
            str(self.port),
            "--index-dir",
            str(self.index_dir),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(self.base + "/api/health", timeout, self._death)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_site(root: Path) -> Iterator[str]:
    """Serve `root` over HTTP on another port: a stand-in for a site embedding the widget."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def build_index(index_dir: Path, encoder_dir: Path, sources: list[Path]) -> Path:
    from qa.indexer import index_paths

    index_dir.mkdir(parents=True)
    shutil.copytree(encoder_dir, index_dir / "encoder")
    report = index_paths(sources, store_at(index_dir))
    assert not report.problems, report.problems
    return index_dir


def write_hostile_corpus(folder: Path) -> Path:
    """Three articles (.txt, .html, .jsonl) whose titles, text and URLs carry PAYLOADS."""
    folder.mkdir(parents=True, exist_ok=True)
    script, img, svg, js, _ = PAYLOADS
    (folder / "lantern-festival.txt").write_text(
        f"Quillfeather lantern festival {script}\n\n"
        f"The Quillfeather lantern festival is held every October on the old harbour wall, "
        f"where the organisers painted {script} and {img} on their paper lanterns.\n\n"
        f"Children who followed the sign reading {js} found the hot chocolate stand, and the "
        f"banner {svg} hung above the stage for the whole weekend.\n\n"
        "About four thousand people came this year, a record for the small town.\n",
        encoding="utf-8",
    )
    (folder / "harbour-market.html").write_text(
        "<!doctype html><html><head>"
        "<title>Quillfeather harbour market &lt;img src=x onerror=alert(1)&gt;</title>"
        '<link rel="canonical" href="javascript:alert(1)">'
        "<script>alert(1)</script></head><body>"
        f'<nav><a href="{js}">Home</a></nav><article>'
        "<h1>Quillfeather harbour market &lt;img src=x onerror=alert(1)&gt;</h1>"
        "<p>The Quillfeather harbour market opens every Saturday at dawn, and its stall "
        "keepers chalk &lt;script&gt;alert(1)&lt;/script&gt; and "
        "&quot;&gt;&lt;svg onload=alert(1)&gt; on their price boards for fun.</p>"
        "<p>Fishermen sell the morning catch from the quay, bakers bring rye loaves, and a "
        f'brass band plays until noon. <a href="{js}">Market website</a> '
        f"<img src=x onerror=alert(1)></p>"
        "<p>The market has run every week since 1962 and draws visitors from the whole "
        "coast, who come for the smoked fish, the cheese and the view of the lighthouse.</p>"
        "</article></body></html>",
        encoding="utf-8",
    )
    record = {
        "id": f"quill/ferry?{svg}",
        "title": f"Quillfeather ferry {script} {svg}",
        "url": js,
        "published": "2024-05-01",
        "text": (
            f"The Quillfeather ferry timetable now lists {script} and {img} as departure "
            "codes, after a prank by students from the marine college.\n\n"
            f"Passengers who scanned the poster reached {js} instead of the booking page, "
            "and the ferry company apologised for the confusion."
        ),
    }
    (folder / "ferry.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return folder


@dataclass
class PageWatch:
    """Everything a page did that it should not: dialogs, uncaught errors, CSP refusals."""

    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        def on_dialog(dialog) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.page_errors == [], self.page_errors
        assert self.csp_violations == [], self.csp_violations
