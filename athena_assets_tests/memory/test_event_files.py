"""Pure parsing of event files: every kind of bad line is dead-lettered and nothing valid is lost."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from resources.memory.event_files import ParsedFile, parse_event_file
from resources.memory.event_line import derive_event_id

pytestmark = pytest.mark.timeout(60)

HISTORY_START = date(2026, 11, 1)
SQL_LOOKING = "'); DROP TABLE episodic_events; --"


def event(content: str | None = "pytest fixture timed out after 900s", **fields: Any) -> dict[str, Any]:
    """A valid event line, with `fields` overriding or (with None) removing keys."""
    record: dict[str, Any] = {
        "occurred_at": "2026-11-20T14:03:11Z",
        "content": content,
        "event_type": "error",
        "source": "terminal",
        "session_id": "s-1",
        "metadata": {"repo": "athena"},
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not None}


def parse(tmp_path: Path, *lines: dict[str, Any] | str | bytes, name: str = "events.jsonl") -> ParsedFile:
    """Write `lines` (dicts as JSON, str and bytes verbatim) and parse the file."""
    encoded = [
        line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
        for line in lines
    ]
    path = tmp_path / name
    path.write_bytes(b"\n".join(encoded) + b"\n")
    return parse_event_file(path, HISTORY_START)


def only_rejection(parsed: ParsedFile, kept: int = 2) -> str:
    """The reason of the single rejected line, after checking the valid neighbours were kept."""
    assert len(parsed.events) == kept, parsed.rejected
    assert len(parsed.rejected) == 1
    return parsed.rejected[0].reason


def test_valid_file_is_parsed_with_utc_timestamps_and_days(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        event(id="a"),
        event("late evening in Berlin", id="b", occurred_at="2026-11-21T00:30:00+01:00"),
        event("no optional fields", id="c", event_type=None, source=None, session_id=None, metadata=None),
    )
    assert parsed.rejected == []
    a, b, c = parsed.events
    assert a.occurred_at == datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    assert b.occurred_at.utcoffset().total_seconds() == 0
    assert b.day == date(2026, 11, 20)
    assert (c.event_type, c.source, c.session_id, c.metadata) == (None, None, None, {})
    assert (a.source_line, b.source_line) == (1, 2)
    assert parsed.days == [date(2026, 11, 20)]
    assert len(parsed.sha256) == 64


def test_invalid_json_is_rejected_and_neighbours_kept(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path, event(id="a"), '{"occurred_at": "2026-11-20T14:03:11Z", "content": ', event(id="b")
    )
    reason = only_rejection(parsed)
    assert "invalid JSON" in reason and "one complete JSON object per line" in reason
    assert parsed.rejected[0].line == 2
    assert parsed.rejected[0].day is None


@pytest.mark.parametrize("line", ["[1, 2, 3]", '"just a string"', "42"])
def test_json_that_is_not_an_object_is_rejected(tmp_path: Path, line: str) -> None:
    assert "not an object" in only_rejection(parse(tmp_path, event(id="a"), line, event(id="b")))


@pytest.mark.parametrize("content", [None, "", "   \n\t"])
def test_missing_or_empty_content_is_rejected(tmp_path: Path, content: str | None) -> None:
    parsed = parse(tmp_path, event(id="a"), event(content, id="x"), event(id="b"))
    reason = only_rejection(parsed)
    assert "content is missing or empty" in reason
    assert parsed.rejected[0].day == date(2026, 11, 20), "the timestamp was readable"


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        (None, "occurred_at is missing"),
        ("yesterday afternoon", "is not an ISO 8601 timestamp"),
        ("2026-13-45T99:00:00Z", "is not an ISO 8601 timestamp"),
        (1763647391, "must be an ISO 8601 string"),
        ("2026-11-20T14:03:11", "has no time zone; append Z"),
        ("2026-11-20", "has no time zone"),
    ],
)
def test_bad_timestamps_are_rejected_with_the_fix(tmp_path: Path, occurred_at: Any, expected: str) -> None:
    bad = event(id="x")
    bad.pop("occurred_at")
    if occurred_at is not None:
        bad["occurred_at"] = occurred_at
    parsed = parse(tmp_path, event(id="a"), bad, event(id="b"))
    reason = only_rejection(parsed)
    assert expected in reason
    assert "2026-11-20T14:03:11Z" in reason or "+01:00" in reason, "the reason shows a valid form"
    assert parsed.rejected[0].day is None


def test_timestamp_before_history_start_names_the_setting(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path, event(id="a"), event(id="old", occurred_at="2026-10-31T23:59:59Z"), event(id="b")
    )
    reason = only_rejection(parsed)
    assert "ATHENA_HISTORY_START=2026-11-01" in reason and "earlier" in reason
    assert parsed.rejected[0].day == date(2026, 10, 31)


def test_timestamp_after_the_latest_partition_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    lines = [event(id="a"), event(id="future", occurred_at="2026-11-21T00:00:00Z")]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    parsed = parse_event_file(path, HISTORY_START, latest_day=date(2026, 11, 20))
    reason = only_rejection(parsed, kept=1)
    assert "after 2026-11-20, the last daily partition" in reason and "clock" in reason
    assert parsed.rejected[0].day == date(2026, 11, 21)


def test_an_offset_that_moves_an_event_into_history_start_keeps_it(tmp_path: Path) -> None:
    parsed = parse(tmp_path, event(id="a", occurred_at="2026-10-31T23:30:00-01:00"))
    assert parsed.rejected == []
    assert parsed.events[0].day == date(2026, 11, 1)


def test_content_over_one_megabyte_is_rejected_and_excerpt_bounded(tmp_path: Path) -> None:
    exactly = event("x" * 1_000_000, id="limit")
    over = event("é" * 500_001, id="big")  # 1,000,002 bytes in UTF-8, 500,001 characters
    parsed = parse(tmp_path, event(id="a"), over, exactly)
    reason = only_rejection(parsed)
    assert "1,000,002 bytes, over the 1,000,000-byte limit" in reason and "split it" in reason
    assert [e.id for e in parsed.events] == ["a", "limit"]
    assert len(parsed.rejected[0].excerpt) <= 200


def test_invalid_utf8_rejects_only_that_line(tmp_path: Path) -> None:
    bad = b'{"occurred_at": "2026-11-20T14:03:11Z", "content": "caf\xe9 \xff"}'
    parsed = parse(tmp_path, event(id="a"), bad, event(id="b"))
    reason = only_rejection(parsed)
    assert "not valid UTF-8" in reason and "re-encode the file as UTF-8" in reason
    assert "\ufffd" in parsed.rejected[0].excerpt and parsed.rejected[0].excerpt.startswith('{"occurred_at"')


def test_same_id_with_different_content_keeps_the_first(tmp_path: Path) -> None:
    parsed = parse(tmp_path, event("first", id="dup"), event(id="a"), event("second", id="dup"))
    reason = only_rejection(parsed)
    assert "already used on line 1" in reason and "content" in reason and "own id" in reason
    assert [e.content for e in parsed.events] == ["first", "pytest fixture timed out after 900s"]
    assert parsed.rejected[0].line == 3


def test_same_id_with_identical_content_is_kept_once_silently(tmp_path: Path) -> None:
    parsed = parse(tmp_path, event(id="dup"), event(id="dup"), event(id="b"))
    assert parsed.rejected == []
    assert [e.id for e in parsed.events] == ["dup", "b"]


def test_sql_looking_content_is_kept_verbatim(tmp_path: Path) -> None:
    parsed = parse(tmp_path, event(SQL_LOOKING, id="sql"))
    assert parsed.rejected == []
    assert parsed.events[0].content == SQL_LOOKING


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"occurred_at": "2026-11-20T14:03:11Z", "content": "x", "metadata": {"score": NaN}}', "NaN"),
        (json.dumps(event("nul \u0000 byte", id="n")), "NUL character"),
        (json.dumps(event(id="m", metadata=["not", "an", "object"])), "metadata must be a JSON object"),
        (json.dumps(event(id="t", event_type=7)), "event_type must be a string or null"),
        (json.dumps(event(id="")), "id '' must be a non-empty string"),
        ('{"occurred_at": "2026-11-20T14:03:11Z", "content": "lone \\ud800 surrogate"}', "surrogate"),
    ],
)
def test_values_postgresql_cannot_store_are_rejected(tmp_path: Path, line: str, expected: str) -> None:
    assert expected in only_rejection(parse(tmp_path, event(id="a"), line, event(id="b")))


def test_blank_lines_crlf_and_bom_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    lines = [json.dumps(event(id="a")).encode(), b"", b"   ", json.dumps(event(id="b")).encode()]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    parsed = parse_event_file(path, HISTORY_START)
    assert parsed.rejected == []
    assert [(e.id, e.source_line) for e in parsed.events] == [("a", 1), ("b", 4)]


def test_derived_ids_are_stable_across_parses_and_files(tmp_path: Path) -> None:
    lines = [event(f"event {i}", occurred_at=f"2026-11-2{i}T10:00:00Z") for i in range(3)]
    first = parse(tmp_path, *lines, name="one.jsonl")
    again = parse(tmp_path, *lines, name="one.jsonl")
    moved = parse(tmp_path, event(id="x"), *reversed(lines), name="two.jsonl")
    ids = [e.id for e in first.events]
    assert ids == [e.id for e in again.events]
    assert sorted(ids) == sorted(e.id for e in moved.events if e.id != "x")
    assert len(set(ids)) == 3 and all(i.startswith("evt_") and len(i) == 28 for i in ids)


def test_derived_id_depends_on_the_instant_not_its_spelling() -> None:
    utc = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    berlin = datetime.fromisoformat("2026-11-20T15:03:11+01:00")
    assert derive_event_id(utc, "c", "error", "s", "x") == derive_event_id(berlin, "c", "error", "s", "x")
    assert derive_event_id(utc, "c", "error", "s", "x") != derive_event_id(utc, "c2", "error", "s", "x")
    assert derive_event_id(utc, "c", None, None, None) != derive_event_id(utc, "c", "", None, None)
