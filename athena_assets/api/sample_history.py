"""A realistic, deterministic sample history: three weeks of a coding assistant's episodic events.

Sessions of errors met, commands run, fixes tried, decisions taken and preferences stated, around
recurring themes (a flaky pgvector migration, a Dagster sensor cursor bug, pytest fixture timeouts,
llama.cpp batch-size errors, an embedding dimension mismatch, a port clash, style decisions), so that
consolidation has real patterns to find. Each event's `metadata.topic` names its theme (ground truth).

    python -m athena_assets.api.sample_history --out FILE --start 2026-11-01 --days 21 --seed 7
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from athena_assets.api.sample_themes import SLOTS, THEMES, Theme

BUNDLED_FILE = Path(__file__).parent / "data" / "sample_history.jsonl"
BUNDLED_START = date(2026, 11, 1)
BUNDLED_DAYS = 21
BUNDLED_SEED = 7

EVENT_TYPES = ("error", "command", "fix", "observation", "decision", "preference")
_ARC = {kind: rank for rank, kind in enumerate(EVENT_TYPES)}  # a session reads error -> ... -> decision

_OPENERS = ("", "", "", "Again: ", "Back on {branch}: ", "Session note: ", "After the break: ")
_FOLLOW_UPS = (
    "Noted on {branch} so the next session does not rediscover it.",
    "Took about {elapsed} minutes to pin down.",
    "Same symptom as earlier this week.",
    "Touched {file} for this.",
    "Left a TODO to add a regression test ({test}).",
    "Confirmed with {n} runs afterwards.",
    "The change is small, but it touches {file} and the tests around it, so it went in as its own commit "
    "with the reason in the message.",
    "Worth remembering: the log showed nothing useful until the level was raised to debug, and the first "
    "clue was a warning {n} lines above the actual failure.",
)
MIN_WORDS = 20


def _fill(template: str, rng: random.Random) -> str:
    fields = sorted({name for _, name, _, _ in string.Formatter().parse(template) if name})
    return template.format(**{name: SLOTS[name](rng) for name in fields})


def _content(theme: Theme, kind: str, rng: random.Random) -> str:
    parts = [_fill(rng.choice(_OPENERS) + rng.choice(theme.lines[kind]), rng)]
    follow_ups = rng.sample(_FOLLOW_UPS, len(_FOLLOW_UPS))
    wanted = rng.choice([0, 1, 1, 2])
    # Short templates get a follow-up until the event says enough to be worth embedding.
    while follow_ups and (wanted > 0 or len(" ".join(parts).split()) < MIN_WORDS):
        parts.append(_fill(follow_ups.pop(), rng))
        wanted -= 1
    return " ".join(parts)


def _schedule(days: int, rng: random.Random) -> list[list[Theme]]:
    """Which themes are active each day: every theme recurs on several days spread over the window."""
    active: list[list[Theme]] = [[] for _ in range(days)]
    for theme in THEMES:
        for day in rng.sample(range(days), min(days, rng.randint(4, 7))):
            active[day].append(theme)
    for day in range(days):
        if not active[day]:
            active[day].append(rng.choice(THEMES))
    return active


def _session_kinds(theme: Theme, size: int, rng: random.Random) -> list[str]:
    kinds = [rng.choice(list(theme.lines)) for _ in range(size)]
    return sorted(kinds, key=lambda kind: (_ARC[kind], rng.random()))


def _event(day: date, number: int, moment: datetime, session_id: str, topic: Theme, kind: str,
           rng: random.Random) -> dict[str, Any]:  # fmt: skip
    sources = {"error": topic.error_source, "command": "terminal", "preference": "user"}
    return {
        "id": f"evt-{day:%Y%m%d}-{number:03d}",
        "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "event_type": kind,
        "source": sources.get(kind, "assistant"),
        "session_id": session_id,
        "content": _content(topic, kind, rng),
        "metadata": {"topic": topic.key, "repo": "athena-assets", "branch": SLOTS["branch"](rng)},
    }


def _day_events(day: date, themes: list[Theme], count: int, rng: random.Random) -> list[dict[str, Any]]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # Working hours 07:00-23:00 UTC keep every event inside its own UTC day (partition).
    times = sorted(midnight + timedelta(seconds=rng.randrange(7 * 3600, 23 * 3600)) for _ in range(count))
    sessions = min(len(themes) + rng.randint(0, 1), 4, count)
    cuts = sorted(rng.sample(range(1, count), sessions - 1))
    events: list[dict[str, Any]] = []
    for index, (first, last) in enumerate(zip([0, *cuts], [*cuts, count], strict=True)):
        theme = themes[index % len(themes)]
        kinds = _session_kinds(theme, last - first, rng)
        for kind, moment in zip(kinds, times[first:last], strict=True):
            # A session strays to another theme of the day now and then, as real work does.
            topic = theme if rng.random() < 0.8 else rng.choice(themes)
            kind_here = kind if kind in topic.lines else rng.choice(list(topic.lines))
            session_id = f"sess-{day:%Y%m%d}-{index + 1}"
            events.append(_event(day, len(events) + 1, moment, session_id, topic, kind_here, rng))
    return events


def generate_history(
    start: date, days: int = 21, seed: int = 7, events_per_day: tuple[int, int] = (8, 20)
) -> list[dict[str, Any]]:
    """Events for `days` days from `start`, as JSON-ready dicts in time order; same seed, same list."""
    low, high = events_per_day
    if days < 1 or not 1 <= low <= high:
        raise ValueError(f"need days >= 1 and 1 <= events_per_day[0] <= [1], got {days}, {events_per_day}")
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not security
    history: list[dict[str, Any]] = []
    for offset, themes in enumerate(_schedule(days, rng)):
        rng.shuffle(themes)
        history += _day_events(start + timedelta(days=offset), themes, rng.randint(low, high), rng)
    return history


def write_history(events: Sequence[dict[str, Any]], path: Path) -> None:
    """Write `events` as JSON Lines (UTF-8, one object per line, stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events), encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a generated history to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--start", type=date.fromisoformat, default=BUNDLED_START, help="first UTC day")
    parser.add_argument("--days", type=int, default=BUNDLED_DAYS)
    parser.add_argument("--seed", type=int, default=BUNDLED_SEED)
    args = parser.parse_args(argv)
    write_history(generate_history(args.start, args.days, args.seed), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
