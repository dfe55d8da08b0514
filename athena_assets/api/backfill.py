"""Backfill: materialising a range of days through the Dagster instance the UI shows, with the code
location's own resources, in as few runs as the range's events need; a range with nothing new to load
or embed starts no run (`up_to_date`)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from athena_assets.api.app import App
from athena_assets.api.backfill_plan import (
    BACKFILL_ASSET_NAMES,
    DEFAULT_BACKFILL,
    day_ranges,
    planned_ranges,
    up_to_date,
)
from athena_assets.api.instance import materialize, open_instance
from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.prompts.assets import compressed_prompts

__all__ = ["BACKFILL_ASSETS", "DEFAULT_BACKFILL", "BackfillRun", "backfill", "day_ranges", "up_to_date"]

BACKFILL_ASSETS: dict[str, dg.AssetsDefinition] = dict(
    zip(
        BACKFILL_ASSET_NAMES,
        (episodic_events, event_embeddings, consolidated_patterns, compressed_prompts),
        strict=True,
    )
)
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


def _first_line_of_root(error: SerializableErrorInfo) -> str:
    """The first line of the innermost cause of a serialised error (Dagster wraps the server that did
    not answer in "Exceeded max_retries")."""
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[0] if lines else "failed"


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step of a run and the first line of the error that started it; where no step
    failed (the run failed around its steps), the first error any of its events carries; "" when none."""
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        return f"{event.step_key}: {_first_line_of_root(error) if error is not None else 'failed'}"
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return f"{event.step_key or 'the run'}: {_first_line_of_root(error)}"
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
    ranges = planned_ranges(app, first, last)
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
