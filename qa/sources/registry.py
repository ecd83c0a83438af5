"""The sources of an index and what was last fetched from each: INDEX/sources.sqlite.

In: locations to add or remove, and the outcome of each refresh. Out: `Source` rows
(location, schedule, last outcome, and the per-source `state`: conditional-request
validators and article ids per URL, or file signatures per path).

SQLite commits atomically (rollback journal, full sync), so a crash leaves the last
committed state whole. A refresh records its state only after its index version is
published: a crash in between costs at most a re-download, never a skipped page.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from qa.errors import IndexCorrupt, InvalidInput, SourceNotFound
from qa.models import RefreshReport, SourceInfo, SourceStatus
from qa.sources.durations import format_duration

FILE_NAME = "sources.sqlite"
RETRY_AFTER_FAILURE = 900  # seconds: a failed source is tried again sooner than its period

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    location TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    every INTEGER NOT NULL,
    added REAL NOT NULL,
    last_run REAL,
    status TEXT NOT NULL DEFAULT 'new',
    error TEXT,
    report TEXT,
    state TEXT NOT NULL DEFAULT '{}'
);
"""

Kind = Literal["web", "folder"]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class Source:
    id: int
    location: str  # an http(s) URL, or a folder's absolute path
    kind: Kind
    name: str | None
    every: int  # seconds between refreshes
    added: float
    last_run: float | None = None
    status: str = "new"
    error: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "web":
            return urlsplit(self.location).hostname or self.location
        return Path(self.location).name or self.location

    def next_due(self) -> float:
        if self.last_run is None:
            return self.added  # never refreshed: due at once
        wait = self.every if self.status != "failed" else min(self.every, RETRY_AFTER_FAILURE)
        return self.last_run + wait

    def article_ids(self) -> set[str]:
        """Articles this source indexed, as its state remembers them."""
        ids = {p["article_id"] for p in self.state.get("pages", {}).values() if p.get("article_id")}
        for entry in self.state.get("files", {}).values():
            ids.update(entry.get("ids", []))
        return ids

    def status_model(self) -> SourceStatus:
        return SourceStatus(**self._status_fields())

    def info(self) -> SourceInfo:
        return SourceInfo(
            **self._status_fields(),
            location=self.location,
            every=format_duration(self.every),
            articles=len(self.article_ids()),
        )

    def _status_fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.display_name,
            "kind": self.kind,
            "status": self.status,
            "last_refresh": _iso(self.last_run),
            "next_due": _iso(self.next_due()),
            "error": self.error,
        }


class SourceRegistry:
    """The sources table of one index directory."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / FILE_NAME

    @contextlib.contextmanager
    def _db(self, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.path.exists():
            yield None  # no source was ever added: nothing to read, nothing to create
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise IndexCorrupt(f"cannot open {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(_SCHEMA)
            with db:  # one transaction: committed whole or not at all
                yield db
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"cannot use {self.path}: {exc}") from exc
        finally:
            db.close()

    def all(self) -> list[Source]:
        with self._db(create=False) as db:
            if db is None:
                return []
            rows = db.execute(f"SELECT {_COLUMNS} FROM sources ORDER BY id").fetchall()  # nosec B608
        return [_source(r) for r in rows]

    def get(self, ref: str) -> Source:
        """A source by its id or its location (as added)."""
        for source in self.all():
            if ref == str(source.id) or ref == source.location:
                return source
        raise SourceNotFound(f"no source {ref!r}: `qa sources list` shows them")

    def due(self, now: float | None = None) -> list[Source]:
        now = time.time() if now is None else now
        return [s for s in self.all() if s.next_due() <= now]

    def add(self, location: str, kind: Kind, every: int, name: str | None = None) -> Source:
        with self._db(create=True) as db:
            assert db is not None
            found = db.execute("SELECT id FROM sources WHERE location = ?", (location,)).fetchone()
            if found:
                raise InvalidInput(f"{location} is already source {found[0]}")
            db.execute(
                "INSERT INTO sources (location, kind, name, every, added) VALUES (?,?,?,?,?)",
                (location, kind, name, every, time.time()),
            )
        return self.get(location)

    def remove(self, source: Source) -> None:
        with self._db(create=True) as db:
            assert db is not None
            db.execute("DELETE FROM sources WHERE id = ?", (source.id,))

    def record(self, source: Source, report: RefreshReport, state: dict[str, Any] | None) -> Source:
        """Store a refresh's outcome; `state` None keeps the old one (nothing published)."""
        status = "failed" if report.error else ("partial" if report.problems else "ok")
        error = report.error or (
            f"{len(report.problems)} page(s) failed, first: {report.problems[0]}"
            if report.problems
            else None
        )
        with self._db(create=True) as db:
            assert db is not None
            db.execute(
                "UPDATE sources SET last_run = ?, status = ?, error = ?, report = ?, "
                "state = COALESCE(?, state) WHERE id = ?",
                (
                    time.time(),
                    status,
                    error,
                    report.model_dump_json(),
                    None if state is None else json.dumps(state),
                    source.id,
                ),
            )
        try:
            return self.get(str(source.id))
        except SourceNotFound:  # removed while it was being refreshed
            return source


_COLUMNS = "id, location, kind, name, every, added, last_run, status, error, state"


def _source(row: tuple) -> Source:
    *head, state = row
    return Source(*head, state=json.loads(state or "{}"))
