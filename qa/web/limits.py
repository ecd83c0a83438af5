"""Load limits: a per-client request rate on /api, and a cap on questions answered at once.

The rate limit is a pure ASGI middleware (a refused request costs no routing, no
body read); the answering cap is an async context manager the answering routes
enter around the thread-pool call, so a burst queues briefly and then gets a
503 instead of piling threads onto two CPU cores.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.errors import RateLimited, ServerBusy
from qa.web.errors import ErrorRenderer, error_headers, is_api_path

MAX_TRACKED_CLIENTS = 10_000  # beyond this the least recently seen client is forgotten
_PerLoop = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]


class TokenBuckets:
    """One token bucket per client: `per_minute` requests a minute, bursts up to `per_minute`.

    `take(client)` spends a token and returns 0, or returns the seconds until the
    next token when the bucket is empty.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, client: str) -> float:
        now = self.clock()
        tokens, at = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.refill)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.refill
        self._buckets[client] = (tokens, now)  # re-inserted last: most recently seen
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """429 (with Retry-After) for a client over its rate under /api; other paths are free.

    The client is the connection's peer address: behind a reverse proxy, run uvicorn
    with --proxy-headers (and --forwarded-allow-ips) so that is the real client.
    """

    def __init__(self, app: ASGIApp, per_minute: int, render: ErrorRenderer) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute) if per_minute > 0 else None
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        exc = RateLimited(
            f"too many requests: the limit is {int(self.buckets.capacity)} a minute per client; "
            f"try again in {math.ceil(wait)} s",
            retry_after=wait,
        )
        headers = error_headers(exc)
        response = self.render(Request(scope), exc.status, exc.code, exc.message, headers)
        await response(scope, receive, send)


class AnswerSlots:
    """At most `limit` questions answered at once; a question waits up to `wait` seconds."""

    RETRY_AFTER = 1.0

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        # One semaphore per event loop: the server has one, but tests start several
        # (each TestClient), and an asyncio.Semaphore must not cross loops.
        self._semaphores: _PerLoop = weakref.WeakKeyDictionary()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        semaphore = self._semaphore()
        if semaphore.locked():
            try:
                await asyncio.wait_for(semaphore.acquire(), timeout=self.wait)
            except TimeoutError:
                raise ServerBusy(
                    "the server is busy answering other questions; try again in a moment",
                    retry_after=self.RETRY_AFTER,
                ) from None
        else:
            await semaphore.acquire()  # free: no wait, and no timeout that could fire at 0 s
        try:
            yield
        finally:
            semaphore.release()
