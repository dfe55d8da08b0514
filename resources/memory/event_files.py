"""Parsing of JSON Lines event files into validated events and dead-letter lines (no database).

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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from resources.memory.redaction import Redactor

EXCERPT_CHARS = 200
MAX_ID_CHARS = 200
_UTF8_BOM = b"\xef\xbb\xbf"
_EXAMPLE_TS = "2026-11-20T14:03:11Z"
_OPTIONAL_TEXT_FIELDS = ("event_type", "source", "session_id")


@dataclass(frozen=True)
class Event:
    """One valid event, its timestamp normalised to UTC."""

    id: str
    occurred_at: datetime
    content: str
    event_type: str | None
    source: str | None
    session_id: str | None
    metadata: dict[str, Any]
    content_sha256: str
    source_file: str
    source_line: int

    @property
    def day(self) -> date:
        """The UTC day of `occurred_at`: the event's partition."""
        return self.occurred_at.astimezone(UTC).date()


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


@dataclass(frozen=True)
class _Limits:
    history_start: date
    max_content_bytes: int
    latest_day: date | None


class _Reject(Exception):
    """Why one line cannot be used; caught in `parse_event_file`, never seen by callers."""

    def __init__(self, reason: str, day: date | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.day = day


def derive_event_id(
    occurred_at: datetime, content: str, event_type: str | None, source: str | None, session_id: str | None
) -> str:
    """A stable id from the event's fields: the same event in any file, at any offset, gets the same id."""
    instant = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [instant, content, event_type, source, session_id]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return "evt_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def _excerpt(raw: bytes) -> str:
    # Decode only a prefix: a rejected 5 MB line must not cost 5 MB of text. NUL cannot live in a
    # PostgreSQL text column, so it is shown as the replacement character.
    text = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return text.replace("\x00", "\ufffd")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL jsonb refuses them.
    raise ValueError(f"{name} is not valid JSON")


def _check_text(name: str, value: str) -> None:
    """PostgreSQL text holds neither NUL nor the unpaired surrogates that `\\ud800` escapes produce."""
    if "\x00" in value:
        raise _Reject(f"{name} contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject(
            f"{name} holds an unpaired UTF-16 surrogate escape (e.g. \\ud800); fix the escape"
        ) from None


def _occurred_at(record: dict[str, Any], limits: _Limits) -> datetime:
    value = record.get("occurred_at")
    if value is None:
        raise _Reject(f"occurred_at is missing; add an ISO 8601 timestamp with a zone, e.g. {_EXAMPLE_TS}")
    if not isinstance(value, str):
        raise _Reject(f"occurred_at must be an ISO 8601 string such as {_EXAMPLE_TS}, not {_short(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Reject(
            f"occurred_at {_short(value)} is not an ISO 8601 timestamp; use e.g. {_EXAMPLE_TS}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Reject(
            f"occurred_at {_short(value)} has no time zone; append Z (UTC) or an offset such as +01:00"
        )
    occurred = parsed.astimezone(UTC)
    if occurred.date() < limits.history_start:
        raise _Reject(
            f"occurred_at {_short(value)} (UTC day {occurred.date()}) is before ATHENA_HISTORY_START="
            f"{limits.history_start}, where the daily partitions start; set ATHENA_HISTORY_START earlier "
            "to keep it",
            day=occurred.date(),
        )
    if limits.latest_day is not None and occurred.date() > limits.latest_day:
        raise _Reject(
            f"occurred_at {_short(value)} (UTC day {occurred.date()}) is after {limits.latest_day}, the "
            "last daily partition; check the producer's clock and time zone, or ingest it on that day",
            day=occurred.date(),
        )
    return occurred


def _optional_text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject(f"{name} must be a string or null, not {_short(value)}; quote it or drop it")
    _check_text(name, value)
    return value


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Reject(f'metadata must be a JSON object, not {_short(value)}; wrap it, e.g. {{"value": ...}}')
    # jsonb rejects \u0000 anywhere; ensure_ascii makes it visible as an escape to look for.
    if "\\u0000" in json.dumps(value):
        raise _Reject("metadata contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it")
    _check_text("metadata", json.dumps(value, ensure_ascii=False))
    return value


def _parse_line(raw: bytes, file: str, number: int, limits: _Limits) -> Event:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Reject(
            f"line is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "re-encode the file as UTF-8"
        ) from None
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise _Reject(
            f"invalid JSON ({err.msg} at column {err.colno}); write one complete JSON object per line"
        ) from None
    except (ValueError, RecursionError) as err:
        raise _Reject(f"invalid JSON ({err}); write one complete JSON object per line") from None
    if not isinstance(record, dict):
        raise _Reject(
            f"line is a JSON {type(record).__name__}, not an object; write one JSON object per line"
        )

    occurred = _occurred_at(record, limits)
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _Reject(
            "content is missing or empty; every event needs non-empty text in content", occurred.date()
        )
    try:
        _check_text("content", content)
        size = len(content.encode("utf-8"))
        if size > limits.max_content_bytes:
            raise _Reject(
                f"content is {size:,} bytes, over the {limits.max_content_bytes:,}-byte limit; "
                "split it into several events or store the large text elsewhere and reference it"
            )
        optional = {name: _optional_text(record, name) for name in _OPTIONAL_TEXT_FIELDS}
        metadata = _metadata(record)
        event_id = record.get("id")
        if event_id is None:
            event_id = derive_event_id(occurred, content, **optional)
        elif not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_CHARS:
            raise _Reject(
                f"id {_short(event_id)} must be a non-empty string of at most {MAX_ID_CHARS} characters; "
                "fix it or drop it to have one derived"
            )
        else:
            _check_text("id", event_id)
    except _Reject as reject:
        raise _Reject(reject.reason, occurred.date()) from None
    return Event(
        id=event_id,
        occurred_at=occurred,
        content=content,
        metadata=metadata,
        content_sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        source_file=file,
        source_line=number,
        **optional,
    )


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
    limits = _Limits(history_start, max_content_bytes, latest_day)
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
            event = _parse_line(raw, file, number, limits)
        except _Reject as reject:
            rejected.append(RejectedLine(file, number, _excerpt(raw), reject.reason, reject.day))
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
                    _excerpt(raw),
                    f"id {event.id!r} was already used on line {seen[0]} for a different event "
                    f"({', '.join(differing)} differ); the first is kept: give this event its own id",
                    event.day,
                )
            )
    return ParsedFile(path, sha256 or hashlib.sha256(data).hexdigest(), events, rejected, redactions)
