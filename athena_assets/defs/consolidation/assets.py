"""Consolidated patterns: each day's events clustered by their embeddings, and every cluster turned into
semantic patterns (title, description, kind, confidence) with the events that support them, by the
local reasoning model under a JSON schema. A pattern close to an existing one reinforces it (support,
first and last seen, history of descriptions) instead of being stored twice. A pattern that newer
events replace (a value changed, a tool replaced, a decision reversed) is closed, not deleted: it keeps
its evidence and gets `valid_to` and `superseded_by` (`knowledge/supersession.py`).

Re-running a day replaces that day's contributions in one transaction, and reuses the answer the model
gave to the identical request before (llama-server is not bit-reproducible even at temperature 0), so
the stored patterns are the same after any number of re-runs. The prompt's version is part of the code
version: changing the prompt marks the partitions stale.
"""

from datetime import date

import dagster as dg

from athena_assets.defs.consolidation.metadata import changes_metadata, day_observation, range_metadata
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.models.assets import MODEL_FILE_KEYS
from athena_assets.defs.partitions import (
    daily_partitions,
    day_keys,
    history_backfill_policy,
    partition_days,
)
from athena_assets.defs.pools import REASONING_POOL
from athena_assets.defs.retries import MODEL_RETRY_POLICY
from athena_assets.knowledge.cluster_prompt import PROMPT_VERSION
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import Clients, consolidate_day
from athena_assets.knowledge.day_report import DayReport
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.http import LlamaCppUnavailableError
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.pattern_store import PatternStore
from resources.memory.store import MemoryStore
from resources.models.files import ModelFilesResource

PATTERNS_CODE_VERSION = f"2.prompt-{PROMPT_VERSION}"
EVIDENCE_CHECK = "patterns_have_evidence"
FAILED_CLUSTERS_CHECK = "no_failed_clusters"
_FAILURES_SHOWN = 10


def _checks(
    reports: list[DayReport], store: PatternStore, config: ConsolidationConfig
) -> list[dg.AssetCheckResult]:
    checks = [store.check(report.day, config.window_start(report.day)) for report in reports]
    without_evidence = checks[-1].without_evidence if checks else 0
    outside = sum(check.evidence_outside_window for check in checks)
    duplicates = sum(check.same_evidence_duplicates for check in checks)
    failures = [(report.day, outcome) for report in reports for outcome in report.failures]
    return [
        dg.AssetCheckResult(
            check_name=EVIDENCE_CHECK,
            passed=without_evidence == 0 and outside == 0 and duplicates == 0,
            metadata={
                "patterns": dg.MetadataValue.int(checks[-1].patterns if checks else 0),
                "without_evidence": dg.MetadataValue.int(without_evidence),
                "evidence_outside_window": dg.MetadataValue.int(outside),
                "same_evidence_duplicates": dg.MetadataValue.int(duplicates),
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
    group_name="consolidation",
    kinds={"llama.cpp", "pgvector"},
    partitions_def=daily_partitions,
    backfill_policy=history_backfill_policy,
    code_version=PATTERNS_CODE_VERSION,
    retry_policy=MODEL_RETRY_POLICY,
    pool=REASONING_POOL,
    description=__doc__,
    deps=[event_embeddings, MODEL_FILE_KEYS["reasoning"]],
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
    model_files: ModelFilesResource,
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    embedding_sha256 = model_files.sha256("embedding")
    reasoning_sha256 = model_files.sha256("reasoning")
    store = PatternStore.beside(memory)
    clients = Clients(reasoning, embeddings, memory, store)
    context.log.info(f"{first}..{last}: prompt v{PROMPT_VERSION}; reasoning {reasoning.describe()}")
    reports = []
    # Oldest first: a day's patterns can then reinforce those of the days before it.
    for key in day_keys(first, last):
        day = date.fromisoformat(key)
        try:
            report = consolidate_day(
                day, config, clients, embedding_sha256, reasoning_sha256, context.log.info
            )
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
            "model_sha256": embedding_sha256,
            "reasoning_model_sha256": reasoning_sha256,
            **range_metadata(reports),
            **changes_metadata(store.patterns(include_superseded=True), first, last),
        },
        check_results=_checks(reports, store, config),
    )
