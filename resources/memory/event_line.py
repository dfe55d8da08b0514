"""One line of an event file to one validated `Event`, or a `Rejected` whose reason names the problem
and the fix (`event_files.py` parses whole files with it).

`occurred_at` (ISO 8601 with a zone) and non-empty `content` are required; a missing `id` is derived
from the event's fields (`derive_event_id`), so re-ingesting a file yields the same ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

EXCERPT_CHARS = 200
MAX_ID_CHARS = 200
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
class LineLimits:
    history_start: date
    max_content_bytes: int
    latest_day: date | None


class Rejected(Exception):
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


def excerpt(raw: bytes) -> str:
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
        raise Rejected(f"{name} contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(
            f"{name} holds an unpaired UTF-16 surrogate escape (e.g. \\ud800); fix the escape"
        ) from None


def _occurred_at(record: dict[str, Any], limits: LineLimits) -> datetime:
    value = record.get("occurred_at")
    if value is None:
        raise Rejected(f"occurred_at is missing; add an ISO 8601 timestamp with a zone, e.g. {_EXAMPLE_TS}")
    if not isinstance(value, str):
        raise Rejected(f"occurred_at must be an ISO 8601 string such as {_EXAMPLE_TS}, not {_short(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(
            f"occurred_at {_short(value)} is not an ISO 8601 timestamp; use e.g. {_EXAMPLE_TS}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Rejected(
            f"occurred_at {_short(value)} has no time zone; append Z (UTC) or an offset such as +01:00"
        )
    occurred = parsed.astimezone(UTC)
    if occurred.date() < limits.history_start:
        raise Rejected(
            f"occurred_at {_short(value)} (UTC day {occurred.date()}) is before ATHENA_HISTORY_START="
            f"{limits.history_start}, where the daily partitions start; set ATHENA_HISTORY_START earlier "
            "to keep it",
            day=occurred.date(),
        )
    if limits.latest_day is not None and occurred.date() > limits.latest_day:
        raise Rejected(
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
        raise Rejected(f"{name} must be a string or null, not {_short(value)}; quote it or drop it")
    _check_text(name, value)
    return value


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(f'metadata must be a JSON object, not {_short(value)}; wrap it, e.g. {{"value": ...}}')
    # jsonb rejects \u0000 anywhere; ensure_ascii makes it visible as an escape to look for.
    if "\\u0000" in json.dumps(value):
        raise Rejected(
            "metadata contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it"
        )
    _check_text("metadata", json.dumps(value, ensure_ascii=False))
    return value


def parse_line(raw: bytes, file: str, number: int, limits: LineLimits) -> Event:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Rejected(
            f"line is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "re-encode the file as UTF-8"
        ) from None
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise Rejected(
            f"invalid JSON ({err.msg} at column {err.colno}); write one complete JSON object per line"
        ) from None
    except (ValueError, RecursionError) as err:
        raise Rejected(f"invalid JSON ({err}); write one complete JSON object per line") from None
    if not isinstance(record, dict):
        raise Rejected(
            f"line is a JSON {type(record).__name__}, not an object; write one JSON object per line"
        )

    occurred = _occurred_at(record, limits)
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise Rejected(
            "content is missing or empty; every event needs non-empty text in content", occurred.date()
        )
    try:
        _check_text("content", content)
        size = len(content.encode("utf-8"))
        if size > limits.max_content_bytes:
            raise Rejected(
                f"content is {size:,} bytes, over the {limits.max_content_bytes:,}-byte limit; "
                "split it into several events or store the large text elsewhere and reference it"
            )
        optional = {name: _optional_text(record, name) for name in _OPTIONAL_TEXT_FIELDS}
        metadata = _metadata(record)
        event_id = record.get("id")
        if event_id is None:
            event_id = derive_event_id(occurred, content, **optional)
        elif not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_CHARS:
            raise Rejected(
                f"id {_short(event_id)} must be a non-empty string of at most {MAX_ID_CHARS} characters; "
                "fix it or drop it to have one derived"
            )
        else:
            _check_text("id", event_id)
    except Rejected as reject:
        raise Rejected(reject.reason, occurred.date()) from None
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
