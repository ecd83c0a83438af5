"""Earlier turns carried by the no-JavaScript form, signed so they cannot be forged.

Without JavaScript each question is a full page load; the page keeps the
conversation by echoing the previous answers in a hidden field, and they are the
history a follow-up question is understood with. They are sealed with an HMAC
under a key that lives only in this process, so a page never shows a "quote"
the server did not produce. A tampered or stale token
(e.g. after a restart) is silently dropped: the conversation just starts over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import zlib
from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from qa.conversation import MAX_TURNS
from qa.models import Answer

_ANSWERS = TypeAdapter(list[Answer])


# As many earlier turns as a follow-up is understood with. Twenty answers of three
# quotes seal to about 5 kB (measured in tests/test_pages.py): a fair hidden field.
KEEP_TURNS = MAX_TURNS


class TurnSeal:
    def __init__(self, key: bytes | None = None, keep: int = KEEP_TURNS) -> None:
        self._key = key or secrets.token_bytes(32)
        self.keep = keep

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def seal(self, answers: Sequence[Answer]) -> str:
        raw = _ANSWERS.dump_json(list(answers)[-self.keep :])
        payload = base64.urlsafe_b64encode(zlib.compress(raw)).decode()
        return f"{payload}.{self._mac(payload.encode())}"

    def open(self, token: str | None) -> list[Answer]:
        if not token or "." not in token:
            return []
        payload, mac = token.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return []
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(payload.encode()))
            return _ANSWERS.validate_json(raw)[-self.keep :]
        except (ValueError, zlib.error, ValidationError):
            return []
