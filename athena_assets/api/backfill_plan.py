"""How `backfill` cuts a range of days into runs, and whether a run would find anything new, answered
without Dagster: from the inbox's index and two queries on one connection. `athena backfill` asks this
before importing Dagster, so a re-run with nothing new answers in a fraction of a second; `backfill`
asks the same before each run it would start."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import psycopg

from athena_assets.api.app import App
from athena_assets.defs.memory.code_versions import EVENTS_CODE_VERSION
from resources.memory.backfill_state import due_for_embedding, loaded_days
from resources.memory.inbox_index import event_count, inbox_files, read_index
from resources.memory.schema import DEFAULT_SCHEMA
from resources.settings import application_database_url

# The assets a backfill can materialise, in the order they run (`api.backfill.BACKFILL_ASSETS`).
BACKFILL_ASSET_NAMES = ("episodic_events", "event_embeddings", "consolidated_patterns", "compressed_prompts")
DEFAULT_BACKFILL = ("episodic_events", "event_embeddings")
# The assets whose work a backfill can see is done without running them (`up_to_date`).
SKIPPABLE = frozenset(DEFAULT_BACKFILL)
# `athena backfill` sizes its runs by events, at most about this many each, so memory stays bounded and
# a sparse history of years is one run (a backfill from the UI cannot count events first: see
# `defs/partitions.py`).
EVENTS_PER_RUN = 20_000
CONNECT_TIMEOUT_S = 3


def day_ranges(first: date, last: date, events: int = 0) -> list[tuple[date, date]]:
    """`first`..`last` cut into as few consecutive ranges of equal days as keep about `events` (the
    inbox's on those days) at `EVENTS_PER_RUN` or fewer per run: a run's cost is mostly per event, and
    each run costs its start and its index build again, so a sparse history of years is one run."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    days = (last - first).days + 1
    runs = min(days, max(1, math.ceil(events / EVENTS_PER_RUN)))
    per_run = math.ceil(days / runs)
    ranges = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=per_run - 1))
        ranges.append((start, end))
        start = end + timedelta(days=1)
    return ranges


def planned_ranges(app: App, first: date, last: date) -> list[tuple[date, date]]:
    """The ranges `backfill` runs `first`..`last` in (sized by the inbox's events on those days)."""
    return day_ranges(first, last, event_count(app.settings.inbox_dir, first, last))


def up_to_date(app: App, start: date, end: date, asset_names: Sequence[str]) -> bool:
    """Whether a run of `asset_names` over `start`..`end` would change nothing: every inbox file is
    indexed as it is now, every day of every file in the range is loaded by the current code of the
    events asset, and every event of the range has its vector. Reads no event file. Only the events
    and embeddings can tell; consolidation and prompts always run. A store not created yet is not up
    to date."""
    if not set(asset_names) <= SKIPPABLE:
        return False
    inbox, url = app.settings.inbox_dir, application_database_url(app.settings)
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            if "episodic_events" in asset_names:
                entries = [read_index(inbox, item.path) for item in inbox_files(inbox)]
                if None in entries:
                    return False  # a file no run has read since it changed: the run reads (and indexes) it
                pairs = {
                    (entry.sha256, day)
                    for entry in entries
                    if entry
                    for day in entry.days
                    if start <= day <= end
                }
                shas = sorted({sha for sha, _ in pairs})
                loaded = loaded_days(conn, DEFAULT_SCHEMA, shas, start, end, EVENTS_CODE_VERSION)
                if pairs and not pairs <= loaded:
                    return False
            if "event_embeddings" in asset_names:
                return due_for_embedding(conn, DEFAULT_SCHEMA, start, end, app.vector_key()) == 0
    except psycopg.errors.UndefinedTable:
        return False
    return True
