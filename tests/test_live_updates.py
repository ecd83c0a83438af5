"""A live `qa serve` under load keeps answering while the index changes under it.

Concurrent clients (bench/load.py) ask questions while `python -m qa index`
adds articles and `python -m qa articles rm` removes them, so the server
switches versions several times mid-load. No request may fail (no 5xx, no
connection error), and once a removal has returned, no answer to a question
sent after it may cite the removed article, although that question is asked
again and again and only that article answered it before.

The default run makes 4 version switches with the answer cache on (as deployed:
a cached answer must not outlive its version); `-m slow` makes 20 with the
cache off, so every answer is computed while the versions switch.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.load import loopback_url, run_load
from bench.load import main as load_main
from tests.browser_support import LiveServer, build_index
from tests.conftest import store_at

from .conftest import BBC_DIR, PROJECT, SAMPLES

PLACES = ("Veltrany", "Quorsk", "Ambrell", "Tiskavo", "Halvek", "Pennyrood")
PLACES += ("Ostrevale", "Brindlemoor", "Caskwater", "Dunmirren", "Elsbrook", "Morrowfen")
KEEPERS = ("Orsolya Bram", "Tadeo Quill", "Minna Sarkov", "Ruben Ashdale", "Ilse Vantongeren")
KEEPERS += ("Kofi Amberle", "Priya Lockhart", "Sven Oduya", "Lotte Marchbank", "Yusuf Tenbrook")
KEEPERS += ("Greta Holloway", "Anand Wexley")
COLOURS = ("teal", "crimson", "ochre", "violet", "saffron", "cobalt", "amber", "jade")
COLOURS += ("scarlet", "indigo", "copper", "lilac")
OTHER_QUESTIONS = (
    "What is K-SPACE?",
    "How much did Time Warner's profits rise?",
    "What is the boiling point of mercury on Jupiter?",
)
BATCH = 2  # BBC articles per `qa index` run

pytestmark = pytest.mark.two_processes


def target_id(i: int) -> str:
    return f"lighthouse-{i}"


def target_question(i: int) -> str:
    # Named after the keeper too: the sentence that answers calls the tower "it".
    return f"What colour did {KEEPERS[i]} paint the {PLACES[i]} lighthouse?"


def write_targets(path: Path) -> Path:
    """Articles that each alone answer one question (checked before the load starts)."""
    rows = [
        {
            "id": target_id(i),
            "title": f"The {place} lighthouse",
            "text": f"The {place} lighthouse stands on a granite spit north of the fishing "
            f"village. In {1890 + 7 * i} its keeper, {keeper}, painted the whole tower "
            f"{colour} so that ships could see it in fog. The {place} lighthouse was "
            "automated decades later and now houses a small museum about the keeper.",
        }
        for i, (place, keeper, colour) in enumerate(zip(PLACES, KEEPERS, COLOURS, strict=True))
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def write_bbc_batch(folder: Path, files: list[Path], first: int) -> tuple[Path, list[str]]:
    """BBC articles as JSON lines with given ids, so they can be removed by id later."""
    ids, rows = [], []
    for n, path in enumerate(files, start=first):
        title, _, text = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        ids.append(f"bbc-live-{n}")
        rows.append({"id": ids[-1], "title": title.strip(), "text": text.strip()})
    out = folder / f"batch-{first}.jsonl"
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return out, ids


def qa(*args: str, index_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QA_INDEX_DIR"}
    run = subprocess.run(
        [sys.executable, "-m", "qa", *args, "--index-dir", str(index_dir)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"qa {' '.join(args)}: {run.stderr}"


@dataclass
class Updates:
    """The writer side: adds and removals run one after another in a thread."""

    index_dir: Path
    work: Path
    rounds: int
    bbc: list[Path]
    removed_at: dict[str, float] = field(default_factory=dict)  # id -> when `rm` returned
    switches: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _op(self, kind: str, *args: str) -> None:
        before = store_at(self.index_dir).current_version()
        qa(*args, index_dir=self.index_dir)
        self.switches += store_at(self.index_dir).current_version() != before
        self.ops[kind] += 1

    def run(self) -> None:
        try:
            time.sleep(1.0)  # let the load settle first
            added: list[list[str]] = []
            for i in range(self.rounds):
                files = self.bbc[i * BATCH : (i + 1) * BATCH]
                batch, ids = write_bbc_batch(self.work, files, i * BATCH)
                self._op("index", "index", str(batch))
                added.append(ids)
                # From the third round on, a batch added two rounds ago goes with it.
                older = added[i - 2] if i >= 2 else []
                self._op("rm", "articles", "rm", target_id(i), *older)
                with self.lock:
                    self.removed_at[target_id(i)] = time.monotonic()
        except BaseException as exc:  # reported by the test, in its own thread
            self.error = exc
        finally:
            self.done.set()

    def removed(self) -> dict[str, float]:
        with self.lock:
            return dict(self.removed_at)


@pytest.fixture
def live_index(tmp_path, encoder_dir) -> Path:
    bbc = sorted(BBC_DIR.glob("business/*.txt"))[:5]
    targets = write_targets(tmp_path / "lighthouses.jsonl")
    return build_index(tmp_path / "index", encoder_dir, [SAMPLES, targets, *bbc])


@pytest.fixture
def live_server(request, live_index, monkeypatch):
    # A load test on purpose: no per-client rate limit (LiveServer passes the environment
    # on). The answer cache is the default's unless the test says (0: every answer is
    # computed while versions switch under it; on: stale cached answers are the risk).
    monkeypatch.setenv("QA_RATE_LIMIT_PER_MINUTE", "0")
    if (cache := getattr(request, "param", None)) is not None:
        monkeypatch.setenv("QA_ANSWER_CACHE", cache)
    server = LiveServer(live_index).start()
    try:
        yield server
    finally:
        server.stop()


def cites(body: dict) -> set[str]:
    return {q["article"]["id"] for q in body.get("quotes", [])}


def run_live_updates(
    server: LiveServer, index_dir: Path, work: Path, rounds: int, cap: float
) -> None:
    targets = [target_question(i) for i in range(rounds)]
    with httpx.Client(timeout=60) as client:
        for i, question in enumerate(targets):  # the questions really are theirs
            body = client.post(server.base + "/api/ask", json={"question": question}).json()
            assert body["quotes"][0]["article"]["id"] == target_id(i), body

    bbc = sorted(BBC_DIR.glob("tech/*.txt"))[: rounds * BATCH]
    updates = Updates(index_dir, work, rounds, bbc)
    late_citations: list[tuple[str, str]] = []
    cited_before: Counter[str] = Counter()

    def on_answer(question: str, sent_at: float, body: dict) -> None:
        removed = updates.removed()
        for article in cites(body):
            if article in removed and sent_at > removed[article]:
                late_citations.append((question, article))
            elif article.startswith("lighthouse-"):
                cited_before[article] += 1

    thread = threading.Thread(target=updates.run, name="index-updates", daemon=True)
    thread.start()
    result = asyncio.run(
        run_load(
            server.base,
            targets + list(OTHER_QUESTIONS),
            clients=4,
            total=100_000,
            seconds=cap,
            on_answer=on_answer,
            should_stop=updates.done.is_set,
        )
    )
    thread.join(timeout=300)
    assert updates.error is None, updates.error
    assert updates.done.is_set(), f"the updates did not finish within the {cap} s cap"

    # Asked again now, repeatedly: the removed articles stay gone.
    with httpx.Client(timeout=60) as client:
        for i in range(rounds):
            for _ in range(3):
                body = client.post(
                    server.base + "/api/ask", json={"question": target_question(i)}
                ).json()
                assert target_id(i) not in cites(body), body
        health = client.get(server.base + "/api/health").json()
    snap = store_at(index_dir).open()
    assert health["articles"] == snap.n_articles  # the server follows the last version
    snap.close()

    print(
        f"\nlive updates: {result.summary()}; {updates.switches} version switches "
        f"({dict(updates.ops)}); removed-article citations before removal "
        f"{sum(cited_before.values())}, after {len(late_citations)}"
    )
    assert result.failed == 0, result.as_dict()
    assert result.rejected == 0, result.as_dict()
    assert late_citations == []
    assert updates.switches == 2 * rounds  # every add and every removal published
    assert sum(cited_before.values()) > 0, "no answer cited a target before its removal"


def test_answers_never_fail_or_cite_removed_articles_during_updates(
    live_server, live_index, tmp_path
):
    run_live_updates(live_server, live_index, tmp_path, rounds=2, cap=45)


@pytest.mark.slow
@pytest.mark.parametrize("live_server", ["0"], indirect=True, ids=["no-answer-cache"])
def test_a_long_load_across_many_index_updates(live_server, live_index, tmp_path):
    run_live_updates(live_server, live_index, tmp_path, rounds=10, cap=300)


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "http://10.0.0.1:8000", "http://127.0.0.1.nip.io", "file:///etc/passwd"],
)
def test_the_load_generator_refuses_anything_but_loopback(url):
    with pytest.raises(ValueError, match="refusing"):
        loopback_url(url)
    with pytest.raises(ValueError, match="refusing"):
        asyncio.run(run_load(url, ["q"], clients=1, total=1, seconds=1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "rate must be in"),
        (["--clients", "0"], "clients must be between"),
        (["--requests", "0"], "total must be"),
    ],
)
def test_the_load_generator_cli_names_a_bad_option_without_a_traceback(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
