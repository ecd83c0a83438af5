"""A bounded load generator for `POST /api/ask` on a local `qa serve`.

    python bench/load.py --url http://127.0.0.1:8000 --clients 8 --requests 2000

N concurrent clients ask questions (round robin) until `total` requests are
sent or `seconds` have passed, whichever comes first, and the latency and
status of every request are recorded. Prints answers/s, p50, p95, p99 and
errors; as a script it also writes bench/out/load.json. Only loopback URLs
(127.0.0.1, localhost, ::1) are accepted: this is a benchmark, not a tool for
loading someone else's server.

Two ways to load:
- closed loop (default): each client sends its next request as soon as its
  last one is answered, so the figure is the server's saturation throughput
  and latency grows with the queue (8 clients → 8 requests always waiting);
- fixed rate (`--rate R`): requests are due at R per second in all, spread
  over the clients, whatever the server does (like wrk2). A request is timed
  from when it was due, not when a free client sent it, so a slow server
  cannot hide its queue by slowing the generator down. This is how "p50 at
  100 answers/s" is measured.

As a module: `await run_load(base_url, questions, clients, total, seconds, rate=None)`
returns a `LoadResult`; `on_answer(question, sent_at, body)` (optional) sees
every answer, e.g. to check what was cited after an index update, and
`should_stop()` (optional) ends the run early, e.g. when a test's updates are done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_CLIENTS = 256
MAX_SECONDS = 3600.0
DEFAULT_QUESTIONS = (
    "What is K-SPACE?",
    "How many business meetings did the Korea Pavilion hold?",
    "How much did Time Warner's profits rise?",
    "Who is the chancellor of the exchequer?",
    "What is the boiling point of mercury on Jupiter?",
)
OUT = Path(__file__).resolve().parent / "out" / "load.json"

AnswerHook = Callable[[str, float, dict], None]


def loopback_url(base_url: str) -> str:
    """`base_url` without a trailing slash, if it points at this machine; else ValueError."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        raise ValueError(
            f"refusing to load {base_url!r}: only http(s) URLs on 127.0.0.1, localhost or ::1"
        )
    return base_url.rstrip("/")


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _error_code(response: httpx.Response) -> str:
    """The API's error code of a failed answer (`{"error": {"code": ...}}`)."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "no error code"


@dataclass
class LoadResult:
    """What a load run saw. `failed` counts 5xx answers and requests that got no answer."""

    clients: int
    rate: float | None = None  # requests/s asked for; None: closed loop
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # every request that got a status
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)  # no HTTP answer at all
    error_codes: Counter[str] = field(default_factory=Counter)  # "503 server_busy": what failed

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.transport_errors.values())

    @property
    def answers(self) -> int:
        return self.statuses[200]

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500) + sum(
            self.transport_errors.values()
        )

    @property
    def rejected(self) -> int:
        """4xx answers: rate limits (429), bad input; not server failures."""
        return sum(n for s, n in self.statuses.items() if 400 <= s < 500)

    @property
    def answers_per_s(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0

    def latency(self, p: float) -> float | None:
        value = percentile(sorted(self.latencies_ms), p)
        return None if value is None else round(value, 1)

    def as_dict(self) -> dict:
        return {
            "clients": self.clients,
            "rate": self.rate,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "answers": self.answers,
            "rps": round(self.answers_per_s, 1),
            "p50_ms": self.latency(50),
            "p95_ms": self.latency(95),
            "p99_ms": self.latency(99),
            "errors": self.failed,
            "rejected": self.rejected,
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "transport_errors": dict(self.transport_errors),
            "error_codes": dict(self.error_codes),
        }

    def summary(self) -> str:
        return (
            f"{self.requests} requests from {self.clients} clients"
            + (f" at {self.rate:g}/s" if self.rate else "")
            + f" in {self.seconds:.1f} s: "
            f"{self.answers_per_s:.1f} answers/s, p50 {self.latency(50)} ms, "
            f"p95 {self.latency(95)} ms, p99 {self.latency(99)} ms, {self.failed} errors, "
            f"{self.rejected} rejected (4xx); statuses {dict(self.statuses)}"
            + (f", transport errors {dict(self.transport_errors)}" if self.transport_errors else "")
            + (f", failed as {dict(self.error_codes)}" if self.error_codes else "")
        )


async def run_load(
    base_url: str,
    questions: Sequence[str],
    clients: int,
    total: int,
    seconds: float,
    *,
    headers: Mapping[str, str] | None = None,
    on_answer: AnswerHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout: float = 60.0,
    rate: float | None = None,
) -> LoadResult:
    """Ask `questions` round robin from `clients` workers: at most `total` requests,
    none started after `seconds` (or once `should_stop()` is true); with `rate`,
    request i is due at i / rate seconds after the start (see the module's doc)."""
    url = loopback_url(base_url) + "/api/ask"
    if not questions:
        raise ValueError("no questions to ask")
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}")
    if total < 1 or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"total must be >= 1 and seconds in (0, {MAX_SECONDS:.0f}]")
    if rate is not None and not 0 < rate <= 10_000:
        raise ValueError("rate must be in (0, 10000] requests per second")

    result = LoadResult(clients=clients, rate=rate)
    next_request = 0
    started = time.monotonic()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_request
        while next_request < total and time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                break
            index = next_request
            question = questions[index % len(questions)]
            next_request += 1  # one event loop: no lock needed between awaits
            if rate is None:
                sent_at = time.monotonic()
            else:
                sent_at = started + index / rate  # due time: queueing counts as latency
                await asyncio.sleep(max(0.0, sent_at - time.monotonic()))
            try:
                response = await client.post(url, json={"question": question})
            except httpx.HTTPError as exc:
                result.transport_errors[type(exc).__name__] += 1
                continue
            result.latencies_ms.append((time.monotonic() - sent_at) * 1000)
            result.statuses[response.status_code] += 1
            if response.status_code >= 500:
                result.error_codes[f"{response.status_code} {_error_code(response)}"] += 1
            if on_answer is not None and response.status_code == 200:
                on_answer(question, sent_at, response.json())

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        limits=limits, timeout=timeout, headers=dict(headers or {}), follow_redirects=False
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    result.seconds = time.monotonic() - started
    return result


def read_questions(path: Path) -> list[str]:
    """One question per line, or JSON lines with a "question" field."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("{"):
            line = str(json.loads(line).get("question") or "").strip()
        if line:
            questions.append(line)
    return questions


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Bounded load on POST /api/ask of a local qa serve")
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="the server (loopback only)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients")
    ap.add_argument("--requests", type=int, default=2000, help="requests in all, at most")
    ap.add_argument("--seconds", type=float, default=120.0, help="time cap")
    ap.add_argument("--rate", type=float, help="fixed arrival rate, requests/s in all")
    ap.add_argument("--questions", type=Path, help="questions file (lines or JSON lines)")
    ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the JSON result")
    args = ap.parse_args(argv)
    try:
        loopback_url(args.url)
    except ValueError as exc:
        ap.error(str(exc))
    questions = read_questions(args.questions) if args.questions else list(DEFAULT_QUESTIONS)
    if any(":" not in h for h in args.header):
        ap.error("--header takes 'Name: value'")
    headers = {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in args.header)}
    try:
        result = asyncio.run(
            run_load(
                args.url,
                questions,
                args.clients,
                args.requests,
                args.seconds,
                headers=headers,
                rate=args.rate,
            )
        )
    except ValueError as exc:  # bad --clients, --requests, --seconds or --rate
        ap.error(str(exc))
    print(result.summary())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"url": args.url, **result.as_dict()}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
