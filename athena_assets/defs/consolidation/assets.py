"""Consolidated patterns: each day's events clustered by their embeddings, and every cluster turned into
semantic patterns (title, description, kind, confidence) with the events that support them, by the
local reasoning model under a JSON schema. A pattern close to an existing one reinforces it (support,
first and last seen, history of descriptions) instead of being stored twice.

Re-running a day replaces that day's contributions in one transaction, and reuses the answer the model
gave to the identical request before (llama-server is not bit-reproducible even at temperature 0), so
the stored patterns are the same after any number of re-runs. The prompt's version is part of the code
version: changing the prompt marks the partitions stale. `nightly_consolidation` consolidates the
previous day every night.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from athena_assets.defs.consolidation.config import ConsolidationConfig
from athena_assets.defs.consolidation.consolidate import Clients, consolidate_day
from athena_assets.defs.consolidation.prompt import PROMPT_VERSION
from athena_assets.defs.consolidation.report import DayReport, day_observation, range_metadata
from athena_assets.defs.memory.embeddings import current_model_sha256, event_embeddings
from athena_assets.defs.partitions import (
    HISTORY_START,
    daily_partitions,
    day_keys,
    history_backfill_policy,
    partition_days,
)
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.http import LlamaCppUnavailableError
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.pattern_store import PatternStore
from resources.memory.store import MemoryStore
from resources.settings import Settings

PATTERNS_CODE_VERSION = f"1.prompt-{PROMPT_VERSION}"
REASONING_MODEL_ASSET = dg.AssetKey("reasoning_model_file")
EVIDENCE_CHECK = "patterns_have_evidence"
FAILED_CLUSTERS_CHECK = "no_failed_clusters"
_FAILURES_SHOWN = 10


def _model_sha256(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> str:
    """The sha256 of a model file as last materialised (its data version)."""
    event = instance.get_latest_materialization_event(asset_key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError(
            f"{asset_key.to_user_string()} has never been materialised; run `athena models` first"
        )
    return str(event.asset_materialization.metadata["sha256"].value)


def _checks(reports: list[DayReport], store: PatternStore, lookback_days: int) -> list[dg.AssetCheckResult]:
    checks = [store.check(report.day, report.day - timedelta(days=lookback_days)) for report in reports]
    without_evidence = checks[-1].without_evidence if checks else 0
    outside = sum(check.evidence_outside_window for check in checks)
    failures = [(report.day, outcome) for report in reports for outcome in report.failures]
    return [
        dg.AssetCheckResult(
            check_name=EVIDENCE_CHECK,
            passed=without_evidence == 0 and outside == 0,
            metadata={
                "patterns": dg.MetadataValue.int(checks[-1].patterns if checks else 0),
                "without_evidence": dg.MetadataValue.int(without_evidence),
                "evidence_outside_window": dg.MetadataValue.int(outside),
            },
        ),
        dg.AssetCheckResult(
            check_name=FAILED_CLUSTERS_CHECK,
            passed=not failures,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failed_clusters": dg.MetadataValue.int(len(failures)),
                "first_failures": dg.MetadataValue.md(
                    "\n".join(
                        f"- {day} `{o.cluster_key[:12]}`: {o.failure}"
                        for day, o in failures[:_FAILURES_SHOWN]
                    )
                    or "none"
                ),
            },
        ),
    ]


@dg.asset(
    group_name="memory",
    kinds={"llama.cpp", "pgvector"},
    partitions_def=daily_partitions,
    backfill_policy=history_backfill_policy,
    code_version=PATTERNS_CODE_VERSION,
    description=__doc__,
    deps=[event_embeddings, REASONING_MODEL_ASSET],
    check_specs=[
        dg.AssetCheckSpec(
            EVIDENCE_CHECK,
            asset="consolidated_patterns",
            description="Every pattern has evidence, and the day's evidence lies in its clustering window.",
        ),
        dg.AssetCheckSpec(
            FAILED_CLUSTERS_CHECK,
            asset="consolidated_patterns",
            description="Clusters whose answer stayed unusable after one retry (a warning).",
        ),
    ],
)
def consolidated_patterns(
    context: dg.AssetExecutionContext,
    config: ConsolidationConfig,
    reasoning: LlamaCppReasoningResource,
    embeddings: LlamaCppEmbeddingResource,
    memory: MemoryStore,
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    model_sha256 = current_model_sha256(context.instance)
    reasoning_sha256 = _model_sha256(context.instance, REASONING_MODEL_ASSET)
    memory.ensure_schema()
    store = PatternStore.beside(memory)
    store.ensure_schema()
    clients = Clients(reasoning, embeddings, memory, store)
    context.log.info(f"{first}..{last}: prompt v{PROMPT_VERSION}; reasoning {reasoning.describe()}")
    reports = []
    # Oldest first: a day's patterns can then reinforce those of the days before it.
    for key in day_keys(first, last):
        day = date.fromisoformat(key)
        try:
            report = consolidate_day(day, config, clients, model_sha256, reasoning_sha256, context.log.info)
        except LlamaCppUnavailableError as err:
            raise dg.Failure(
                description=f"consolidating {day} stopped: a model server is unreachable, and nothing of "
                f"{day} was stored (answers already received are kept for the next run). {err}",
            ) from err
        context.log_event(day_observation(context.asset_key, report))
        reports.append(report)
    return dg.MaterializeResult(
        metadata={
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "model_sha256": model_sha256,
            "reasoning_model_sha256": reasoning_sha256,
            **range_metadata(reports),
        },
        check_results=_checks(reports, store, config.lookback_days),
    )


consolidation_job = dg.define_asset_job(
    "consolidation_job",
    selection=[consolidated_patterns],
    partitions_def=daily_partitions,
    description="Consolidate one day's events into semantic patterns.",
    # The deployment's run coordinator lets one run at a time use the reasoning server.
    tags={"athena/uses": "reasoning"},
)


def previous_day_key(scheduled_at: datetime | None) -> str | None:
    """The partition key of the day before `scheduled_at` (default: now) in the partitions' timezone,
    or None before the history starts."""
    moment = scheduled_at or datetime.now(UTC)
    day = moment.astimezone(ZoneInfo(daily_partitions.timezone)).date() - timedelta(days=1)
    return day.isoformat() if day >= HISTORY_START else None


def build_nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """`nightly_consolidation` at `settings.consolidation_hour:minute` in the partitions' timezone."""

    @dg.schedule(
        name="nightly_consolidation",
        job=consolidation_job,
        # The cron and timezone come from the partitions. Not build_schedule_from_partitioned_job: with
        # end_offset=1 the last partition at 03:00 is today, and the night belongs to yesterday.
        cron_schedule=daily_partitions.get_cron_schedule(
            minute_of_hour=settings.consolidation_minute, hour_of_day=settings.consolidation_hour
        ),
        execution_timezone=daily_partitions.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night, consolidate the day that just ended into semantic patterns "
        "(ATHENA_CONSOLIDATION_HOUR / _MINUTE set the time).",
    )
    def nightly_consolidation(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        key = previous_day_key(context.scheduled_execution_time)
        if key is None:
            return dg.SkipReason(f"the day before this tick is before ATHENA_HISTORY_START={HISTORY_START}")
        # The run key is the day: a tick evaluated twice still starts one run for it.
        return dg.RunRequest(run_key=key, partition_key=key, tags={"athena/trigger": "nightly_consolidation"})

    return nightly_consolidation


nightly_consolidation = build_nightly_schedule(Settings.from_env())
