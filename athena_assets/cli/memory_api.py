"""The memory pipeline from Python and the CLI: ingest files, backfill day ranges, recall events.

These functions run materialisations through the Dagster instance the UI shows, with the code
location's own resources, so `athena ingest/backfill/recall` and the assets never disagree.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from athena_assets.cli.instance import materialize, open_instance
from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import EVENTS_CODE_VERSION, episodic_events
from athena_assets.defs.models.assets import model_sha256
from athena_assets.defs.partitions import EVENTS_PER_RUN
from athena_assets.defs.prompts.assets import compressed_prompts
from athena_assets.defs.resources import AthenaResources
from resources.memory.event_files import ParsedFile
from resources.memory.recall import RecallMode, RecallScope
from resources.memory.schema import RecallHit
from resources.settings import Settings

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
class IngestReport:
    """What `ingest` made of one file."""

    source: Path
    parsed: ParsedFile
    stored_as: Path | None
    already_in_inbox: bool


@dataclass(frozen=True)
class BackfillRun:
    """One Dagster run of a backfill: its id, day range and whether it succeeded; or a range with
    nothing new to do, which starts no run (`skipped`, no run id)."""

    run_id: str
    first: date
    last: date
    success: bool
    skipped: bool = False


def ingest(settings: Settings, files: Sequence[Path]) -> list[IngestReport]:
    """Validate `files`, record their rejected lines, and store those with valid events in the inbox."""
    resources = AthenaResources.for_direct_use(settings)
    inbox, memory = resources.inbox, resources.memory
    reports = []
    for source in files:
        parsed = inbox.parse(source)
        memory.record_dead_letters(parsed.rejected, parsed.sha256)
        stored_as, is_new = inbox.store(source) if parsed.events else (None, False)
        reports.append(IngestReport(source, parsed, stored_as, stored_as is not None and not is_new))
    return reports


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


def up_to_date(
    resources: AthenaResources,
    instance: dg.DagsterInstance,
    start: date,
    end: date,
    asset_names: Sequence[str],
) -> bool:
    """Whether a run of `asset_names` over `start`..`end` would change nothing: every inbox file is
    indexed as it is now, every day of every file in the range is loaded by the current code of the
    events asset, and every event of the range has its vector. Reads no event file. Only the events
    and embeddings can tell; consolidation and prompts always run."""
    if not set(asset_names) <= SKIPPABLE:
        return False
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
        return memory.due_for_embedding_count(start, end, model_sha256(instance, "embedding")) == 0
    return True


def backfill(
    settings: Settings,
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
    if first < settings.history_start:
        raise ValueError(f"--from {first} is before ATHENA_HISTORY_START={settings.history_start}; lower it")
    assets = [BACKFILL_ASSETS[name] for name in BACKFILL_ASSETS if name in asset_names]
    resources = AthenaResources.for_direct_use(settings)
    # A reversed range is an argument error here, before any connection.
    ranges = day_ranges(first, last, resources.inbox.event_count(first, last))
    runs = []
    with open_instance(settings) as instance:
        for start, end in ranges:
            if not force and up_to_date(resources, instance, start, end, asset_names):
                run = BackfillRun("", start, end, success=True, skipped=True)
                runs.append(run)
                if progress is not None:
                    progress(run)
                continue
            result = materialize(
                settings,
                assets,
                instance,
                tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
                raise_on_error=False,
            )
            run = BackfillRun(result.run_id, start, end, result.success)
            runs.append(run)
            if progress is not None:
                progress(run)
            if not result.success:
                break
    return runs


def recall(
    query: str,
    k: int = 5,
    mode: RecallMode = "vector",
    settings: Settings | None = None,
    scope: RecallScope | None = None,
) -> list[RecallHit]:
    """The `k` stored events of `scope` (all when None) nearest to `query` (embedded with the model's
    query prefix), best first.

    `vector` finds paraphrases; `text` ranks by the query's words (rarer words weigh more); `hybrid`
    fuses both, which helps when the query holds exact tokens (error codes, file names, identifiers).
    """
    settings = settings or Settings.from_env()
    resources = AthenaResources.for_direct_use(settings)
    with open_instance(settings) as instance:
        embedding_sha256 = model_sha256(instance, "embedding")
    return recall_with(resources, embedding_sha256, query, k, mode, scope)


def recall_with(
    resources: AthenaResources,
    embedding_sha256: str,
    query: str,
    k: int = 5,
    mode: RecallMode = "vector",
    scope: RecallScope | None = None,
) -> list[RecallHit]:
    """`recall` with resources already built and the embedding model known (a long-lived process)."""
    vector = None if mode == "text" else resources.embeddings.embed_query(query)
    return resources.memory.recall(
        None if vector is None else list(vector.embedding),
        embedding_sha256,
        0 if vector is None else vector.dimension,
        k=k,
        query_text=query,
        mode=mode,
        scope=scope,
    )
