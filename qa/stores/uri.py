"""A store URI (`--store URI`, `QA_STORE`) → where the store is and what it is called.

Accepted (the contract's last section):

    milvus://HOST:PORT            a Milvus server or cluster (PORT defaults to 19530)
    milvus:///ABSOLUTE/PATH.db    Milvus Lite: the engine in-process, data in one file
    ...?prefix=NAME               collection names start NAME_ (default "qa"), so
                                  several indexes can share one Milvus

Anything else raises InvalidInput naming these forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlsplit

from qa.errors import InvalidInput

DEFAULT_PORT = 19530
DEFAULT_PREFIX = "qa"
# Milvus collection names: a letter or underscore, then letters, digits, underscores.
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ACCEPTED = (
    "milvus://HOST:PORT (a Milvus server) or milvus:///ABSOLUTE/PATH.db (Milvus Lite), "
    "optionally followed by ?prefix=NAME"
)


@dataclass(frozen=True)
class StoreURI:
    kind: str  # "server" or "lite"
    address: str  # what pymilvus.MilvusClient takes: http://HOST:PORT or /PATH.db
    prefix: str = DEFAULT_PREFIX

    def collection(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @property
    def shown(self) -> str:
        """The URI written back in its own form, for messages and /api/health."""
        where = self.address.removeprefix("http://") if self.kind == "server" else self.address
        prefix = "" if self.prefix == DEFAULT_PREFIX else f"?prefix={self.prefix}"
        return f"milvus://{where}{prefix}"


def _invalid(uri: str, why: str) -> InvalidInput:
    return InvalidInput(f"the store URI {uri!r} {why}: use {ACCEPTED}")


def parse_store_uri(uri: str) -> StoreURI:
    text = (uri or "").strip()
    parts = urlsplit(text)
    if parts.scheme != "milvus":
        raise _invalid(text, "is not a Milvus URI")
    if parts.fragment:
        raise _invalid(text, "has a #fragment")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"prefix"})
    if unknown:
        raise _invalid(text, f"has an unknown option {unknown[0]!r}")
    prefix = DEFAULT_PREFIX
    if "prefix" in query:
        if len(query["prefix"]) != 1 or not _PREFIX.fullmatch(query["prefix"][0]):
            raise _invalid(
                text, "has a prefix that is not a letter or _ followed by letters, digits or _"
            )
        prefix = query["prefix"][0]
    if parts.netloc:  # milvus://HOST:PORT
        if parts.path not in ("", "/"):
            raise _invalid(text, "names a path after the server")
        if "@" in parts.netloc:  # said without them: a message must not repeat a password
            shown = f"{parts.scheme}://…@{parts.netloc.rsplit('@', 1)[1]}"
            raise _invalid(shown, "carries credentials, which are not taken here")
        try:
            host, port = parts.hostname, parts.port or DEFAULT_PORT
        except ValueError as exc:  # a port that is not a number in 0..65535
            raise _invalid(text, "has a port that is not a number") from exc
        if not host:
            raise _invalid(text, "names no host")
        shown = f"[{host}]" if ":" in host else host
        return StoreURI("server", f"http://{shown}:{port}", prefix)
    path = PurePosixPath(parts.path)
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        raise _invalid(text, "names neither a server nor an absolute file path")
    if path.suffix != ".db":  # how pymilvus tells a Milvus Lite file from a server
        raise _invalid(text, "names a Milvus Lite file whose name does not end in .db")
    if ".." in path.parts:
        raise _invalid(text, "has '..' in its path")
    return StoreURI("lite", str(path), prefix)
