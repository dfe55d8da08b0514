"""The sample history generator: deterministic, about three weeks, recurring themes, and a bundled file
that is exactly its documented output and parses without a single rejected line."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest

from athena_assets.api.sample_history import (
    BUNDLED_DAYS,
    BUNDLED_FILE,
    BUNDLED_SEED,
    BUNDLED_START,
    EVENT_TYPES,
    generate_history,
    main,
)
from resources.memory.event_files import parse_event_file

pytestmark = pytest.mark.timeout(60)

START = date(2026, 11, 1)


def rough_tokens(text: str) -> int:
    """Words and punctuation marks: close enough to a BPE token count for bounds."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def test_same_seed_same_history_and_different_seed_differs() -> None:
    assert generate_history(START, seed=7) == generate_history(START, seed=7)
    assert generate_history(START, seed=7) != generate_history(START, seed=8)


def test_history_spans_three_weeks_in_utc_partitions() -> None:
    history = generate_history(START, days=21)
    days = {event["occurred_at"][:10] for event in history}
    assert len(days) == 21
    assert min(days) == "2026-11-01" and max(days) == "2026-11-21"
    assert 8 * 21 <= len(history) <= 20 * 21
    stamps = [event["occurred_at"] for event in history]
    assert stamps == sorted(stamps), "events come in time order"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp) for stamp in stamps)


def test_events_have_the_documented_shape_and_sizes() -> None:
    history = generate_history(START)
    assert len({event["id"] for event in history}) == len(history)
    assert {event["event_type"] for event in history} == set(EVENT_TYPES)
    for event in history:
        assert set(event) == {
            "id",
            "occurred_at",
            "event_type",
            "source",
            "session_id",
            "content",
            "metadata",
        }
        assert 20 <= rough_tokens(event["content"]) <= 200, event["content"]
        assert event["session_id"].startswith("sess-") and event["source"]
    assert len({event["content"] for event in history}) > 0.9 * len(history), "wording varies"
    assert len({event["session_id"] for event in history}) > 21, "several sessions a day"


def test_themes_recur_across_days() -> None:
    days_by_topic: dict[str, set[str]] = defaultdict(set)
    for event in generate_history(START):
        days_by_topic[event["metadata"]["topic"]].add(event["occurred_at"][:10])
    recurring = {topic for topic, days in days_by_topic.items() if len(days) >= 3}
    assert len(recurring) >= 5, days_by_topic
    assert {"pgvector_migration", "sensor_cursor", "pytest_timeouts", "llama_batch"} <= recurring


def test_recurring_themes_are_visible_in_the_text_itself() -> None:
    """Consolidation sees only content, so the themes must recur in the words, not just the metadata."""
    days_by_phrase: dict[str, set[str]] = defaultdict(set)
    phrases = ("pgvector", "sensor", "batch", "timeout", "style")
    for event in generate_history(START):
        for phrase in phrases:
            if phrase in event["content"].lower():
                days_by_phrase[phrase].add(event["occurred_at"][:10])
    assert all(len(days_by_phrase[phrase]) >= 3 for phrase in phrases), days_by_phrase


def test_bundled_file_is_the_documented_output_and_parses_cleanly() -> None:
    lines = BUNDLED_FILE.read_text(encoding="utf-8").splitlines()
    expected = generate_history(BUNDLED_START, BUNDLED_DAYS, BUNDLED_SEED)
    assert [json.loads(line) for line in lines] == expected
    parsed = parse_event_file(BUNDLED_FILE, BUNDLED_START)
    assert parsed.rejected == []
    assert [event.id for event in parsed.events] == [event["id"] for event in expected]
    assert len(parsed.days) == BUNDLED_DAYS


def test_main_writes_the_same_file(tmp_path: Path) -> None:
    out = tmp_path / "history.jsonl"
    args = ["--out", str(out), "--start", BUNDLED_START.isoformat(), "--days", str(BUNDLED_DAYS)]
    assert main([*args, "--seed", str(BUNDLED_SEED)]) == 0
    assert out.read_bytes() == BUNDLED_FILE.read_bytes()


def test_short_custom_history() -> None:
    history = generate_history(date(2027, 1, 30), days=3, seed=1, events_per_day=(1, 2))
    days = sorted({datetime.fromisoformat(event["occurred_at"]).date() for event in history})
    assert days == [date(2027, 1, 30), date(2027, 1, 31), date(2027, 2, 1)]
    with pytest.raises(ValueError, match="events_per_day"):
        generate_history(START, events_per_day=(0, 3))
