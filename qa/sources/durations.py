"""Durations as people write them: "45s", "30m", "2h", "1d", "1h30m" ↔ seconds."""

from __future__ import annotations

import re

from qa.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
MIN_SECONDS = 60  # a source is not read more often than once a minute


def parse_duration(text: str, *, minimum: int = MIN_SECONDS) -> int:
    """Seconds in `text`; InvalidInput with an example on anything else."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InvalidInput(
            f"invalid duration {text!r}: write a number and a unit (s, m, h, d, w), "
            "e.g. 30m, 2h, 1d or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < minimum:
        raise InvalidInput(f"duration {text!r} is too short: at least {format_duration(minimum)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 1800 → "30m", 5400 → "1h30m"."""
    left = round(seconds)
    if left <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out.append(f"{left // size}{unit}")
            left %= size
    return "".join(out)
