"""Parsing of JSON Lines event files into validated events and dead-letter lines (no database; one
line: `event_line.py`).

One event per line: `{"id", "occurred_at", "content", "event_type", "source", "session_id", "metadata"}`.
`occurred_at` (ISO 8601 with a zone) and non-empty `content` are required; a missing `id` is derived
from the event's fields so re-ingesting a file yields the same ids. A line that cannot be used becomes
a `RejectedLine` whose reason names the problem and the fix; the rest of the file is kept.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from resources.memory.event_line import Event, LineLimits, Rejected, excerpt, parse_line
from resources.memory.redaction import Redactor

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RejectedLine:
    """A line that cannot be used, with a bounded excerpt and a reason that names the fix."""

    file: str
    line: int
    excerpt: str
    reason: str
    day: date | None = None


@dataclass(frozen=True)
class ParsedFile:
    """The outcome of parsing one file: its hash, the kept events and the rejected lines."""

    path: Path
    sha256: str
    events: list[Event] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)
    # Secrets replaced by placeholders while parsing, by kind (see redaction.py).
    redactions: Counter[str] = field(default_factory=Counter)

    @property
    def days(self) -> list[date]:
        """The distinct UTC days of the kept events, in order."""
        return sorted({event.day for event in self.events})


def _fingerprint(event: Event) -> dict[str, Any]:
    """What makes two lines with one id the same event (provenance aside)."""
    fields = ("occurred_at", "content", "event_type", "source", "session_id")
    return {name: getattr(event, name) for name in fields} | {
        "metadata": json.dumps(event.metadata, sort_keys=True)
    }


def parse_event_file(
    path: Path,
    history_start: date,
    max_content_bytes: int = 1_000_000,
    latest_day: date | None = None,
    redactor: Redactor | None = None,
) -> ParsedFile:
    """Parse the JSON Lines file at `path` (see `parse_event_bytes`)."""
    return parse_event_bytes(path.read_bytes(), path, history_start, max_content_bytes, latest_day, redactor)


def parse_event_bytes(
    data: bytes,
    path: Path,
    history_start: date,
    max_content_bytes: int = 1_000_000,
    latest_day: date | None = None,
    redactor: Redactor | None = None,
    sha256: str | None = None,
) -> ParsedFile:
    """Parse `data`, the JSON Lines of the file at `path`; unusable lines are returned as `rejected`,
    never raised. `sha256` names the file's original bytes when `data` is already redacted.

    Events must fall on UTC days from `history_start` to `latest_day` (when given: the last partition
    that exists, e.g. today), and their content must fit in `max_content_bytes` of UTF-8.

    The file is read as bytes and split on b"\\n", so one line of invalid UTF-8 loses only that line.
    An id seen twice keeps the first event; a later one with different fields is rejected (its reason
    names the first line), an identical repeat is dropped silently. With a `redactor`, every line's
    secrets are replaced before it is parsed, so neither an event nor a rejected line's excerpt keeps one.
    """
    limits = LineLimits(history_start, max_content_bytes, latest_day)
    file = str(path)
    events: list[Event] = []
    rejected: list[RejectedLine] = []
    first_seen: dict[str, tuple[int, dict[str, Any]]] = {}
    redactions: Counter[str] = Counter()
    for number, line in enumerate(data.split(b"\n"), start=1):
        raw = line.removesuffix(b"\r")
        if number == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        if not raw.strip():
            continue
        if redactor is not None:
            raw, found = redactor.redact_line(raw)
            redactions.update(found)
        try:
            event = parse_line(raw, file, number, limits)
        except Rejected as reject:
            rejected.append(RejectedLine(file, number, excerpt(raw), reject.reason, reject.day))
            continue
        fingerprint = _fingerprint(event)
        seen = first_seen.get(event.id)
        if seen is None:
            first_seen[event.id] = (number, fingerprint)
            events.append(event)
        elif seen[1] != fingerprint:
            differing = [name for name, value in fingerprint.items() if seen[1][name] != value]
            rejected.append(
                RejectedLine(
                    file,
                    number,
                    excerpt(raw),
                    f"id {event.id!r} was already used on line {seen[0]} for a different event "
                    f"({', '.join(differing)} differ); the first is kept: give this event its own id",
                    event.day,
                )
            )
    return ParsedFile(path, sha256 or hashlib.sha256(data).hexdigest(), events, rejected, redactions)
