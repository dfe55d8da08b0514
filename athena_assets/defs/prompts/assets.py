"""Compressed Claude prompts: each day's consolidated memory, compressed with LLMLingua-2, savings counted.

For every day of the run, the patterns current at the end of that day (none a later one replaced by
then) and their evidence become a Claude prompt (`prompts/claude_context.py`); the context is compressed
(LLMLingua-2, or the documented extractive fallback, or passed through when compression is disabled),
stored in PostgreSQL with its token counts and dollars saved, and written to
`ATHENA_HOME/prompts/<day>.md`.
"""

from datetime import date

import dagster as dg

from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.observability.observations import stats_observation
from athena_assets.defs.partitions import daily_partitions, day_keys, history_backfill_policy, partition_days
from athena_assets.defs.pools import COMPRESSION_POOL
from athena_assets.defs.prompts.claude_context import (
    INSTRUCTION,
    TEMPLATE_VERSION,
    build_context,
    knowledge_at,
    render_prompt,
)
from athena_assets.defs.retries import MODEL_RETRY_POLICY
from resources.call_metrics import MetricsCollector
from resources.compression.compressor import PromptCompressorResource
from resources.memory.pattern_store import PatternStore
from resources.memory.prompt_store import PromptStore, StoredPrompt
from resources.memory.store import MemoryStore

COMPRESSED_PROMPTS_CODE_VERSION = f"1-template{TEMPLATE_VERSION}"
METHOD_CHECK = "compressed_with_llmlingua2"
PREVIEW_CHARS = 1500


@dg.asset(
    group_name="prompts",
    kinds={"llmlingua", "postgres"},
    owners=["team:athena"],
    partitions_def=daily_partitions,
    backfill_policy=history_backfill_policy,
    code_version=COMPRESSED_PROMPTS_CODE_VERSION,
    retry_policy=MODEL_RETRY_POLICY,
    pool=COMPRESSION_POOL,
    description=__doc__,
    deps=[consolidated_patterns],
    check_specs=[
        dg.AssetCheckSpec(
            METHOD_CHECK,
            asset="compressed_prompts",
            description="LLMLingua-2 did the compression (a warning when the extractive fallback was used).",
        )
    ],
)
def compressed_prompts(
    context: dg.AssetExecutionContext,
    memory: MemoryStore,
    compressor: PromptCompressorResource,
    prompt_store: PromptStore,
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    patterns = PatternStore.beside(memory).patterns(include_superseded=True)
    run_metrics = MetricsCollector()
    compressor.use_metrics(run_metrics)
    stored: list[StoredPrompt] = []
    methods: set[str] = set()
    preview = ""
    for key in day_keys(first, last):
        day = date.fromisoformat(key)
        known, replaced = knowledge_at(day, patterns)
        original_context = build_context(day, known, replaced)
        result = compressor.compress(original_context, instruction=INSTRUCTION)
        methods.add(result.method)
        stored.append(
            prompt_store.save(
                day, render_prompt(original_context), render_prompt(result.text), result, len(known)
            )
        )
        preview = render_prompt(result.text)
    original = sum(item.original_tokens for item in stored)
    compressed = sum(item.compressed_tokens for item in stored)
    dollars = sum(item.dollars_saved for item in stored)
    context.log.info(
        f"{first}..{last}: {len(stored)} prompts, {original} -> {compressed} tokens, ${dollars:.4f} saved "
        f"({', '.join(sorted(methods))})"
    )
    context.log_event(stats_observation(context.asset_key, run_metrics.get_stats("compression")))
    fallback = compressor.fallback_reason
    latency_ms = float(run_metrics.get_stats("compression").get("avg_latency_ms", 0.0))
    return dg.MaterializeResult(
        metadata={
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "prompts": dg.MetadataValue.int(len(stored)),
            "original_tokens": dg.MetadataValue.int(original),
            "compressed_tokens": dg.MetadataValue.int(compressed),
            "ratio": dg.MetadataValue.float(round(compressed / original, 4) if original else 1.0),
            "tokens_saved": dg.MetadataValue.int(original - compressed),
            "dollars_saved": dg.MetadataValue.float(round(dollars, 6)),
            "method": ", ".join(sorted(methods)),
            "latency_ms": dg.MetadataValue.float(round(latency_ms, 1)),
            "file": dg.MetadataValue.path(str(stored[-1].file)) if stored else "none",
            "preview": dg.MetadataValue.md(preview[:PREVIEW_CHARS] or "_no patterns yet_"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=METHOD_CHECK,
                passed=methods <= {"llmlingua2"} or methods == {"passthrough"},
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"methods": ", ".join(sorted(methods)), "fallback_reason": fallback or "none"},
            )
        ],
    )
