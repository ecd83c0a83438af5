"""The HTTP API under load, and the server's memory, over a given index.

    python bench/bench_server.py --index-dir INDEX [--clients 8] [--requests 2000]
        [--rate R] [--no-cache] [--questions repeated|distinct] [--out NAME]

Starts `qa serve` on a free 127.0.0.1 port, reads its resident memory after
start-up and again after the load, then sends POST /api/ask from N concurrent
clients (bench/load.py) and prints answers/s, p50, p95, p99 and errors.
Without --rate each client asks again as soon as it is answered (saturation);
with --rate R requests are due at R/s in all and timed from when they were due.
Questions: "repeated" cycles through 10 news questions (what the answer cache
is for); "distinct" adds the 632 XQuAD questions, so few repeat.
Writes bench/out/NAME.json (default server.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import run_load  # noqa: E402
from bench.shared import find_shared  # noqa: E402
from qa.evaluation import load_questions  # noqa: E402
from qa.store import IndexStore  # noqa: E402

QUESTIONS = [
    "Who is the chancellor of the exchequer?",
    "How much did Time Warner's profits rise?",
    "What did the Football Association say about the referee?",
    "Which mobile phone company launched a new handset?",
    "When will the general election be held?",
    "How many people watched the final?",
    "What did the Bank of England decide about interest rates?",
    "Who won the best actor award?",
    "What is the boiling point of mercury?",
    "Why did the airline cut jobs?",
]


def distinct_questions() -> list[str]:
    squad = load_questions(find_shared() / "eval" / "xquad-en-dev.json")
    return QUESTIONS + [item.question for item in squad]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int, *fields: str) -> dict[str, float]:
    """Fields of /proc/PID/status (VmRSS, RssAnon, RssFile...) in MB; {} once it exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return {}
    found = (line.partition(":") for line in lines)
    return {k: int(v.split()[0]) / 1024 for k, _, v in found if k in fields}


def rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmRSS").get("VmRSS", float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description="API load and server memory")
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help="turn the answer cache off (QA_ANSWER_CACHE=0): every request is computed",
    )
    ap.add_argument("--rate", type=float, help="fixed arrival rate (requests/s in all)")
    ap.add_argument("--questions", choices=("repeated", "distinct"), default="repeated")
    ap.add_argument("--out", default="server", help="name of the JSON file in bench/out")
    args = ap.parse_args()
    if not IndexStore(args.index_dir).exists():
        ap.error(f"no index at {args.index_dir}: build one with `qa index PATH --index-dir DIR`")

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_RATE_LIMIT_PER_MINUTE": "0"}
    if args.no_cache:
        env["QA_ANSWER_CACHE"] = "0"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa",
            "serve",
            "--port",
            str(port),
            "--index-dir",
            str(args.index_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError as exc:
                if server.poll() is not None or time.perf_counter() - started > 120:
                    message = "server did not start: " + server.stderr.read().decode()
                    raise SystemExit(message) from exc
                time.sleep(0.2)
        startup_s = time.perf_counter() - started
        rss_start = rss_mb(server.pid)
        questions = QUESTIONS if args.questions == "repeated" else distinct_questions()
        result = asyncio.run(
            run_load(base, questions, args.clients, args.requests, args.seconds, rate=args.rate)
        )
        rss_after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {
        "index_dir": str(args.index_dir),
        "articles": health["articles"],
        "chunks": health["chunks"],
        "startup_s": round(startup_s, 2),
        "rss_mb_after_start": round(rss_start, 1),
        "rss_mb_after_load": round(rss_after, 1),
        "clients": args.clients,
        "answer_cache": not args.no_cache,
        "questions": args.questions,
        "distinct_questions": len(questions),
        "load": result.as_dict() if hasattr(result, "as_dict") else result.__dict__,
    }
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.out}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
