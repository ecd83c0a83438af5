"""The background refresher of `qa serve`: one thread that refreshes due sources.

In: the settings (the index directory holds the registry). Out: new index versions,
which the running Answerer picks up by itself, and each outcome in the registry
(`qa sources list`, `/api/health`).

It never blocks request handling: it runs in its own thread, writes through the
indexer under the one-writer lock like any `qa index`, and readers keep answering
from the live version until the new one is published. A `qa index` or `qa refresh`
holding a lock makes it skip a turn, not fail.
"""

from __future__ import annotations

import logging
import threading

from qa.errors import IndexBusy, QAError
from qa.settings import Settings
from qa.sources.refresh import refresh_sources
from qa.sources.registry import SourceRegistry

logger = logging.getLogger("qa.sources")

TICK_SECONDS = 30.0  # how often the registry is checked for due sources


class SourceScheduler:
    def __init__(self, settings: Settings, *, tick: float = TICK_SECONDS) -> None:
        self.settings = settings
        self.tick = tick
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qa-sources", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end; a refresh in flight stops between requests and
        publishes nothing."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self) -> None:
        due = SourceRegistry(self.settings.index_dir).due()
        if not due:
            return
        try:
            reports = refresh_sources(due, self.settings, stop=self.stop_event)
        except IndexBusy as exc:
            logger.info("sources not refreshed this turn: %s", exc.message)
            return
        for report in reports:
            if report.error:
                logger.warning("refresh of %s failed: %s", report.source, report.error)
            else:
                logger.info(
                    "refreshed %s: %d added, %d updated, %d removed, %d page errors",
                    report.source,
                    report.index.added,
                    report.index.updated,
                    report.index.removed,
                    len(report.problems),
                )

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run_due()
            except QAError as exc:  # a damaged registry, say: log it, keep the server up
                logger.warning("sources: %s", exc.message)
            except Exception:
                logger.exception("sources: unexpected error in the background refresher")
            if self.stop_event.wait(self.tick):
                break
