"""Backfill: materialising a range of days through the Dagster instance the UI shows, with the code
location's own resources, in as few runs as the range's events need; a range with nothing new to load
or embed starts no run (`up_to_date`)."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from athena_assets.api.app import App
from athena_assets.api.instance import materialize, open_instance
from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import EVENTS_CODE_VERSION, episodic_events
from athena_assets.defs.partitions import EVENTS_PER_RUN
from athena_assets.defs.prompts.assets import compressed_prompts

BACKFILL_ASSETS: dict[str, dg.AssetsDefinition] = {
    "episodic_events": episodic_events,
    "event_embeddings": event_embeddings,
    "consolidated_patterns": consolidated_patterns,
    "compressed_prompts": compressed_prompts,
}
DEFAULT_BACKFILL = ("episodic_events", "event_embeddings")
# The assets whose work a backfill can see is done without running them (`up_to_date`).
SKIPPABLE = frozenset(DEFAULT_BACKFILL)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class BackfillRun:
    """One Dagster run of a backfill: its id, day range, whether it succeeded and why not; or a range
    with nothing new to do, which starts no run (`skipped`, no run id)."""

    run_id: str
    first: date
    last: date
    success: bool
    skipped: bool = False
    error: str = ""  # a failed run's reason: its first failed step and that step's error, one line


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


def up_to_date(app: App, start: date, end: date, asset_names: Sequence[str]) -> bool:
    """Whether a run of `asset_names` over `start`..`end` would change nothing: every inbox file is
    indexed as it is now, every day of every file in the range is loaded by the current code of the
    events asset, and every event of the range has its vector. Reads no event file. Only the events
    and embeddings can tell; consolidation and prompts always run."""
    if not set(asset_names) <= SKIPPABLE:
        return False
    resources = app.resources
    memory = resources.memory
    if "episodic_events" in asset_names:
        entries = [resources.inbox.index(item.path) for item in resources.inbox.files()]
        if None in entries:
            return False  # a file no run has read since it changed: the run reads (and indexes) it
        pairs = {
            (entry.sha256, day) for entry in entries if entry for day in entry.days if start <= day <= end
        }
        shas = sorted({sha for sha, _ in pairs})
        if pairs and not pairs <= memory.loaded(shas, start, end, EVENTS_CODE_VERSION):
            return False
    if "event_embeddings" in asset_names:
        return memory.due_for_embedding_count(start, end, app.vector_key()) == 0
    return True


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step of a run and the first line of the error that started it: the root of the
    error's causes, as Dagster wraps it ("Exceeded max_retries" around the server that did not answer);
    "" when no step failed."""
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        lines = error.message.strip().splitlines() if error is not None else []
        return f"{event.step_key}: {lines[0] if lines else 'failed'}"
    return ""


def backfill(
    app: App,
    first: date,
    last: date,
    asset_names: Sequence[str] = DEFAULT_BACKFILL,
    progress: Callable[[BackfillRun], None] | None = None,
    force: bool = False,
) -> list[BackfillRun]:
    """Materialise `asset_names` for every day of `first`..`last`, a few single runs per history. A range
    with nothing new for the events and embeddings starts no run unless `force` (see `up_to_date`)."""
    unknown = [name for name in asset_names if name not in BACKFILL_ASSETS]
    if unknown:
        raise ValueError(f"unknown asset(s) {', '.join(unknown)}; choose from {', '.join(BACKFILL_ASSETS)}")
    settings = app.settings
    if first < settings.history_start:
        raise ValueError(f"--from {first} is before ATHENA_HISTORY_START={settings.history_start}; lower it")
    assets = [BACKFILL_ASSETS[name] for name in BACKFILL_ASSETS if name in asset_names]
    # A reversed range is an argument error here, before any connection.
    ranges = day_ranges(first, last, app.resources.inbox.event_count(first, last))
    runs = []
    with open_instance(settings) as instance:
        for start, end in ranges:
            if not force and up_to_date(app, start, end, asset_names):
                run = BackfillRun("", start, end, success=True, skipped=True)
            else:
                result = materialize(
                    settings,
                    assets,
                    instance,
                    tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
                    raise_on_error=False,
                )
                run = BackfillRun(result.run_id, start, end, result.success, error=failure_reason(result))
            runs.append(run)
            if progress is not None:
                progress(run)
            if not run.success:
                break
    return runs
